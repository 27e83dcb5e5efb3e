/**
 * The sandbox against a hostile job, on the real kernel through the real
 * plugin: a task plants symlinks where it can write (its own dirs, the
 * allocation's shared dir, a path it unveiled), swaps a directory in the
 * middle of a path, tries a hardlink, connects to the plugin's socket, reads
 * the plugin's keyring, and uses /tmp to reach the host or another task.
 * Each test plays the attack and then proves that nothing outside the task
 * changed and that no later start, restart, exec session or script check
 * got more than the task's own rules.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { encodeTaskConfig, type NomadLikeClient, type PreparedTask } from '../../src/client/nomad-client';
import { testClient } from '../harness/client';
import { startNomadOrSkip } from '../harness/skip';
import { expectStatus } from '../harness/assert-status';
import { runScript, runToEnd } from '../harness/run-to-end';
import { assertUnchanged, HOST_PATHS, snapshot } from './helpers';

/** Outside /tmp, like a production client's data_dir (/opt/nomad/data). */
const PRODUCTION_BASE = '/var/tmp/exec2-security';

/** A host directory a job may unveil rwc (outside /tmp: that is private to each task). */
function sharedDir(): string {
  const d = path.join(PRODUCTION_BASE, `shared-${randomBytes(4).toString('hex')}`);
  mkdirSync(d, { recursive: true, mode: 0o777 });
  chmodSync(d, 0o777);
  return d;
}

async function stopAndRelease(nomad: NomadLikeClient, task: PreparedTask): Promise<void> {
  await nomad.stop(task.config.id, 0).catch(() => undefined);
  await nomad.wait(task.config.id).catch(() => undefined);
  await nomad.destroy(task.config.id, true).catch(() => undefined);
  nomad.releaseTask(task);
}

