/**
 * Resource bounds a hostile job meets: a thread and fork bomb stops at
 * pids.max (v2 pids.max, v1 the driver's own pids cgroup), a task cannot
 * lift the operator's bound, and a task with many busy threads under a
 * tiny CPU quota that ignores the stop signal is fully gone when StopTask
 * returns (the CPU limit is lifted before the kill). Asserted by results:
 * the counts the kernel reports and the processes left, never wall-clock.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { NomadLikeClient, PreparedTask } from '../../src/client/nomad-client';
import { expectStatus } from '../harness/assert-status';
import { skipUnless, startNomadOrSkip } from '../harness/skip';
import { Canary } from './helpers';

/** The task's cgroup directory holding pids.* (v1: the pids controller's, v2: the unified one). */
function pidsDir(task: PreparedTask): string {
  return task.cgroup.dirs.pids ?? task.cgroup.dirs.unified!;
}

/** Every process of the task, from each of its own cgroups (not the shared v1 cpuset). */
function taskProcesses(task: PreparedTask): number[] {
  const out = new Set<number>();
  for (const [c, dir] of Object.entries(task.cgroup.dirs)) {
    if (c === 'cpuset' && dir.endsWith('/share')) continue;
    const f = path.join(dir, 'cgroup.procs');
    if (!existsSync(f)) continue;
    for (const l of readFileSync(f, 'utf8').split('\n').filter(Boolean)) out.add(Number(l));
  }
  return [...out];
}

function cpuLimit(task: PreparedTask): string {
  const d = task.cgroup.dirs;
  return d.unified ? readFileSync(path.join(d.unified, 'cpu.max'), 'utf8').trim() : readFileSync(path.join(d.cpu!, 'cpu.cfs_quota_us'), 'utf8').trim();
}

describe('security: pids bound and a kill that works under the CPU cap', function () {
  this.timeout(180_000);
  let nomad: NomadLikeClient;
  let canary: Canary;

  before(async function () {
    skipUnless(this, existsSync('/usr/bin/python3'), '/usr/bin/python3 is not installed (apt-get install python3)');
    nomad = await startNomadOrSkip(this);
    const layout = nomad.cgroups.layout;
    skipUnless(this, layout.mode === 'v2' || layout.v1.has('pids'), 'the pids cgroup controller is not mounted');
    canary = new Canary();
  });

  afterEach(() => canary?.assertUnchanged());

  after(async () => {
    canary?.remove();
    if (nomad) assert.deepEqual(await nomad.cleanup(), [], 'cgroups left behind');
  });

  it('every task gets the plugin\'s default pids.max (4096)', async () => {
    const { task } = await nomad.run({ command: 'sleep', args: ['1000'] });
    try {
      assert.equal(readFileSync(path.join(pidsDir(task), 'pids.max'), 'utf8').trim(), '4096');
      const pid1 = Number((await nomad.inspect(task.config.id)).driver!.attributes.pid);
      assert.ok(readFileSync(path.join(pidsDir(task), 'cgroup.procs'), 'utf8').split('\n').includes(String(pid1)), 'pid 1 is not in the task\'s pids cgroup');
    } finally {
      await nomad.stop(task.config.id, 200);
      await nomad.destroy(task.config.id, true);
      nomad.releaseTask(task);
    }
  });

  it('a thread and fork bomb stops at pids.max and is gone when StopTask returns', async () => {
    const script = [
      'import os, threading, time',
      'ev = threading.Event()',
      'n = 0',
      'try:',
      '    while n < 5000:',
      '        threading.Thread(target=ev.wait, daemon=True).start()',
      '        n += 1',
      'except RuntimeError as e:',
      '    print("threads stopped", e)',
      'print("threads", n)',
      'try:',
      '    pid = os.fork()',
      '    if pid == 0: os._exit(0)',
      '    print("fork ALLOWED")',
      'except BlockingIOError as e:',
      '    print("fork denied", e.errno)',
      'print("done", flush=True)',
      'time.sleep(1000)',
    ].join('\n');
    const { task } = await nomad.run({ command: 'python3', args: ['-c', script], pids_max: 40 });
    const out = await task.stdout!.waitFor(/^done$/m, 60_000);
    assert.equal(readFileSync(path.join(pidsDir(task), 'pids.max'), 'utf8').trim(), '40');
    const current = Number(readFileSync(path.join(pidsDir(task), 'pids.current'), 'utf8'));
    assert.ok(current <= 40, `pids.current ${current} above pids.max`);
    const threads = Number(/^threads (\d+)$/m.exec(out)?.[1]);
    assert.ok(threads > 0 && threads < 40, out);
    assert.match(out, /threads stopped can't start new thread/);
    assert.match(out, /^fork denied 11$/m);
    await nomad.stop(task.config.id, 1000);
    assert.deepEqual(taskProcesses(task), [], 'task processes left after StopTask returned');
    await nomad.destroy(task.config.id, true);
    nomad.releaseTask(task);
  });

  it('a task may lower pids_max but not lift it above the plugin\'s', async () => {
    const task = nomad.prepareTask({ command: 'true', pids_max: 100000 });
    await expectStatus(nomad.startTask(task), grpc.status.FAILED_PRECONDITION, /attribute "pids_max": 100000 is above this client's limit of 4096 \(the plugin option pids_max\)/);
    nomad.releaseTask(task);
    const zero = nomad.prepareTask({ command: 'true', pids_max: 0 });
    await expectStatus(nomad.startTask(zero), grpc.status.INVALID_ARGUMENT, /attribute "pids_max": 0 is not an integer between 1 and/);
    nomad.releaseTask(zero);
  });

  it('many busy processes under a tiny CPU quota that ignore the stop signal are all gone when StopTask (kill_timeout 1s) returns', async () => {
    // 100 MHz of a 2500 MHz core: cpu quota 4 ms per 100 ms for everything in the task.
    const { task } = await nomad.run({
      command: 'sh',
      args: ['-c', 'trap "" INT TERM; i=0; while [ $i -lt 100 ]; do (while :; do :; done) & i=$((i+1)); done; echo started; wait'],
      cpuMhz: 100,
    });
    await task.stdout!.waitFor(/started/, 120_000);
    assert.notEqual(cpuLimit(task).split(' ')[0], 'max', 'the task has no CPU quota to begin with');
    assert.notEqual(cpuLimit(task), '-1', 'the task has no CPU quota to begin with');
    assert.ok(taskProcesses(task).length > 100, `only ${taskProcesses(task).length} processes`);
    await nomad.stop(task.config.id, 1000, 'SIGTERM');
    assert.deepEqual(taskProcesses(task), [], 'task processes left after StopTask returned');
    const w = await nomad.wait(task.config.id);
    assert.equal(w.result.signal, 9, 'the task ignored SIGTERM and was killed');
    // The mechanism: the quota was lifted before the kill.
    assert.ok(['-1', 'max 100000'].includes(cpuLimit(task)), `CPU limit still ${cpuLimit(task)}`);
    await nomad.destroy(task.config.id, true);
    nomad.releaseTask(task);
  });
});
