/**
 * The task lifecycle through the real plugin, on the real kernel: every
 * scenario of the exec2 docs page and the guarantees we add on top.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TaskState, type DriverTaskEvent } from '../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { encode } from '@msgpack/msgpack';
import type { NomadLikeClient, PreparedTask } from '../src/client/nomad-client';
import { testClient } from './harness/client';
import { freePort, httpGet, retry } from '../src/client/net-util';
import { skipUnless, startNomadOrSkip } from './harness/skip';
import { expectStatus } from './harness/assert-status';
import { allProcesses } from '../src/shared/proc';
import { statusDirFor } from '../src/main/tasks/status-dir';


/** Host pids whose parent is `ppid`. */
function childrenOf(ppid: number): number[] {
  return allProcesses().filter((p) => p.ppid === ppid).map((p) => p.pid);
}

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

describe('task lifecycle (real kernel, through the plugin)', function () {
  this.timeout(120_000);
  let nomad: NomadLikeClient;

  before(async function () {
    nomad = await startNomadOrSkip(this, { unveil_by_task: true });
  });

  after(async () => {
    if (!nomad) return;
    const leftovers = await nomad.cleanup();
    assert.deepEqual(leftovers, [], 'cgroups left behind');
  });

  const output = async (t: PreparedTask): Promise<{ exit: number; signal: number; out: string; err: string; oom: boolean }> => {
    const r = await nomad.wait(t.config.id);
    // give the reader a moment to drain what the task wrote just before exiting
    await new Promise((res) => setTimeout(res, 50));
    const out = t.stdout?.text() ?? '';
    const err = t.stderr?.text() ?? '';
    await nomad.destroy(t.config.id);
    nomad.releaseTask(t);
    return { exit: r.result.exitCode, signal: r.result.signal, out, err, oom: r.result.oomKilled };
  };

  describe('the exec2 docs scenarios', () => {
    it('serves the task directory with python http.server and unveil r:/etc/mime.types', async function () {
      skipUnless(this, existsSync('/usr/bin/python3'), '/usr/bin/python3 is not installed (apt-get install python3)');
      const port = await freePort();
      const task = nomad.prepareTask({ command: 'python3', args: ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', '/PLACEHOLDER'], unveil: ['r:/etc/mime.types'] });
      // Nomad interpolates ${NOMAD_TASK_DIR} before the driver sees it.
      const taskDir = task.env.NOMAD_TASK_DIR!;
      task.config.msgpackDriverConfig = Buffer.from(encodeTaskConfigFor(['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', taskDir]));
      writeFileSync(path.join(task.taskDir, 'local', 'index.html'), '<h1>hello from exec2</h1>\n');
      await nomad.startTask(task);
      const page = await retry(() => httpGet(`http://127.0.0.1:${port}/index.html`), 20_000);
      assert.equal(page.status, 200);
      assert.equal(page.body, '<h1>hello from exec2</h1>\n');
      await nomad.stop(task.config.id, 5000);
      const r = await output(task);
      // python exits on SIGINT (KeyboardInterrupt) with a non-zero status; it must not need the kill
      assert.notEqual(r.signal, 9, 'python needed SIGKILL');

      function encodeTaskConfigFor(args: string[]): Uint8Array {
        return encode({ args, command: 'python3', oom_score_adj: null, unveil: ['r:/etc/mime.types'], work_dir: null });
      }
    });

    it('denies reading /etc/passwd by default', async () => {
      const { task } = await nomad.run({ command: 'cat', args: ['/etc/passwd'] });
      const r = await output(task);
      assert.equal(r.exit, 1);
      assert.match(r.err, /Permission denied/);
      assert.equal(r.out, '');
    });

    it('reads /etc/mime.types once it is unveiled r', async () => {
      const { task } = await nomad.run({ command: 'head', args: ['-c', '64', '/etc/mime.types'], unveil: ['r:/etc/mime.types'] });
      const r = await output(task);
      assert.equal(r.exit, 0, r.err);
      assert.equal(r.out, readFileSync('/etc/mime.types', 'utf8').slice(0, 64));
    });

    it('denies writes outside unveiled paths and allows them in the task directory', async () => {
      const { task } = await nomad.run({
        command: 'sh',
        args: ['-c', 'echo x > /var/tmp/exec2-denied-$$ && echo WROTE-OUTSIDE; echo y > "$NOMAD_TASK_DIR/inside" && echo wrote-inside'],
      });
      const r = await output(task);
      assert.doesNotMatch(r.out, /WROTE-OUTSIDE/);
      assert.match(r.out, /wrote-inside/);
      assert.match(r.err, /Permission denied/);
    });

    it('lets mktemp work in TMPDIR', async () => {
      const { task } = await nomad.run({ command: 'sh', args: ['-c', 'f=$(mktemp) && echo "$f" && echo data > "$f" && cat "$f"'] });
      const tmpdir = path.join(path.dirname(task.env.NOMAD_TASK_DIR!), 'tmp');
      const r = await output(task);
      assert.equal(r.exit, 0, r.err);
      const [file, data] = r.out.trim().split('\n');
      assert.ok(file!.startsWith(`${tmpdir}/`), `${file} is not in ${tmpdir}`);
      assert.equal(data, 'data');
    });

    it('gives the task the Nomad environment, USER=nomad-<n>, HOME, TMPDIR, and no LD_* or DISPLAY', async () => {
      // the agent's own environment reaches Nomad's TaskConfig; exec2 strips these
      const { task } = await nomad.run({ command: 'env', env: { LD_PRELOAD: '/nonexistent/x.so', LD_LIBRARY_PATH: '/x', DISPLAY: ':0' } });
      const r = await output(task);
      const env = new Map(r.out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]));
      assert.equal(env.get('USER'), `nomad-${task.uid}`);
      assert.equal(env.get('HOME'), '/nonexistent');
      assert.equal(env.get('TMPDIR'), path.join(path.dirname(task.env.NOMAD_TASK_DIR!), 'tmp'));
      for (const k of ['NOMAD_TASK_DIR', 'NOMAD_ALLOC_DIR', 'NOMAD_SECRETS_DIR', 'NOMAD_ALLOC_ID', 'NOMAD_TASK_NAME', 'NOMAD_JOB_NAME', 'NOMAD_CPU_LIMIT', 'NOMAD_MEMORY_LIMIT']) {
        assert.equal(env.get(k), task.env[k], k);
      }
      assert.equal(env.has('LD_PRELOAD'), false);
      assert.equal(env.has('LD_LIBRARY_PATH'), false);
      assert.equal(env.has('DISPLAY'), false);
    });

    it('keeps the task environment out of world-readable /proc/<pid>/cmdline of pid 1', async () => {
      const secret = `s.${Date.now().toString(36)}secret`;
      const { task, handle } = await nomad.run({ command: 'sleep', args: ['1000'], env: { VAULT_TOKEN: secret } });
      const { pid } = JSON.parse(Buffer.from(handle.driverState).toString()) as { pid: number };
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
      assert.match(cmdline, /^exec2-init\0exec2-init\//, 'this is the task\'s pid 1');
      assert.doesNotMatch(cmdline, new RegExp(secret), 'secret visible to every local user');
      // Any other user: environ is refused, cmdline stays harmless.
      const asNobody = (file: string): string => execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'cat', file], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] });
      assert.throws(() => asNobody(`/proc/${pid}/environ`), /Permission denied/);
      assert.doesNotMatch(asNobody(`/proc/${pid}/cmdline`), new RegExp(secret));
      // pid 1 holds it where only root can read it, and hands it to the task.
      assert.match(readFileSync(`/proc/${pid}/environ`, 'latin1'), new RegExp(`VAULT_TOKEN=${secret}`));
      await nomad.destroy(task.config.id, true);
      nomad.releaseTask(task);
    });

    it('runs the task as the dynamic user with no_new_privs and no capabilities', async () => {
      const { task } = await nomad.run({ command: 'sh', args: ['-c', 'id -u; id -g; id -G; grep -E "^(NoNewPrivs|CapEff|CapPrm)" /proc/self/status'], unveil: ['r:/proc'] });
      const r = await output(task);
      assert.equal(r.exit, 0, r.err);
      const lines = r.out.trim().split('\n');
      assert.equal(lines[0], String(task.uid));
      assert.equal(lines[1], String(task.uid));
      assert.equal(lines[2], String(task.uid), 'no supplementary groups');
      assert.match(r.out, /NoNewPrivs:\s+1/);
      assert.match(r.out, /CapEff:\s+0000000000000000/);
    });

    it('runs a named user with its passwd identity and groups', async () => {
      const { task } = await nomad.run({ user: 'nobody', command: 'sh', args: ['-c', 'id -u; id -g; echo $HOME $USER'] });
      const r = await output(task);
      assert.equal(r.exit, 0, r.err);
      const want = execFileSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' }).trim().split(':');
      assert.deepEqual(r.out.trim().split('\n'), [want[2], want[3], `${want[5]} nobody`]);
    });

    it('shows ps only the task\'s own processes (private pid namespace and /proc)', async () => {
      const { task } = await nomad.run({ command: 'ps', args: ['-e', '-o', 'pid=,comm='], unveil: ['r:/proc'] });
      const r = await output(task);
      assert.equal(r.exit, 0, r.err);
      const rows = r.out.trim().split('\n').map((l) => l.trim().split(/\s+/));
      assert.deepEqual(rows.map((x) => x[0]), ['1', '2'], r.out);
      assert.equal(rows[1]![1], 'ps');
    });

    it('surfaces exit code 7 as 7', async () => {
      const { task } = await nomad.run({ command: 'sh', args: ['-c', 'exit 7'] });
      const r = await output(task);
      assert.equal(r.exit, 7);
      assert.equal(r.signal, 0);
    });

    it('delivers SIGUSR1 to a handler in the task', async () => {
      const { task } = await nomad.run({ command: 'sh', args: ['-c', 'trap "echo got-usr1; exit 0" USR1; echo ready; while :; do sleep 0.05; done'] });
      await task.stdout!.waitFor(/ready/);
      await nomad.signal(task.config.id, 'SIGUSR1');
      await task.stdout!.waitFor(/got-usr1/);
      const r = await output(task);
      assert.equal(r.exit, 0);
    });

    it('kills a task that ignores SIGINT once the stop timeout passes', async () => {
      const { task } = await nomad.run({ command: 'sh', args: ['-c', 'trap "" INT; echo ready; while :; do sleep 0.05; done'] });
      await task.stdout!.waitFor(/ready/);
      const t0 = Date.now();
      await nomad.stop(task.config.id, 700);
      const elapsed = Date.now() - t0;
      const r = await output(task);
      assert.equal(r.signal, 9);
      assert.equal(r.exit, 137);
      assert.ok(elapsed >= 650, `StopTask returned after ${elapsed} ms, before its timeout`);
    });

    it('stops with the requested signal and reports the task\'s own exit', async () => {
      const { task } = await nomad.run({ command: 'sh', args: ['-c', 'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done'] });
      await task.stdout!.waitFor(/ready/);
      await nomad.stop(task.config.id, 5000, 'SIGTERM');
      const r = await output(task);
      assert.equal(r.exit, 42);
    });

    it('kills a whole fork tree on stop, setsid children included', async () => {
      const { task } = await nomad.run({ command: 'sh', args: ['-c', '(sleep 1000 &); setsid sleep 1000 & sleep 1000 & echo ready; wait'] });
      await task.stdout!.waitFor(/ready/);
      const dirs = task.cgroup.dirs;
      const member = dirs.memory ?? dirs.unified!;
      assert.ok(readFileSync(path.join(member, 'cgroup.procs'), 'utf8').trim().split('\n').length >= 4);
      await nomad.stop(task.config.id, 300);
      await nomad.wait(task.config.id);
      assert.equal(readFileSync(path.join(member, 'cgroup.procs'), 'utf8').trim(), '', 'processes left in the task cgroup');
      await output(task);
    });

    it('reaps orphans while the task runs', async () => {
      const { task } = await nomad.run({
        command: 'sh',
        args: ['-c', 'for i in 1 2 3 4 5; do (sleep 0.1 &); done; sleep 0.6; ps -e -o stat=,pid=,comm=; echo zombies=$(ps -e -o stat= | grep -c Z)'],
        unveil: ['r:/proc'],
      });
      const r = await output(task);
      assert.match(r.out, /zombies=0/, r.out);
    });

    it('reports an OOM kill', async function () {
      skipUnless(this, existsSync('/usr/bin/python3'), '/usr/bin/python3 is not installed');
      const { task } = await nomad.run({ command: 'python3', args: ['-c', 'b = bytearray(512 * 1024 * 1024); print(len(b))'], memoryMb: 32 });
      const r = await output(task);
      assert.equal(r.oom, true, `not reported as OOM: exit ${r.exit} signal ${r.signal} ${r.err}`);
      assert.equal(r.signal, 9);
    });

    it('gives the task exactly fds 0, 1 and 2', async () => {
      const { task } = await nomad.run({ command: 'ls', args: ['-1', '/proc/self/fd'], unveil: ['r:/proc'] });
      const r = await output(task);
      assert.equal(r.exit, 0, r.err);
      // 3 is ls's own handle on the directory it lists
      assert.deepEqual(r.out.trim().split('\n'), ['0', '1', '2', '3']);
    });

    it('gives the task blocking stdout and stderr even though the driver opens the FIFOs non-blocking', async function () {
      skipUnless(this, existsSync('/usr/bin/python3'), '/usr/bin/python3 is not installed');
      const { task } = await nomad.run({ command: 'python3', args: ['-c', 'import os, fcntl\nfor fd in (1, 2): print(fd, bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK))'] });
      const r = await output(task);
      assert.equal(r.out, '1 False\n2 False\n', r.err);
    });

    it('does not let the task forge its exit status', async () => {
      const task = nomad.prepareTask({
        command: 'sh',
        args: ['-c', 'for d in "$S" "$S/.."; do echo "exited 0" > "$d/status" && echo FORGED; done; exit 3'],
      });
      task.config.env.S = statusDirFor(nomad.stateDir, task.config.id);
      await nomad.startTask(task);
      const r = await output(task);
      assert.equal(r.exit, 3);
      assert.doesNotMatch(r.out, /FORGED/);
    });

    it('does not let even a root task reach the status directory (Landlock)', async () => {
      const stateDir = path.join(nomad.stateDir, 'tasks');
      const { task } = await nomad.run({ user: 'root', command: 'sh', args: ['-c', `ls ${stateDir} && echo LISTED; echo "exited 0" > ${stateDir}/x && echo FORGED; exit 5`] });
      const r = await output(task);
      assert.equal(r.exit, 5);
      assert.doesNotMatch(r.out, /LISTED|FORGED/);
    });

    it('applies oom_score_adj to the task', async () => {
      const { task } = await nomad.run({ command: 'cat', args: ['/proc/self/oom_score_adj'], oom_score_adj: 500, unveil: ['r:/proc'] });
      const r = await output(task);
      assert.equal(r.out.trim(), '500');
    });

    it('starts in work_dir when it lies inside an unveiled path, else in the task directory', async () => {
      const first = await nomad.run({ command: 'pwd' });
      const r1 = await output(first.task);
      assert.equal(r1.out.trim(), path.dirname(first.task.env.NOMAD_TASK_DIR!));
      const t = nomad.prepareTask({ command: 'pwd', work_dir: '/PLACEHOLDER' });
      t.config.msgpackDriverConfig = Buffer.from(encode({ args: null, command: 'pwd', oom_score_adj: null, unveil: null, work_dir: t.env.NOMAD_TASK_DIR! }));
      await nomad.startTask(t);
      const r2 = await output(t);
      assert.equal(r2.out.trim(), t.env.NOMAD_TASK_DIR);
    });

    it('joins the group network namespace (mode GROUP)', async function () {
      const name = `exec2-test-${process.pid}`;
      try {
        execFileSync('ip', ['netns', 'add', name]);
      } catch (err) {
        skipUnless(this, false, `cannot create a network namespace: ${(err as Error).message}`);
      }
      try {
        const { task } = await nomad.run({ command: 'cat', args: ['/proc/net/dev'], unveil: ['r:/proc'], netns: `/var/run/netns/${name}` });
        const r = await output(task);
        const ifaces = r.out.split('\n').slice(2).filter(Boolean).map((l) => l.trim().split(':')[0]);
        assert.deepEqual(ifaces, ['lo']);
      } finally {
        execFileSync('ip', ['netns', 'delete', name]);
      }
    });
  });

  describe('task RPC semantics', () => {
    it('answers concurrent, repeated and late WaitTask calls with the same result', async () => {
      const { task } = await nomad.run({ command: 'sh', args: ['-c', 'sleep 0.2; exit 3'] });
      const [a, b] = await Promise.all([nomad.wait(task.config.id), nomad.wait(task.config.id)]);
      const c = await nomad.wait(task.config.id);
      for (const r of [a, b, c]) assert.equal(r.result.exitCode, 3);
      await output(task);
    });

    it('inspects a running and an exited task', async () => {
      const { task } = await nomad.run({ command: 'sleep', args: ['1000'] });
      const running = await nomad.inspect(task.config.id);
      assert.equal(running.task!.state, TaskState.RUNNING);
      assert.equal(running.task!.completedAt!.seconds, -62135596800);
      assert.match(running.driver!.attributes.pid!, /^\d+$/);
      await nomad.stop(task.config.id, 1000, 'SIGTERM');
      await nomad.wait(task.config.id);
      const done = await nomad.inspect(task.config.id);
      assert.equal(done.task!.state, TaskState.EXITED);
      assert.equal(done.task!.result!.signal, 15);
      assert.ok(done.task!.completedAt!.seconds > 0);
      await output(task);
    });

    it('tells Nomad through TaskEvents when a stop had to kill the task', async () => {
      const events: DriverTaskEvent[] = [];
      const stream = nomad.plugin.driver.taskEvents({});
      stream.on('data', (e: DriverTaskEvent) => events.push(e));
      stream.on('error', () => undefined);
      await new Promise((r) => setTimeout(r, 100));
      const { task } = await nomad.run({ command: 'sh', args: ['-c', 'trap "" INT; echo ready; while :; do sleep 0.05; done'] });
      await task.stdout!.waitFor(/ready/);
      await nomad.stop(task.config.id, 200);
      await output(task);
      stream.cancel();
      const e = events.find((x) => x.taskId === task.config.id);
      assert.ok(e, 'no driver event for the killed task');
      assert.equal(e.allocId, task.config.allocId);
      assert.equal(e.taskName, task.config.name);
      assert.match(e.message, /did not exit within 200 ms of SIGINT; killing it/);
      assert.ok(e.timestamp && e.timestamp.seconds > 0);
    });

    it('treats Stop, Destroy and Signal of unknown tasks as success, Wait and Inspect as NOT_FOUND', async () => {
      await nomad.stop('nope/nope/00000000', 10);
      await nomad.destroy('nope/nope/00000000');
      await nomad.signal('nope/nope/00000000', 'SIGHUP');
      await expectStatus(nomad.wait('nope/nope/00000000'), grpc.status.NOT_FOUND, /task not found/);
      await expectStatus(nomad.inspect('nope/nope/00000000'), grpc.status.NOT_FOUND, /task not found/);
    });

    it('refuses an empty or unknown signal name', async () => {
      const { task } = await nomad.run({ command: 'sleep', args: ['1000'] });
      await expectStatus(nomad.signal(task.config.id, ''), grpc.status.INVALID_ARGUMENT, /signal must not be empty/);
      await expectStatus(nomad.signal(task.config.id, 'SIGWHAT'), grpc.status.INVALID_ARGUMENT, /unknown signal/);
      await nomad.signal(task.config.id, 'term');
      const r = await output(task);
      assert.equal(r.signal, 15);
    });

    it('refuses to destroy a running task without force, and kills it with force', async () => {
      const { task } = await nomad.run({ command: 'sleep', args: ['1000'] });
      await expectStatus(nomad.destroy(task.config.id, false), grpc.status.FAILED_PRECONDITION, /cannot destroy running task/);
      await nomad.destroy(task.config.id, true);
      await expectStatus(nomad.wait(task.config.id), grpc.status.NOT_FOUND, /task not found/);
      nomad.releaseTask(task);
    });

    it('lets concurrent forced DestroyTask calls share one cleanup that removes the task state', async () => {
      const { task } = await nomad.run({ command: 'sleep', args: ['1000'] });
      const statusDir = statusDirFor(nomad.stateDir, task.config.id);
      assert.ok(existsSync(statusDir), 'the task has a status directory while it runs');
      await Promise.all([nomad.destroy(task.config.id, true), nomad.destroy(task.config.id, true), nomad.destroy(task.config.id, true)]);
      await expectStatus(nomad.wait(task.config.id), grpc.status.NOT_FOUND, /task not found/);
      assert.equal(existsSync(statusDir), false, 'status directory removed');
      nomad.releaseTask(task);
    });

    it('never reports a stale status left in the task\'s state directory as its exit', async () => {
      const task = nomad.prepareTask({ command: 'sleep', args: ['1000'] });
      const statusDir = statusDirFor(nomad.stateDir, task.config.id);
      mkdirSync(statusDir, { recursive: true, mode: 0o700 });
      writeFileSync(path.join(statusDir, 'status'), 'exited 99\n');
      const handle = await nomad.startTask(task);
      const { pid } = JSON.parse(Buffer.from(handle.driverState).toString()) as { pid: number };
      // pid 1 itself killed: it records nothing, so the wait status is all there is.
      process.kill(pid, 'SIGKILL');
      const r = await nomad.wait(task.config.id);
      assert.deepEqual({ exit: r.result.exitCode, signal: r.result.signal }, { exit: 137, signal: 9 });
      await nomad.destroy(task.config.id);
      nomad.releaseTask(task);
    });

    it('refuses a second StartTask with the same id', async () => {
      const task = nomad.prepareTask({ command: 'sleep', args: ['1000'] });
      await nomad.startTask(task);
      await expectStatus(nomad.startTask(task), grpc.status.ALREADY_EXISTS, /already started/);
      await nomad.stop(task.config.id, 100);
      await output(task);
    });
  });

  describe('bad input fails StartTask precisely and leaves nothing behind', () => {
    const cases: Array<[string, Parameters<NomadLikeClient['prepareTask']>[0], grpc.status, RegExp]> = [
      ['an unknown user', { command: 'true', user: 'no-such-user-exec2' }, grpc.status.NOT_FOUND, /user "no-such-user-exec2" does not exist/],
      ['a missing command', { command: 'no-such-command-exec2' }, grpc.status.NOT_FOUND, /command not found.*no-such-command-exec2/],
      ['an absolute command that does not exist', { command: '/nonexistent/bin/x' }, grpc.status.NOT_FOUND, /\/nonexistent\/bin\/x/],
      ['a command that is not executable', { command: '/etc/hostname', unveil: ['r:/etc/hostname'] }, grpc.status.INVALID_ARGUMENT, /cannot execute|Permission denied/],
      ['an unveil path that does not exist', { command: 'true', unveil: ['r:/nonexistent/path'] }, grpc.status.NOT_FOUND, /\/nonexistent\/path/],
      ['a work_dir outside unveiled paths', { command: 'true', work_dir: '/etc' }, grpc.status.INVALID_ARGUMENT, /work_dir.*not inside an unveiled path/],
      ['a malformed driver config', { command: 'true', rawConfig: Uint8Array.from([0x84, 0xa4]) }, grpc.status.INVALID_ARGUMENT, /task config: malformed msgpack/],
      ['a config of the wrong type', { command: 'true', rawConfig: encode({ command: 5 }) }, grpc.status.INVALID_ARGUMENT, /attribute "command": expected string/],
      ['an empty user', { command: 'true', user: '' }, grpc.status.INVALID_ARGUMENT, /user must be set/],
    ];
    for (const [what, input, code, re] of cases) {
      it(`rejects ${what}`, async () => {
        const before = childrenOf(nomad.plugin.pid).length;
        const task = nomad.prepareTask(input);
        await expectStatus(nomad.startTask(task), code, re);
        assert.equal(childrenOf(nomad.plugin.pid).length, before, 'a process was left behind');
        assert.equal(existsSync(statusDirFor(nomad.stateDir, task.config.id)), false, 'task state left behind');
        await expectStatus(nomad.wait(task.config.id), grpc.status.NOT_FOUND, /task not found/);
        nomad.releaseTask(task);
      });
    }

    it('rejects a task whose Nomad cgroup is missing, naming it, and creates no cgroup of its own', async () => {
      const task = nomad.prepareTask({ command: 'true' });
      const dirs = Object.entries(task.cgroup.dirs).filter(([, d]) => !d.endsWith('/share'));
      const [, gone] = dirs.find(([c]) => c === 'memory' || c === 'unified')!;
      rmdirSync(gone);
      await expectStatus(nomad.startTask(task), grpc.status.FAILED_PRECONDITION, new RegExp(`task cgroup ${gone.replace(/[.]/g, '\\.')} does not exist \\(Nomad creates it before StartTask\\)`));
      assert.equal(existsSync(statusDirFor(nomad.stateDir, task.config.id)), false, 'task state left behind');
      // The driver's own v1 accounting cgroup, if it made one, is gone again.
      const cpuacct = gone.replace(/\/memory\//, '/cpuacct/');
      if (cpuacct !== gone) assert.equal(existsSync(cpuacct), false, `${cpuacct} left behind`);
      nomad.releaseTask(task);
    });

    it('refuses to start tasks while state_dir lies inside a writable unveiled path', async () => {
      const exposed = testClient();
      try {
        await exposed.startPlugin({ state_dir: path.join(exposed.root, 'state') });
        const t = exposed.prepareTask({ command: 'true' });
        await expectStatus(exposed.startTask(t), grpc.status.FAILED_PRECONDITION, /directory .*\/state \(its socket or state_dir\) would be exposed by the unveiled path "rwc:\/tmp"; tasks could reach the plugin or forge/);
        exposed.releaseTask(t);
      } finally {
        assert.deepEqual(await exposed.cleanup(), []);
      }
    });

    it('rejects task unveil when unveil_by_task is off, and keeps other tasks running', async () => {
      const other = await nomad.run({ command: 'sleep', args: ['1000'] });
      const strict = testClient();
      try {
        await strict.startPlugin({ unveil_by_task: false });
        const t = strict.prepareTask({ command: 'true', unveil: ['r:/etc/hosts'] });
        await expectStatus(strict.startTask(t), grpc.status.FAILED_PRECONDITION, /unveil_by_task = false/);
        strict.releaseTask(t);
      } finally {
        assert.deepEqual(await strict.cleanup(), []);
      }
      const inspect = await nomad.inspect(other.task.config.id);
      assert.equal(inspect.task!.state, TaskState.RUNNING);
      await nomad.stop(other.task.config.id, 100);
      await output(other.task);
    });
  });

  describe('limits and load', () => {
    it('writes the exact cgroup limits for cpu and memory', async () => {
      const { task } = await nomad.run({ command: 'sleep', args: ['1000'], cpuMhz: 1000, memoryMb: 150, memoryMaxMb: 250 });
      const d = task.cgroup.dirs;
      if (d.unified) {
        assert.equal(readFileSync(path.join(d.unified, 'cpu.max'), 'utf8').trim(), '40000 100000');
        assert.equal(readFileSync(path.join(d.unified, 'memory.low'), 'utf8').trim(), '157286400');
        assert.equal(readFileSync(path.join(d.unified, 'memory.max'), 'utf8').trim(), '262144000');
      } else {
        console.log('      (cgroup v1 host: v1 files checked here; v2 cpu.max/memory.* run in the VM suite)');
        assert.equal(readFileSync(path.join(d.cpu!, 'cpu.cfs_quota_us'), 'utf8').trim(), '40000');
        assert.equal(readFileSync(path.join(d.cpu!, 'cpu.cfs_period_us'), 'utf8').trim(), '100000');
        assert.equal(readFileSync(path.join(d.cpu!, 'cpu.shares'), 'utf8').trim(), '1000');
        assert.equal(readFileSync(path.join(d.memory!, 'memory.limit_in_bytes'), 'utf8').trim(), '262144000');
        assert.equal(readFileSync(path.join(d.memory!, 'memory.soft_limit_in_bytes'), 'utf8').trim(), '157286400');
      }
      await nomad.stop(task.config.id, 100);
      await output(task);
    });

    it('runs 200 launches at concurrency 16 with no leftover process, cgroup or fd', async () => {
      const pluginPid = nomad.plugin.pid;
      // warm up so lazily opened plugin fds (workers, sockets) are counted in the baseline
      await output((await nomad.run({ command: 'true' })).task);
      const fdsBefore = fdCount(pluginPid);
      const stateBefore = readdirSync(path.join(nomad.stateDir, 'tasks')).length;
      let next = 0;
      const results: number[] = [];
      const worker = async (): Promise<void> => {
        while (next < 200) {
          next++;
          const { task } = await nomad.run({ command: 'true' });
          const r = await output(task);
          results.push(r.exit);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      assert.equal(results.length, 200);
      assert.deepEqual([...new Set(results)], [0]);
      assert.deepEqual(childrenOf(pluginPid).filter((p) => !isWorkerThread(pluginPid, p)), [], 'task processes left behind');
      assert.equal(readdirSync(path.join(nomad.stateDir, 'tasks')).length, stateBefore, 'task state left behind');
      assert.equal(fdCount(pluginPid), fdsBefore, 'plugin fds leaked');
    });
  });
});

function isWorkerThread(pid: number, child: number): boolean {
  return existsSync(`/proc/${pid}/task/${child}`);
}
