/** Exit settling: what a task's exit is, when the watcher reports it, and what WaitTask sees. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { DriverError } from '../../src/shared/errors';
import { exitFor } from '../../src/main/tasks/task-exit';
import { completedAtOf, exitOf, isRunning, livePidfd } from '../../src/main/tasks/task-record';
import { ManagerHarness, Scratch } from './task-fakes';

describe('exit settling', () => {
  describe('exitFor (status record, wait status, OOM count)', () => {
    let s: Scratch;
    beforeEach(() => {
      s = new Scratch();
    });
    afterEach(() => s.remove());

    const stateIn = (statusDir: string, cgDir: string, oomKillsBefore = 0): Parameters<typeof exitFor>[0] => ({ statusDir, cgroup: { mode: 'v2', dir: cgDir }, oomKillsBefore });

    it('takes what pid 1 recorded over the wait status of pid 1', () => {
      const dir = s.dir('status');
      writeFileSync(`${dir}/status`, 'exited 3\n');
      assert.deepEqual(exitFor(stateIn(dir, s.dir('cg')), { exitCode: 137, signal: 9 }), { result: { exitCode: 3, signal: 0, oomKilled: false }, err: '' });
    });

    it('maps a recorded signal to 128 + signo', () => {
      const dir = s.dir('status');
      writeFileSync(`${dir}/status`, 'signaled 15\n');
      assert.deepEqual(exitFor(stateIn(dir, s.dir('cg')), null).result, { exitCode: 143, signal: 15, oomKilled: false });
    });

    it('falls back to the wait status when pid 1 recorded nothing (it was killed first)', () => {
      assert.deepEqual(exitFor(stateIn(s.dir('status'), s.dir('cg')), { exitCode: 137, signal: 9 }), { result: { exitCode: 137, signal: 9, oomKilled: false }, err: '' });
    });

    it('reports an unknown exit, with a reason, when there is neither', () => {
      assert.deepEqual(exitFor(stateIn(s.dir('status'), s.dir('cg')), null), { result: { exitCode: -1, signal: 0, oomKilled: false }, err: 'task process complete but status is missing' });
    });

    it('calls the task OOM killed only when the cgroup counted more kills than before its start', () => {
      const cg = s.dir('cg');
      writeFileSync(`${cg}/memory.events`, 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n');
      assert.equal(exitFor(stateIn(s.dir('status'), cg, 1), { exitCode: 137, signal: 9 }).result.oomKilled, true);
      assert.equal(exitFor(stateIn(s.dir('status'), cg, 2), { exitCode: 137, signal: 9 }).result.oomKilled, false, 'kills of an earlier run of the cgroup do not count');
    });

    it('says not OOM killed when the cgroup is gone', () => {
      assert.equal(exitFor(stateIn(s.dir('status'), `${s.root}/no-such-cgroup`, 0), { exitCode: 1, signal: 0 }).result.oomKilled, false);
    });
  });

  describe('through the task manager', () => {
    let h: ManagerHarness;
    beforeEach(() => {
      h = new ManagerHarness();
    });
    afterEach(() => h.close());

    it('moves the task from running to exited once, with its exit and completion time, and tells the observers', async () => {
      const task = await h.startRunning();
      h.recordStatus('exited 3');
      const before = Date.now();
      h.native.exit(50, { exitCode: 3, signal: 0 });
      assert.equal(task.life.phase, 'exited');
      assert.equal(livePidfd(task), null, 'the closed pidfd is never used again');
      assert.equal(isRunning(task), false);
      assert.deepEqual(exitOf(task), { result: { exitCode: 3, signal: 0, oomKilled: false }, err: '' });
      assert.ok((completedAtOf(task)?.getTime() ?? 0) >= before);
      assert.deepEqual(await task.exited, exitOf(task));
      assert.deepEqual(h.log.events, ['started a1/web/1', 'exit a1/web/1']);
      assert.deepEqual(h.log.driverEvents, []);
    });

    it('tells the operator in a driver event when the task was OOM killed', async () => {
      h.cgroupFile('memory.events', 'oom_kill 1\n');
      await h.startRunning(h.config(), { oomKillsBefore: 0 });
      h.native.exit(50, { exitCode: 137, signal: 9 });
      const exit = await h.tm.wait('a1/web/1');
      assert.equal(exit.result.oomKilled, true);
      assert.deepEqual(h.log.driverEvents, [{ message: 'OOM killed: the task reached its memory limit', annotations: { oom_killed: 'true' } }]);
    });

    it('answers WaitTask before and after the exit with the same result', async () => {
      await h.startRunning();
      const early = h.tm.wait('a1/web/1');
      h.native.exit(50, { exitCode: 0, signal: 0 });
      const late = await h.tm.wait('a1/web/1');
      assert.deepEqual(await early, late);
      assert.deepEqual(late.result, { exitCode: 0, signal: 0, oomKilled: false });
    });

    it('ends a WaitTask whose call went away with INTERNAL, leaving the task running', async () => {
      const task = await h.startRunning();
      const abort = new AbortController();
      const waiting = h.tm.wait('a1/web/1', abort.signal);
      abort.abort();
      await assert.rejects(waiting, (e: DriverError) => e.code === 'INTERNAL' && e.message === 'wait cancelled');
      assert.equal(isRunning(task), true);
    });

    it('answers WaitTask for an unknown id with NOT_FOUND', async () => {
      await assert.rejects(h.tm.wait('nope'), (e: DriverError) => e.code === 'NOT_FOUND');
    });
  });
});