for (const layout of ['production', 'dev'] as const) {
  describe(`security: paths a task can plant (${layout} layout: data dir ${layout === 'dev' ? 'below /tmp, as nomad agent -dev' : 'outside /tmp'})`, function () {
    this.timeout(120_000);
    let nomad: NomadLikeClient;
    before(async function () {
      nomad = await startNomadOrSkip(this, { unveil_by_task: true }, layout === 'production' ? { baseDir: PRODUCTION_BASE } : {});
    });
    after(async () => {
      await nomad?.cleanup();
    });

    it('a symlink planted at alloc/logs widens nothing: exec sessions, script checks and a later task of the allocation are refused, naming it', async () => {
      const before = snapshot(HOST_PATHS);
      const allocId = `a-${randomBytes(4).toString('hex')}`;
      // Nomad makes the shared alloc dir writable by every task of the allocation.
      const attacker = nomad.prepareTask({
        allocId,
        name: 'attacker',
        command: 'sh',
        args: ['-c', 'mv "$NOMAD_ALLOC_DIR/logs" "$NOMAD_ALLOC_DIR/logs.moved" && ln -s / "$NOMAD_ALLOC_DIR/logs" && echo swapped; exec sleep 1000'],
      });
      chmodSync(path.join(attacker.allocDir, 'alloc'), 0o777);
      const sibling = nomad.prepareTask({ allocId, name: 'sibling', command: 'true' });
      await nomad.startTask(attacker);
      const task = attacker;
      try {
        await task.stdout!.waitFor(/swapped/);
        assert.equal(lstatSync(path.join(task.allocDir, 'alloc', 'logs')).isSymbolicLink(), true, 'the attack did not happen');
        if (layout === 'production') {
          // The task's log FIFO rule lies below the planted link: refused, naming it.
          await expectStatus(nomad.exec(task.config.id, ['sh', '-c', 'cat /etc/passwd; ls /']), grpc.status.FAILED_PRECONDITION, /alloc\/logs is a symbolic link; refusing to follow it/);
          await expectStatus(nomad.execTask(task.config.id, ['cat', '/etc/passwd']), grpc.status.FAILED_PRECONDITION, /alloc\/logs is a symbolic link; refusing to follow it/);
        } else {
          // Below /tmp the task sees its log dir through the bind made at its
          // start, not through the link: the session runs, with the task's rules.
          const s = await nomad.exec(task.config.id, ['sh', '-c', 'cat /etc/passwd; ls /; echo done']);
          assert.match(s.stdout, /done/);
          assert.doesNotMatch(s.stdout, /root:x:0:0/, 'exec session read /etc/passwd');
          assert.match(s.stderr, /cat: \/etc\/passwd: Permission denied/);
          assert.match(s.stderr, /ls: cannot open directory '\/': Permission denied/);
          const check = await nomad.execTask(task.config.id, ['cat', '/etc/passwd']);
          assert.notEqual(check.result?.exitCode, 0, 'script check read /etc/passwd');
          assert.doesNotMatch(Buffer.from(check.stdout).toString(), /root:x:0:0/);
        }
        // A task of the same allocation started after the swap: its FIFOs lie below the planted link.
        await expectStatus(nomad.startTask(sibling), grpc.status.FAILED_PRECONDITION, /alloc\/logs is a symbolic link; refusing to follow it/);
      } finally {
        nomad.releaseTask(sibling);
        await stopAndRelease(nomad, task);
      }
      assertUnchanged(before);
    });

    it("a directory in the middle of a path (alloc/logs pointed at another allocation's) never makes the plugin open or chown the victim's FIFO", async () => {
      const victim = nomad.prepareTask({ command: 'sleep', args: ['1000'] });
      const victimLogs = path.join(victim.allocDir, 'alloc', 'logs');
      const victimFifos = [path.join(victimLogs, '.task.stdout.fifo'), path.join(victimLogs, '.task.stderr.fifo')];
      const before = snapshot([...HOST_PATHS, victimLogs, ...victimFifos]);
      const attacker = nomad.prepareTask({ command: 'true' });
      // What a task of the attacker's allocation does with its rwxc on alloc/.
      const logs = path.join(attacker.allocDir, 'alloc', 'logs');
      renameSync(logs, `${logs}.moved`);
      symlinkSync(victimLogs, logs);
      try {
        await expectStatus(nomad.startTask(attacker), grpc.status.FAILED_PRECONDITION, /logs is a symbolic link; refusing to follow it/);
      } finally {
        nomad.releaseTask(attacker);
        nomad.releaseTask(victim);
      }
      assertUnchanged(before);
    });

    it("a symlink swapped in for a task-unveiled path, local/, tmp/ or work_dir fails the next start (a restart) with the planted link named, and exec sessions never follow it", async () => {
      const before = snapshot(HOST_PATHS);
      // The task itself swaps the path it unveiled, then exits; Nomad restarts it.
      const swaps: Array<{ name: string; input: Parameters<NomadLikeClient['prepareTask']>[0]; plant: (t: PreparedTask) => string; expect: RegExp }> = [
        {
          // rx below a host dir the task has only rwc on: a rule of its own, resolved beneath that dir
          name: 'task unveil path',
          input: { command: 'true' },
          plant: () => path.join(sharedDir(), 'bin'),
          expect: /unveil path .*\/shared-\w+\/bin: .*\/shared-\w+\/bin is a symbolic link; refusing to follow it/,
        },
        { name: 'local/', input: { command: 'true' }, plant: (t) => t.env.NOMAD_TASK_DIR!, expect: /\/local is a symbolic link; refusing to follow it/ },
        { name: 'tmp/', input: { command: 'true' }, plant: (t) => path.join(path.dirname(t.env.NOMAD_TASK_DIR!), 'tmp'), expect: /task setup failed: .*-task\/tmp is a symbolic link; refusing to follow it/ },
        { name: 'work_dir', input: { command: 'true' }, plant: (t) => path.join(t.env.NOMAD_TASK_DIR!, 'wd'), expect: /working directory .*\/local\/wd: .*\/local\/wd is a symbolic link; refusing to follow it/ },
      ];
      for (const s of swaps) {
        const t = nomad.prepareTask(s.input);
        const victim = s.plant(t);
        // Task-unveiled and work_dir paths name the task's own dir, which prepareTask made.
        if (s.name === 'task unveil path' || s.name === 'work_dir') mkdirSync(victim, { recursive: true });
        const cfg = t.config;
        if (s.name === 'task unveil path') {
          cfg.msgpackDriverConfig = Buffer.from(encodeTaskConfig({ command: 'true', unveil: [`rwc:${path.dirname(victim)}`, `rx:${victim}`] }));
        }
        if (s.name === 'work_dir') {
          cfg.msgpackDriverConfig = Buffer.from(encodeTaskConfig({ command: 'true', work_dir: victim }));
        }
        // First run: fine.
        await nomad.startTask(t);
        await nomad.wait(cfg.id);
        await nomad.destroy(cfg.id, true);
        // The swap (the task's own directories: it owns them).
        renameSync(victim, `${victim}.orig`);
        symlinkSync('/', victim);
        try {
          await expectStatus(nomad.startTask(t), grpc.status.FAILED_PRECONDITION, s.expect);
        } finally {
          rmSync(victim);
          renameSync(`${victim}.orig`, victim);
          nomad.releaseTask(t);
        }
      }
      assertUnchanged(before);
    });

    it('an exec session into a task that replaced an unveiled path with a symlink gets nothing beyond the task: redundant rules widen nothing, anchored ones are refused naming the link', async () => {
      const before = snapshot(HOST_PATHS);
      // The reproduction: r:${NOMAD_TASK_DIR}/conf, then conf -> /.
      const t = nomad.prepareTask({ command: 'sh' });
      const conf = path.join(t.env.NOMAD_TASK_DIR!, 'conf');
      mkdirSync(conf);
      chmodSync(conf, 0o777);
      t.config.msgpackDriverConfig = Buffer.from(encodeTaskConfig({
        command: 'sh',
        args: ['-c', 'mv "$NOMAD_TASK_DIR/conf" "$NOMAD_TASK_DIR/conf.orig" && ln -s / "$NOMAD_TASK_DIR/conf" && echo swapped; exec sleep 1000'],
        unveil: [`r:${conf}`],
      }));
      // A rule of its own below a host dir it may write: resolved beneath that dir.
      const shared = sharedDir();
      const bin = path.join(shared, 'bin');
      mkdirSync(bin, { mode: 0o777 });
      const t2 = nomad.prepareTask({ command: 'sh' });
      t2.config.msgpackDriverConfig = Buffer.from(encodeTaskConfig({
        command: 'sh',
        args: ['-c', `mv ${bin} ${bin}.orig && ln -s / ${bin} && echo swapped; exec sleep 1000`],
        unveil: [`rwc:${shared}`, `rx:${bin}`],
      }));
      await nomad.startTask(t);
      await nomad.startTask(t2);
      try {
        await t.stdout!.waitFor(/swapped/);
        await t2.stdout!.waitFor(/swapped/);
        for (const id of [t.config.id]) {
          const s = await nomad.exec(id, ['sh', '-c', `cat /etc/passwd; ls ${conf}/etc; echo done`]);
          assert.match(s.stdout, /done/);
          assert.doesNotMatch(s.stdout, /root:x:0:0|passwd/, 'the exec session followed the planted link');
          const check = await nomad.execTask(id, ['cat', `${conf}/etc/passwd`]);
          assert.notEqual(check.result?.exitCode, 0);
          assert.doesNotMatch(Buffer.from(check.stdout).toString(), /root:x:0:0/);
        }
        await expectStatus(nomad.exec(t2.config.id, ['cat', '/etc/passwd']), grpc.status.FAILED_PRECONDITION, /shared-\w+\/bin is a symbolic link; refusing to follow it/);
        await expectStatus(nomad.execTask(t2.config.id, ['ls', '/']), grpc.status.FAILED_PRECONDITION, /shared-\w+\/bin is a symbolic link/);
      } finally {
        await stopAndRelease(nomad, t);
        await stopAndRelease(nomad, t2);
        rmSync(shared, { recursive: true, force: true });
      }
      assertUnchanged(before);
    });

    it('a root task cannot hardlink a host file into its directory', async () => {
      const before = snapshot(HOST_PATHS);
      const links = statSync('/etc/shadow').nlink;
      const r = await runScript(nomad, 'ln /etc/shadow "$NOMAD_TASK_DIR/shadow" && echo linked; ln /etc/passwd /tmp/passwd && echo linked2; echo end', { user: 'root' });
      assert.match(r.all, /end/);
      assert.doesNotMatch(r.all, /linked/);
      assert.equal(statSync('/etc/shadow').nlink, links);
      assertUnchanged(before);
    });

    it("a root task cannot reach the plugin's socket or state_dir, and SetConfig through it is impossible", async () => {
      const before = snapshot(HOST_PATHS);
      const socket = nomad.plugin.handshake.address;
      assert.ok(socket.startsWith('/run/nomad-driver-exec2/sockets/'), `socket at ${socket}`);
      assert.equal(statSync(path.dirname(socket)).mode & 0o777, 0o700);
      const script = [
        `python3 -c 'import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(sys.argv[1]); print("connected")\nexcept OSError as e: print("refused", e.errno)' ${socket}`,
        `ls -a ${path.dirname(socket)} ${nomad.stateDir} 2>&1`,
        'echo end',
      ].join('; ');
      const r = await runScript(nomad, script, { user: 'root' });
      assert.match(r.all, /end/);
      assert.match(r.all, /refused/);
      assert.doesNotMatch(r.all, /connected/);
      assert.doesNotMatch(r.all, /plugin\d+/, 'the socket dir was listed');
      assert.doesNotMatch(r.all, /tasks/, 'state_dir was listed');
      assertUnchanged(before);
    });

    it("every task gets a session keyring of its own: not the one the plugin inherited, none of its keys, and its own keys stay its own", async function () {
      // A plugin started the way an agent with a keyring would start it: the
      // agent's session keyring holds a secret (a token it stored).
      const secret = `exec2-test-secret-${randomBytes(4).toString('hex')}`;
      const agent = testClient(layout === 'production' ? { baseDir: PRODUCTION_BASE } : {});
      try {
        await agent.startPlugin({}, { wrapper: ['python3', '-c', `${KEYCTL_PY}
import os, sys
ring = libc.syscall(250, 1, ctypes.c_char_p(b"exec2-test-agent"))
key = add_key(b"user", b"${secret}", b"the-agent-token", -3)
sys.stderr.write("exec2-test-keyring %d %d\\n" % (ring, key)); sys.stderr.flush()
os.execv(sys.argv[1], sys.argv[1:])`] });
        const line = agent.plugin.logs.map((l) => l.raw).find((l) => l.startsWith('exec2-test-keyring '));
        const [ring, key] = (line ?? '').split(' ').slice(1).map(Number);
        assert.ok(ring! > 0 && key! > 0, `the wrapper made no keyring: ${line}`);
        const script = `${KEYCTL_PY}
import struct
ring = keyctl(0, -3, 0)
d = ctypes.create_string_buffer(256); libc.syscall(250, 6, ctypes.c_long(ring), d, 256)
n = libc.syscall(250, 11, ctypes.c_long(ring), ctypes.create_string_buffer(4096), 4096)
r = ctypes.create_string_buffer(256)
got = libc.syscall(250, 11, ctypes.c_long(${key}), r, 256)
print("ring", ring, d.value.decode(), "members", n, "secret-read", got)
print("mine", add_key(b"user", b"task-key", b"x", -3))`;
        const { exit, all: out } = await runToEnd(agent, { command: 'python3', args: ['-c', script] });
        assert.equal(exit, 0, out);
        const m = /ring (\d+) (\S+) members (-?\d+) secret-read (-?\d+)/.exec(out);
        assert.ok(m, out);
        assert.notEqual(Number(m[1]), ring, "the task has the agent's session keyring");
        assert.doesNotMatch(m[2]!, /exec2-test-agent/);
        assert.equal(Number(m[3]), 0, 'the task\'s keyring is not empty');
        assert.equal(Number(m[4]), -1, 'the task read the agent\'s key');
        assert.match(out, /mine \d+/);
        // The agent's keyring, read as root from here: still exactly its key.
        const members = execFileSync('python3', ['-c', `${KEYCTL_PY}
import struct
b = ctypes.create_string_buffer(4096)
n = libc.syscall(250, 11, ctypes.c_long(${ring}), b, 4096)
print(list(struct.unpack("%di" % (n // 4), b.raw[:n])))`], { encoding: 'utf8' }).trim();
        assert.equal(members, `[${key}]`);
      } finally {
        await agent.cleanup();
      }
    });

    it('/proc/self rules hold for every process of the task (a grandchild reads /proc/self/cmdline and an unveiled /proc/self/mountinfo)', async () => {
      const t = nomad.prepareTask({ command: 'sh' });
      t.config.msgpackDriverConfig = Buffer.from(encodeTaskConfig({
        command: 'sh',
        args: ['-c', 'sh -c "sh -c \'tr \\"\\\\0\\" \\" \\" </proc/self/cmdline; echo; head -1 /proc/self/mountinfo >/dev/null && echo mountinfo-ok\'"'],
        unveil: ['r:/proc/self/mountinfo'],
      }));
      await nomad.startTask(t);
      const { result } = await nomad.wait(t.config.id);
      await t.stdout!.drain();
      const out = t.stdout!.text() + (await t.stderr!.drain(), t.stderr!.text());
      await nomad.destroy(t.config.id, true);
      nomad.releaseTask(t);
      assert.equal(result.exitCode, 0, out);
      assert.match(out, /^sh -c tr/m);
      assert.match(out, /mountinfo-ok/);
    });

    it('/tmp is private: a host file there is invisible to the task, and what a task writes there reaches neither the host nor another task', async () => {
      const hostFile = `/tmp/exec2-host-secret-${randomBytes(4).toString('hex')}`;
      writeFileSync(hostFile, 'host secret\n', { mode: 0o644 });
      const name = `exec2-task-file-${randomBytes(4).toString('hex')}`;
      try {
        const before = snapshot([...HOST_PATHS, hostFile]);
        const first = await runScript(nomad, `cat ${hostFile} 2>&1; echo task-data > /tmp/${name} && echo wrote; ls /tmp; echo "TMPDIR=$TMPDIR"; ls "$TMPDIR/${name}"`);
        assert.match(first.all, /No such file or directory/);
        assert.doesNotMatch(first.all, /host secret/);
        assert.match(first.all, /wrote/);
        assert.match(first.all, new RegExp(`TMPDIR=.*/tmp\\n.*${name}`), 'TMPDIR is not the same place as /tmp');
        assert.equal(existsSync(`/tmp/${name}`), false, 'the task wrote to the host /tmp');
        const second = await runScript(nomad, `cat /tmp/${name} 2>&1; echo end`);
        assert.doesNotMatch(second.all, /task-data/);
        assert.match(second.all, /No such file or directory/);
        assertUnchanged(before);
        assert.equal(readFileSync(hostFile, 'utf8'), 'host secret\n');
      } finally {
        rmSync(hostFile, { force: true });
      }
    });
  });
}

/** keyctl(2) and add_key(2) from python3 (no keyutils on the machine); x86_64 syscall numbers. */
const KEYCTL_PY = [
  'import ctypes',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'libc.syscall.restype = ctypes.c_long',
  'def keyctl(op, a, b): return libc.syscall(250, op, ctypes.c_long(a), ctypes.c_long(b), 0, 0)',
  'def add_key(t, d, p, ring): return libc.syscall(248, t, d, p, len(p), ctypes.c_long(ring))',
  '',
].join('\n');
