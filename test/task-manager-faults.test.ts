/**
 * The task manager when a dependency fails at the worst moment: the exit
 * watcher cannot be armed for a task that already runs, or the pool loses
 * the reply of a launch that succeeded. Real launches (real worker pool,
 * kernel, cgroups) in this process; only the fault is injected, by wrapping
 * the real dependency.
 */
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import * as path from 'node:path';
import type { NomadLikeClient, PreparedTask } from '../src/client/nomad-client';
import { testClient } from './harness/client';
import { detectCgroupLayout } from '../src/shared/cgroups/detect';
import { readProcs } from '../src/shared/cgroups/task-cgroup';
import { DEFAULT_PLUGIN_CONFIG } from '../src/main/config/config';
import { DriverError } from '../src/shared/errors';
import { PiscinaLauncher, type Launcher } from '../src/main/launcher';
import { Logger } from '../src/main/log';
import { PluginState } from '../src/main/config/plugin-state';
import { procStat } from '../src/shared/proc';
import { statusDirFor } from '../src/main/tasks/status-dir';
import { TaskManager } from '../src/main/tasks/task-manager';
import { loadNative, type Exec2Native } from '../src/native/binding';
import { isRoot, skipUnless } from './harness/skip';

/** pidfds this process holds. */
function pidfds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[pidfd]') n++;
    } catch {
      // closed meanwhile (readdir's own fd)
    }
  }
  return n;
}

describe('task manager in this process (real launches; faults injected by wrapping real dependencies)', function () {
  this.timeout(60_000);
  let nomad: NomadLikeClient;
  let real: PiscinaLauncher;
  let tm: TaskManager;
  const faults = { watchExit: 0, lostReply: 0 };

  before(async function () {
    skipUnless(this, isRoot(), 'integration tests need root (namespaces, cgroups, setuid)');
    nomad = testClient();
    const reason = nomad.cgroups.skipReason;
    if (reason !== null) await nomad.cleanup();
    skipUnless(this, reason === null, reason ?? '');
    const native = loadNative();
    const faulty: Exec2Native = {
      ...native,
      watchExit: (fd, cb) => {
        if (faults.watchExit > 0) {
          faults.watchExit--;
          throw Object.assign(new Error('injected: cannot watch pidfd: no space left on device'), { code: 'EXEC2_SYSCALL' });
        }
        native.watchExit(fd, cb);
      },
    };
    real = new PiscinaLauncher();
    const launcher: Launcher = {
      launch: async (req) => {
        const reply = await real.launch(req);
        if (faults.lostReply > 0) {
          faults.lostReply--;
          throw new Error('injected: worker exited before its reply arrived');
        }
        return reply;
      },
      launchExec: (req) => real.launchExec(req),
      warm: () => real.warm(),
      close: () => real.close(),
      queueSize: () => real.queueSize(),
      utilization: () => real.utilization(),
    };
    const plugin = new PluginState();
    plugin.config = { ...DEFAULT_PLUGIN_CONFIG, stateDir: nomad.stateDir };
    tm = new TaskManager({ native: () => faulty, launcher, logger: new Logger({ write: () => undefined }, 'test'), plugin, layout: detectCgroupLayout });
  });

  after(async () => {
    if (!nomad) return;
    for (const t of tm?.list() ?? []) await tm.destroy(t.config.id, true).catch(() => undefined);
    await real?.close();
    assert.deepEqual(await nomad.cleanup(), [], 'cgroups left behind');
  });

  const taskProcs = (t: PreparedTask): number[] => Object.values(t.cgroup.dirs).filter((d) => path.basename(d) !== 'share').flatMap(readProcs);

  async function expectCleanFailure(t: PreparedTask, before: number): Promise<void> {
    await assert.rejects(tm.start(t.config), (err: DriverError) => {
      assert.equal(err.code, 'INTERNAL');
      assert.equal(err.recoverable, true, 'Nomad may retry');
      assert.match(err.message, /killed/);
      return true;
    });
    assert.equal(tm.get(t.config.id), undefined, 'no task is tracked');
    assert.deepEqual(taskProcs(t), [], 'the task process was killed');
    assert.equal(pidfds(), before, 'no pidfd leaked');
    assert.deepEqual(readdirSync(path.dirname(statusDirFor(nomad.stateDir, t.config.id))), [], 'no status directory left');
  }

  async function expectRetryWorks(t: PreparedTask): Promise<void> {
    const { task } = await tm.start(t.config);
    const exit = await tm.wait(task.config.id);
    assert.deepEqual({ code: exit.result.exitCode, err: exit.err }, { code: 4, err: '' });
    await tm.destroy(task.config.id, true);
    nomad.releaseTask(t);
  }

  it('kills a launched task whose exit watcher cannot be armed, and the retry of the same id starts it', async () => {
    const t = nomad.prepareTask({ command: 'sh', args: ['-c', 'sleep 0.2; exit 4'] });
    const before = pidfds();
    faults.watchExit = 1;
    await expectCleanFailure(t, before);
    await expectRetryWorks(t);
  });

  it('kills a launched task whose reply the pool lost, and closes its pidfd', async () => {
    const t = nomad.prepareTask({ command: 'sh', args: ['-c', 'sleep 0.2; exit 4'] });
    const before = pidfds();
    faults.lostReply = 1;
    await expectCleanFailure(t, before);
    await expectRetryWorks(t);
  });

  it('kills an exec session and its jobs without scanning the host\'s /proc', async () => {
    // a job in a process group of its own, as shell job control makes it
    const JOB = `python3 -c 'import os, time; os.setpgid(0, 0); time.sleep(1000)'`;
    const t = nomad.prepareTask({ command: 'sleep', args: ['1000'] });
    const { task } = await tm.start(t.config);
    const session = await tm.startExec(task.config.id, { argv: ['sh', '-c', `${JOB} & ${JOB} & sleep 0.2; echo ready; wait`], tty: false, stdin: 'null' });
    let out = '';
    session.stdout.on('data', (b: Buffer) => void (out += b.toString()));
    while (!out.includes('ready')) await new Promise((r) => setTimeout(r, 10));
    const members = () => taskProcs(t).map((p) => procStat(p)).filter((st) => st && st.session === session.pid && st.state !== 'Z');
    assert.ok(members().length >= 3, 'the shell and two jobs in groups of their own');
    assert.ok(new Set(members().map((st) => st!.pgrp)).size >= 3);
    // fs is what /proc scans go through; count directory listings of /proc during kill().
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the module object itself, to patch readdirSync; `import * as` would give a copy
    const fs = require('node:fs') as typeof import('node:fs');
    const readdir = fs.readdirSync;
    let procScans = 0;
    fs.readdirSync = ((p: Parameters<typeof readdir>[0], o?: unknown) => {
      if (String(p) === '/proc') procScans++;
      return (readdir as (p: unknown, o?: unknown) => unknown)(p, o);
    }) as typeof readdir;
    try {
      session.kill();
    } finally {
      fs.readdirSync = readdir;
    }
    assert.equal(procScans, 0, 'kill() listed /proc');
    const r = await session.exit;
    assert.equal(r.signal, 9);
    for (let i = 0; members().length > 0 && i < 500; i++) await new Promise((res) => setTimeout(res, 10));
    assert.deepEqual(members(), [], 'session members left');
    session.dispose();
    await tm.stop(task.config.id, 0, 'SIGKILL');
    await tm.destroy(task.config.id, true);
    nomad.releaseTask(t);
  });
});
