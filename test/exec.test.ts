/**
 * `nomad alloc exec` (Driver.ExecTaskStreaming) and script checks
 * (Driver.ExecTask) through the real plugin on the real kernel: the command
 * runs inside the task (its pid, mount, ipc and network namespaces, its
 * cgroup, user, environment and Landlock rules) and never with more
 * privilege; sessions end with a result, clean up after themselves, and
 * protocol mistakes get precise errors while the plugin keeps serving.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TaskState } from '../src/gen/hashicorp/nomad/plugins/drivers/driver';
import type { NomadLikeClient, PreparedTask } from '../src/client/nomad-client';
import { testClient } from './harness/client';
import { PluginProcess } from '../src/client/plugin-process';
import { loadNative } from '../src/native/binding';
import { skipUnless, startNomadOrSkip } from './harness/skip';
import { expectStatus } from './harness/assert-status';
import { allProcesses, procStat } from '../src/shared/proc';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Host pids in the task's cgroup (v1: memory controller, v2: the unified dir). */
function cgroupPids(task: PreparedTask): number[] {
  const dir = task.cgroup.dirs.memory ?? task.cgroup.dirs.unified!;
  return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Host pids whose parent is `ppid` and that are processes, not threads of it. */
function childProcesses(ppid: number): number[] {
  return allProcesses().filter((p) => p.ppid === ppid && !existsSync(`/proc/${ppid}/task/${p.pid}`)).map((p) => p.pid);
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The line of /proc/<pid>/cgroup that names the task's own cgroup (v1 memory, else the v2 line). */
function taskCgroupLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines.find((l) => /^\d+:memory:/.test(l)) ?? lines.find((l) => l.startsWith('0::'))!;
}

describe('exec into a running task (nomad alloc exec, script checks)', function () {
  this.timeout(120_000);
  let nomad: NomadLikeClient;
  /** a long-running task with /proc unveiled, shared by the read-only checks */
  let main: PreparedTask;
  let mainId: string;

  before(async function () {
    nomad = await startNomadOrSkip(this, { unveil_by_task: true });
    main = (await nomad.run({ command: 'sleep', args: ['1000'], unveil: ['r:/proc'], env: { LD_PRELOAD: '/nonexistent/x.so', DISPLAY: ':0' } })).task;
    mainId = main.config.id;
  });

  after(async () => {
    if (!nomad) return;
    assert.deepEqual(await nomad.cleanup(), [], 'cgroups left behind');
  });

  const stopAndRelease = async (t: PreparedTask): Promise<void> => {
    await nomad.stop(t.config.id, 200);
    await nomad.wait(t.config.id);
    await nomad.destroy(t.config.id);
    nomad.releaseTask(t);
  };

  describe('the command runs inside the task', () => {
    it('runs as the task\'s uid and gid, without supplementary groups for a dynamic user', async () => {
      const r = await nomad.exec(mainId, ['sh', '-c', 'id -u; id -g; id -G']);
      assert.equal(r.result.exitCode, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), [String(main.uid), String(main.uid), String(main.uid)]);
    });

    it('runs as a named task user with its passwd groups and HOME', async () => {
      const { task } = await nomad.run({ user: 'nobody', command: 'sleep', args: ['1000'] });
      try {
        const r = await nomad.exec(task.config.id, ['sh', '-c', 'id -u; id -g; id -G; echo "$USER $HOME"']);
        assert.equal(r.result.exitCode, 0, r.stderr);
        const pw = execFileSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' }).trim().split(':');
        const groups = execFileSync('id', ['-G', 'nobody'], { encoding: 'utf8' }).trim();
        assert.deepEqual(r.stdout.trim().split('\n'), [pw[2], pw[3], groups, `nobody ${pw[5]}`]);
      } finally {
        await stopAndRelease(task);
      }
    });

    it('sees the task\'s pid namespace: pid 1 is exec2-init, the task is there, host processes are not', async () => {
      const r = await nomad.exec(mainId, ['ps', '-e', '-o', 'pid=,comm=']);
      assert.equal(r.result.exitCode, 0, r.stderr);
      const rows = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
      assert.deepEqual(rows[0], ['1', 'exec2-init'], r.stdout);
      assert.deepEqual(rows[1], ['2', 'sleep'], r.stdout);
      assert.deepEqual(rows.slice(2).map((x) => x[1]), ['ps'], `unexpected processes visible:\n${r.stdout}`);
    });

    it('is in the task\'s cgroup', async () => {
      const r = await nomad.exec(mainId, ['cat', '/proc/self/cgroup']);
      assert.equal(r.result.exitCode, 0, r.stderr);
      const pid1 = Number((await nomad.inspect(mainId)).driver!.attributes.pid);
      assert.equal(taskCgroupLine(r.stdout), taskCgroupLine(readFileSync(`/proc/${pid1}/cgroup`, 'utf8')));
      assert.match(taskCgroupLine(r.stdout), new RegExp(`${main.config.allocId}\\.${main.config.name}`));
    });

    it('has no_new_privs, no capabilities, default signal dispositions and the task\'s oom_score_adj', async () => {
      const { task } = await nomad.run({ command: 'sleep', args: ['1000'], unveil: ['r:/proc'], oom_score_adj: 500 });
      try {
        const r = await nomad.exec(task.config.id, ['sh', '-c', 'grep -E "^(NoNewPrivs|CapEff|CapPrm|CapBnd|SigIgn)" /proc/self/status; cat /proc/self/oom_score_adj']);
        assert.equal(r.result.exitCode, 0, r.stderr);
        assert.match(r.stdout, /NoNewPrivs:\s+1/);
        assert.match(r.stdout, /CapEff:\s+0000000000000000/);
        assert.match(r.stdout, /CapPrm:\s+0000000000000000/);
        // the plugin (Node) ignores SIGPIPE; the session must not inherit that
        assert.match(r.stdout, /SigIgn:\s+0000000000000000/);
        assert.match(r.stdout, /^500$/m);
      } finally {
        await stopAndRelease(task);
      }
    });

    it('is confined by the task\'s Landlock rules: /etc/passwd denied, unveiled files readable, the task dir writable', async () => {
      const r = await nomad.exec(mainId, ['sh', '-c', 'cat /etc/passwd; echo "cat=$?"; head -c 5 /proc/self/status; echo; echo x > /var/tmp/exec2-denied-$$ && echo WROTE-OUTSIDE; echo y > "$NOMAD_TASK_DIR/exec-wrote" && echo wrote-inside']);
      assert.match(r.stdout, /cat=1/);
      assert.match(r.stderr, /\/etc\/passwd: Permission denied/);
      assert.match(r.stdout, /^Name:/m, 'the task unveils r:/proc');
      assert.doesNotMatch(r.stdout, /WROTE-OUTSIDE/);
      assert.match(r.stdout, /wrote-inside/);
      assert.equal(readFileSync(path.join(main.taskDir, 'local', 'exec-wrote'), 'utf8'), 'y\n');
    });

    it('keeps Landlock even for a task running as root (it is not file permissions that deny)', async () => {
      const { task } = await nomad.run({ user: 'root', command: 'sleep', args: ['1000'], unveil: ['r:/etc/mime.types'] });
      try {
        const r = await nomad.exec(task.config.id, ['sh', '-c', 'id -u; cat /etc/passwd; echo "cat=$?"; head -c 16 /etc/mime.types']);
        assert.match(r.stdout, /^0$/m);
        assert.match(r.stdout, /cat=1/);
        assert.match(r.stderr, /Permission denied/);
        assert.ok(r.stdout.endsWith(readFileSync('/etc/mime.types', 'utf8').slice(0, 16)), r.stdout);
      } finally {
        await stopAndRelease(task);
      }
    });

    it('cannot signal the task\'s processes or pid 1 (Landlock signal scoping), only its own', async function () {
      skipUnless(this, loadNative().landlockAbi().abi >= 6, 'Landlock signal scoping needs ABI 6 (Linux 6.12)', { core: false });
      const r = await nomad.exec(mainId, ['sh', '-c', 'kill -0 2 2>/dev/null && echo task=signalable || echo task=scoped; kill -0 1 2>/dev/null && echo pid1=signalable || echo pid1=scoped; kill -0 $$ && echo self=ok']);
      assert.equal(r.stdout, 'task=scoped\npid1=scoped\nself=ok\n');
    });

    it('refuses to follow a task directory the task replaced with a symlink (its rules are built as root again)', async () => {
      // The harness's mounts live under /tmp, which the default rules make
      // writable (rwc:/tmp), so this task can rename its own local/; Nomad's
      // real alloc_mounts are not below an unveiled path.
      const { task } = await nomad.run({ command: 'sh', args: ['-c', 'mv "$NOMAD_TASK_DIR" "$NOMAD_TASK_DIR.orig" && ln -s /etc "$NOMAD_TASK_DIR" && echo swapped; exec sleep 1000'] });
      try {
        await task.stdout!.waitFor(/swapped/);
        await expectStatus(nomad.exec(task.config.id, ['cat', '/etc/passwd']), grpc.status.FAILED_PRECONDITION, /unveil path .*\/local is a symbolic link; refusing to follow it/);
        await expectStatus(nomad.execTask(task.config.id, ['cat', '/etc/passwd']), grpc.status.FAILED_PRECONDITION, /is a symbolic link/);
      } finally {
        await stopAndRelease(task);
      }
    });

    it('holds exactly fds 0, 1 and 2', async () => {
      const r = await nomad.exec(mainId, ['ls', '-1', '/proc/self/fd']);
      assert.equal(r.result.exitCode, 0, r.stderr);
      // 3 is ls's own handle on the directory it lists
      assert.deepEqual(r.stdout.trim().split('\n'), ['0', '1', '2', '3']);
    });

    it('gets the task\'s environment (NOMAD_*, USER, HOME, TMPDIR) without LD_* or DISPLAY, and starts in the task\'s directory', async () => {
      const r = await nomad.exec(mainId, ['sh', '-c', 'env; echo "PWD=$(pwd)"']);
      assert.equal(r.result.exitCode, 0, r.stderr);
      const env = new Map(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]));
      for (const k of ['NOMAD_TASK_DIR', 'NOMAD_ALLOC_DIR', 'NOMAD_SECRETS_DIR', 'NOMAD_ALLOC_ID', 'NOMAD_TASK_NAME', 'NOMAD_JOB_NAME', 'NOMAD_CPU_LIMIT', 'NOMAD_MEMORY_LIMIT']) {
        assert.equal(env.get(k), main.env[k], k);
      }
      assert.equal(env.get('USER'), `nomad-${main.uid}`);
      assert.equal(env.get('HOME'), '/nonexistent');
      const taskRoot = path.dirname(main.env.NOMAD_TASK_DIR!);
      assert.equal(env.get('TMPDIR'), path.join(taskRoot, 'tmp'));
      assert.equal(env.get('PWD'), taskRoot);
      assert.equal(env.has('LD_PRELOAD'), false);
      assert.equal(env.has('DISPLAY'), false);
      assert.equal(env.has('TERM'), false, 'TERM is only set for terminals');
    });

    it('joins the group network namespace and sees only lo (mode GROUP)', async function () {
      const name = `exec2-exec-${process.pid}`;
      try {
        execFileSync('ip', ['netns', 'add', name]);
      } catch (err) {
        skipUnless(this, false, `cannot create a network namespace: ${(err as Error).message}`);
      }
      try {
        const { task } = await nomad.run({ command: 'sleep', args: ['1000'], unveil: ['r:/proc'], netns: `/var/run/netns/${name}` });
        try {
          const r = await nomad.exec(task.config.id, ['cat', '/proc/net/dev']);
          assert.equal(r.result.exitCode, 0, r.stderr);
          const ifaces = r.stdout.split('\n').slice(2).filter(Boolean).map((l) => l.trim().split(':')[0]);
          assert.deepEqual(ifaces, ['lo']);
          // the very namespace Nomad made for the allocation
          const r2 = await nomad.exec(task.config.id, ['readlink', '/proc/self/ns/net']);
          assert.equal(r2.stdout.trim(), `net:[${statSync(`/var/run/netns/${name}`).ino}]`);
          assert.notEqual(r2.stdout.trim(), readlinkSync('/proc/self/ns/net'));
        } finally {
          await stopAndRelease(task);
        }
      } finally {
        execFileSync('ip', ['netns', 'delete', name]);
      }
    });
  });

  describe('streams (nomad alloc exec)', () => {
    it('pipes stdin: cat echoes what it is sent and exits 0 when stdin is closed', async () => {
      const s = nomad.execStream(mainId, ['cat']);
      s.write('first line\n');
      await s.waitForStdout(/first line\n/);
      s.heartbeat();
      s.write('second line\n');
      await s.waitForStdout(/second line\n/);
      s.closeStdin();
      const r = await s.done;
      assert.equal(r.stdout, 'first line\nsecond line\n');
      assert.deepEqual(r.result, { exitCode: 0, signal: 0, oomKilled: false });
    });

    it('passes exit codes through and reports a signal death as 128+N with the signal', async () => {
      assert.equal((await nomad.exec(mainId, ['sh', '-c', 'exit 7'])).result.exitCode, 7);
      const killed = await nomad.exec(mainId, ['sh', '-c', 'kill -KILL $$']);
      assert.deepEqual(killed.result, { exitCode: 137, signal: 9, oomKilled: false });
    });

    it('keeps stdout and stderr apart and closes both before exited', async () => {
      const r = await nomad.exec(mainId, ['sh', '-c', 'echo to-out; echo to-err >&2; echo more-out']);
      assert.equal(r.stdout, 'to-out\nmore-out\n');
      assert.equal(r.stderr, 'to-err\n');
      assert.deepEqual(r.closed, { stdout: true, stderr: true });
    });

    it('delivers large output completely, in chunks of at most 4 KiB', async () => {
      const s = nomad.execStream(mainId, ['sh', '-c', 'head -c 1000000 /dev/zero | tr "\\0" x']);
      let maxChunk = 0;
      s.call.on('data', (m: { stdout?: { data: Buffer } }) => {
        maxChunk = Math.max(maxChunk, m.stdout?.data.length ?? 0);
      });
      s.closeStdin();
      const r = await s.done;
      assert.equal(r.result.exitCode, 0);
      assert.equal(r.stdout.length, 1_000_000);
      assert.ok(maxChunk > 0 && maxChunk <= 4096, `chunk of ${maxChunk} bytes`);
    });

    it('does not buffer without bound when the client reads slowly (backpressure), and loses nothing', async () => {
      const rss = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${nomad.plugin.pid}/status`, 'utf8'))![1]) * 1024;
      const total = 64 * 1024 * 1024;
      const s = nomad.execStream(mainId, ['head', '-c', String(total), '/dev/zero']);
      s.call.pause(); // a client that does not read
      const before = rss();
      await sleep(1500);
      const grown = rss() - before;
      assert.ok(grown < 24 * 1024 * 1024, `the plugin grew by ${grown} bytes while the client did not read`);
      // head is blocked on its pipe, not finished
      assert.ok(childProcesses(nomad.plugin.pid).some((p) => comm(p) === 'head'), 'the command should be waiting for the reader');
      let got = 0;
      s.call.on('data', (m: { stdout?: { data: Buffer } }) => {
        got += m.stdout?.data.length ?? 0;
      });
      s.call.resume();
      s.closeStdin();
      const r = await s.done;
      assert.equal(r.result.exitCode, 0);
      assert.equal(got, total);
    });

    it('stops reading stdin from the client while the command does not read it, and delivers all of it', async () => {
      const rss = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${nomad.plugin.pid}/status`, 'utf8'))![1]) * 1024;
      const s = nomad.execStream(mainId, ['sh', '-c', 'sleep 1.5; wc -c']);
      const before = rss();
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      for (let i = 0; i < 512; i++) s.write(chunk); // 32 MiB queued on the client
      s.closeStdin();
      await sleep(1000);
      const grown = rss() - before;
      assert.ok(grown < 16 * 1024 * 1024, `the plugin grew by ${grown} bytes holding stdin nobody reads`);
      const r = await s.done;
      assert.equal(r.stdout.trim(), String(512 * 64 * 1024));
    });

    it('forwards output written right before the exit, after a long silence', async () => {
      const runs = await Promise.all(Array.from({ length: 10 }, (_, i) => nomad.exec(mainId, ['sh', '-c', `sleep 1.1; printf "last words ${i}"; printf "on stderr ${i}" >&2`])));
      runs.forEach((r, i) => {
        assert.equal(r.stdout, `last words ${i}`);
        assert.equal(r.stderr, `on stderr ${i}`);
      });
    });

    it('gives a terminal with tty: /dev/pts/N, the size from tty_size, resizes, and ^D on stdin close', async () => {
      const s = nomad.execStream(mainId, ['sh'], { tty: true });
      let r;
      try {
        s.resize(33, 101);
        s.write('tty; stty size; echo "TERM=$TERM"\n');
        await s.waitForStdout(/33 101/);
        s.resize(40, 120);
        s.write('stty size\n');
        await s.waitForStdout(/40 120/);
        s.write('cat\n');
        s.write('typed-for-cat\n');
        // the terminal echoes the line, then cat prints it
        await s.waitForStdout(/typed-for-cat\r\n[\s\S]*typed-for-cat\r\n/);
        s.closeStdin(); // ^D ends cat
        s.write('exit 5\n');
        r = await s.done;
      } finally {
        s.cancel();
      }
      assert.equal(r.result.exitCode, 5);
      assert.match(r.stdout, /\/dev\/pts\/\d+\r\n/);
      assert.match(r.stdout, /TERM=xterm\r\n/);
      assert.equal(r.stderr, '', 'a terminal has one output stream');
    });

    it('lets a tty session reopen its terminal as /dev/tty', async () => {
      const s = nomad.execStream(mainId, ['sh', '-c', 'echo via-dev-tty > /dev/tty; echo "rc=$?"'], { tty: true });
      const r = await s.done;
      assert.match(r.stdout, /via-dev-tty\r\nrc=0/);
    });

    it('kills the command and what it started when the client cancels, leaving the task running', async () => {
      const before = cgroupPids(main).length;
      const s = nomad.execStream(mainId, ['sh', '-c', 'sleep 1000 & sleep 1000 & echo ready; wait']);
      await s.waitForStdout(/ready/);
      assert.equal(cgroupPids(main).length, before + 3);
      s.cancel();
      await until('the session\'s processes to die', () => cgroupPids(main).length === before);
      assert.equal((await nomad.inspect(mainId)).task!.state, TaskState.RUNNING);
      await assert.rejects(s.done, (e: grpc.ServiceError) => e.code === grpc.status.CANCELLED);
    });

    it('kills jobs of an interactive tty shell (other process groups of the session) on cancel', async () => {
      const before = cgroupPids(main).length;
      const s = nomad.execStream(mainId, ['sh', '-i'], { tty: true });
      try {
        s.write('set -m; sleep 1001 & sleep 1002 & echo started-$((1+1))\n');
        await s.waitForStdout(/started-2/);
        await until('the jobs to run', () => cgroupPids(main).length === before + 3);
        const pgids = cgroupPids(main).map((p) => {
          const s = procStat(p);
          assert.ok(s, `process ${p} vanished`);
          return s.pgrp;
        });
        assert.equal(new Set(pgids).size, 5, 'job control gives each job a process group of its own');
      } finally {
        s.cancel();
      }
      await until('the session\'s processes to die', () => cgroupPids(main).length === before);
      assert.deepEqual(cgroupPids(main).map(comm).sort(), ['exec2-init', 'sleep']);
    });

    it('ends the stream with a result when the task exits under a running session', async () => {
      const { task } = await nomad.run({ command: 'sleep', args: ['1000'] });
      const s = nomad.execStream(task.config.id, ['sh', '-c', 'echo ready; exec sleep 1000']);
      await s.waitForStdout(/ready/);
      await nomad.stop(task.config.id, 1000, 'SIGTERM');
      const r = await s.done;
      assert.deepEqual(r.result, { exitCode: 137, signal: 9, oomKilled: false }, 'killed with the task\'s pid namespace');
      assert.deepEqual(r.closed, { stdout: true, stderr: true });
      await nomad.wait(task.config.id);
      await nomad.destroy(task.config.id);
      nomad.releaseTask(task);
    });

    it('reports a missing command like a shell: 127 and the reason on stderr', async () => {
      const r = await nomad.exec(mainId, ['no-such-command-exec2']);
      assert.equal(r.result.exitCode, 127);
      assert.match(r.stderr, /exec2: command not found: "no-such-command-exec2" \(searched PATH=/);
      assert.deepEqual(r.closed, { stdout: true, stderr: true });
    });

    it('reports a command it cannot execute with 126', async () => {
      const r = await nomad.exec(mainId, ['/proc/self/status']);
      assert.equal(r.result.exitCode, 126);
      assert.match(r.stderr, /exec2: cannot execute "\/proc\/self\/status"/);
    });
  });

  describe('script checks (ExecTask)', () => {
    it('returns stdout, stderr and the exit code in result', async () => {
      const r = await nomad.execTask(mainId, ['sh', '-c', 'echo healthy; echo note >&2; exit 1'], 5000);
      assert.equal(r.stdout.toString(), 'healthy\n');
      assert.equal(r.stderr.toString(), 'note\n');
      assert.deepEqual(r.result, { exitCode: 1, signal: 0, oomKilled: false });
      const ok = await nomad.execTask(mainId, ['true']);
      assert.deepEqual(ok.result, { exitCode: 0, signal: 0, oomKilled: false });
    });

    it('runs with stdin at /dev/null', async () => {
      const r = await nomad.execTask(mainId, ['sh', '-c', 'cat; readlink /proc/self/fd/0'], 5000);
      assert.equal(r.stdout.toString(), '/dev/null\n');
    });

    it('kills a command that outlives its timeout, with what it started, and still sets result', async () => {
      const before = cgroupPids(main).length;
      const r = await nomad.execTask(mainId, ['sh', '-c', 'echo started; sleep 30 & sleep 30'], 500);
      // Killed by the timeout (SIGKILL, and the plugin says so), not ended by sleep.
      assert.deepEqual(r.result, { exitCode: 137, signal: 9, oomKilled: false });
      assert.equal(r.stdout.toString(), 'started\n');
      assert.match(r.stderr.toString(), /timed out after 500 ms/);
      await until('the check\'s processes to die', () => cgroupPids(main).length === before);
    });

    it('keeps the last 64 KiB of each output', async () => {
      const r = await nomad.execTask(mainId, ['sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" a; printf END; head -c 70000 /dev/zero | tr "\\0" b >&2'], 10_000);
      assert.equal(r.stdout.length, 65536);
      assert.ok(r.stdout.toString().endsWith('aaaEND'));
      assert.equal(r.stderr.length, 65536);
      assert.equal(r.result!.exitCode, 0);
    });

    it('fails with NOT_FOUND naming a missing command (Nomad shows an error\'s text in the check output)', async () => {
      await expectStatus(nomad.execTask(mainId, ['no-such-command-exec2'], 1000), grpc.status.NOT_FOUND, /command not found: "no-such-command-exec2"/);
    });
  });

  describe('errors', () => {
    it('answers NOT_FOUND for an unknown task on both RPCs', async () => {
      await expectStatus(nomad.execTask('nope/nope/00000000', ['true']), grpc.status.NOT_FOUND, /task not found/);
      await expectStatus(nomad.exec('nope/nope/00000000', ['true']), grpc.status.NOT_FOUND, /task not found/);
    });

    it('answers FAILED_PRECONDITION for a task that has exited', async () => {
      const { task } = await nomad.run({ command: 'true' });
      await nomad.wait(task.config.id);
      await expectStatus(nomad.execTask(task.config.id, ['true']), grpc.status.FAILED_PRECONDITION, /not running/);
      await expectStatus(nomad.exec(task.config.id, ['true']), grpc.status.FAILED_PRECONDITION, /not running/);
      await nomad.destroy(task.config.id);
      nomad.releaseTask(task);
    });

    it('answers INVALID_ARGUMENT for an empty command', async () => {
      await expectStatus(nomad.execTask(mainId, []), grpc.status.INVALID_ARGUMENT, /needs a command/);
      await expectStatus(nomad.exec(mainId, []), grpc.status.INVALID_ARGUMENT, /needs a command/);
      await expectStatus(nomad.exec(mainId, ['']), grpc.status.INVALID_ARGUMENT, /needs a command/);
    });

    it('answers INVALID_ARGUMENT when the first message is not setup, and keeps serving', async () => {
      for (const first of [{}, { stdin: { data: Buffer.from('x'), close: false } }, { ttySize: { height: 1, width: 1 } }]) {
        const s = nomad.execStream(mainId, [], { firstMessage: first });
        await expectStatus(s.done, grpc.status.INVALID_ARGUMENT, /first ExecTaskStreaming message must carry setup/);
      }
      const r = await nomad.exec(mainId, ['echo', 'still-serving']);
      assert.equal(r.stdout, 'still-serving\n');
      assert.equal((await nomad.inspect(mainId)).task!.state, TaskState.RUNNING);
    });
  });

  describe('resources', () => {
    it('leaves no process, zombie or descriptor behind after sessions that end, fail, time out and are cancelled', async () => {
      const pluginPid = nomad.plugin.pid;
      const fds = (): number => readdirSync(`/proc/${pluginPid}/fd`).length;
      await nomad.exec(mainId, ['true']); // warm-up: worker threads, lazily opened fds
      const fdsBefore = fds();
      const cgBefore = cgroupPids(main).length;
      const childrenBefore = childProcesses(pluginPid).length;
      for (let i = 0; i < 5; i++) {
        await nomad.exec(mainId, ['sh', '-c', 'echo x; exit 3']);
        await nomad.exec(mainId, ['no-such-command-exec2']);
        await nomad.execTask(mainId, ['sleep', '10'], 100);
        const t = nomad.execStream(mainId, ['sh'], { tty: true });
        t.write('echo up\n');
        await t.waitForStdout(/up\r\n/);
        t.cancel();
        const c = nomad.execStream(mainId, ['sleep', '1000']);
        await sleep(50);
        c.cancel();
      }
      await until('sessions to be torn down', () => cgroupPids(main).length === cgBefore && childProcesses(pluginPid).length === childrenBefore && fds() === fdsBefore, 15_000).catch((e: Error) => {
        throw new Error(`${e.message}: cgroup ${cgroupPids(main).map(comm).join(',')}, children ${childProcesses(pluginPid).join(',')}, fds ${fds()} vs ${fdsBefore}`);
      });
    });

    it('kills its exec sessions when the plugin shuts down, and leaves the task running', async () => {
      const { task, handle } = await nomad.run({ command: 'sleep', args: ['1000'] });
      const other = testClient();
      try {
        other.plugin = await PluginProcess.start();
        await other.configure({ state_dir: nomad.stateDir });
        await other.recover(handle, false);
        const s = other.execStream(task.config.id, ['sh', '-c', 'echo ready; exec sleep 1000']);
        await s.waitForStdout(/ready/);
        assert.equal(cgroupPids(task).length, 3);
        assert.equal(await other.plugin.kill(), true, 'exited gracefully');
        await until('the session to die with the plugin', () => cgroupPids(task).length === 2);
        assert.equal((await nomad.inspect(task.config.id)).task!.state, TaskState.RUNNING);
      } finally {
        await other.cleanup();
        await stopAndRelease(task);
      }
    });

    it('reproduces the sandbox of a task recovered after an agent restart (no config block in the handle)', async () => {
      const { task, handle } = await nomad.run({ command: 'sleep', args: ['1000'], unveil: ['r:/etc/mime.types', 'r:/proc'], oom_score_adj: 300 });
      const other = testClient();
      try {
        // a second plugin process, as after an agent restart, given the handle Nomad stored
        other.plugin = await PluginProcess.start();
        await other.configure({ state_dir: nomad.stateDir, unveil_by_task: true });
        await other.recover(handle, true);
        const r = await other.exec(task.config.id, ['sh', '-c', 'id -u; cat /etc/passwd; echo "cat=$?"; head -c 8 /etc/mime.types; echo; cat /proc/self/oom_score_adj']);
        assert.equal(r.result.exitCode, 0, r.stderr);
        const lines = r.stdout.trim().split('\n');
        assert.equal(lines[0], String(task.uid));
        assert.match(r.stdout, /cat=1/);
        assert.equal(lines[2], readFileSync('/etc/mime.types', 'utf8').slice(0, 8));
        assert.equal(lines[3], '300');
      } finally {
        await other.plugin.kill();
        await other.cleanup();
        await stopAndRelease(task);
      }
    });
  });
});
