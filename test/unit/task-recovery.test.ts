/**
 * RecoverTask's branches on fakes. The pid checks read the real
 * /proc/<pid>/stat: this process stands in for a task that still runs (its
 * start time is known), a pid far above pid_max for one that is gone.
 */
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import * as path from 'node:path';
import type { TaskHandle } from '../../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { DriverError } from '../../src/shared/errors';
import { pidStartTime } from '../../src/shared/proc';
import { isRunning } from '../../src/main/tasks/task-record';
import { ManagerHarness, syscallError } from './task-fakes';

const ID = 'a1/web/1';
/** Above any pid_max (2^22): /proc has no such process. */
const NO_SUCH_PID = 2 ** 30;

describe('task recovery (RecoverTask on a fake native binding)', () => {
  let h: ManagerHarness;
  beforeEach(() => {
    h = new ManagerHarness();
    h.native.pidfdOpenResult = 70;
  });
  afterEach(() => h.close());

  const selfStart = (): string => {
    const t = pidStartTime(process.pid);
    if (t === null) throw new Error('cannot read this process\'s start time');
    return t;
  };
  const closed = (): number[] => h.native.calls.flatMap((c) => (c.fn === 'close' ? [c.fd] : []));
  const refused = (handle: TaskHandle | undefined, code: string, message: RegExp): void => {
    assert.throws(() => h.tm.recover(handle), (e: DriverError) => e.code === code && message.test(e.message));
    assert.equal(h.tm.get(ID), undefined, 'nothing is tracked');
  };

  it('adopts a task whose pid still has the recorded start time: running on the new pidfd, its exit watched', () => {
    h.tm.recover(h.handle({ pid: process.pid, pidStartTime: selfStart() }));
    const task = h.tm.get(ID);
    assert.deepEqual(task?.life, { phase: 'running', pidfd: 70 });
    assert.equal(task?.recovered, true);
    assert.equal(task?.startedAt.toISOString(), '2026-01-01T00:00:00.000Z', 'the start time from driver_state');
    assert.equal(h.native.watched(70), true);
    assert.deepEqual(closed(), []);
  });

  it('refuses a pid that now belongs to another process when the task recorded no exit (FAILED_PRECONDITION), closing the pidfd', () => {
    refused(h.handle({ pid: process.pid, pidStartTime: '1' }), 'FAILED_PRECONDITION', /now belongs to another process .*not adopting it/);
    assert.deepEqual(closed(), [70]);
  });

  it('settles a task whose pid was reused from the exit it recorded', async () => {
    h.recordStatus('exited 4');
    h.tm.recover(h.handle({ pid: process.pid, pidStartTime: '1' }));
    const task = h.tm.get(ID);
    assert.deepEqual(task?.life, { phase: 'vanished' });
    assert.deepEqual(closed(), [70], 'the stranger\'s pidfd is closed at once');
    assert.deepEqual((await h.tm.wait(ID)).result, { exitCode: 4, signal: 0, oomKilled: false });
  });

  it('tracks a task whose process is gone (ESRCH) as vanished, running for Nomad until its recorded exit settles on the next tick', async () => {
    h.recordStatus('signaled 9');
    h.native.pidfdOpenResult = syscallError(constants.errno.ESRCH, 'pidfd_open: no such process');
    h.tm.recover(h.handle());
    const task = h.tm.get(ID);
    assert.ok(task);
    assert.equal(isRunning(task), true);
    assert.throws(() => h.tm.signal(ID, 'SIGTERM'), (e: DriverError) => e.code === 'FAILED_PRECONDITION', 'a vanished task has nothing to signal');
    assert.deepEqual((await task.exited).result, { exitCode: 137, signal: 9, oomKilled: false });
    assert.equal(isRunning(task), false);
    assert.deepEqual(h.native.signals(), []);
  });

  it('reports an unknown exit for a gone task that recorded nothing', async () => {
    h.native.pidfdOpenResult = syscallError(constants.errno.ESRCH, 'pidfd_open: no such process');
    h.tm.recover(h.handle());
    const exit = await h.tm.wait(ID);
    assert.deepEqual(exit, { result: { exitCode: -1, signal: 0, oomKilled: false }, err: 'task process complete but status is missing' });
  });

  it('settles, not adopts, a pid that went away between pidfd_open and the start time check', async () => {
    h.recordStatus('exited 0');
    h.tm.recover(h.handle({ pid: NO_SUCH_PID }));
    assert.deepEqual(closed(), [70]);
    assert.deepEqual(h.tm.get(ID)?.life, { phase: 'vanished' });
    assert.equal((await h.tm.wait(ID)).result.exitCode, 0);
  });

  it('fails with INTERNAL when pidfd_open fails otherwise', () => {
    h.native.pidfdOpenResult = syscallError(constants.errno.EMFILE, 'pidfd_open: too many open files');
    refused(h.handle(), 'INTERNAL', /cannot open pidfd for task a1\/web\/1 \(pid 4242\): pidfd_open: too many open files/);
  });

  it('fails with INTERNAL and closes the pidfd when the exit watcher cannot be armed', () => {
    h.native.watchExitFailures = 1;
    refused(h.handle({ pid: process.pid, pidStartTime: selfStart() }), 'INTERNAL', /cannot watch the exit of recovered task a1\/web\/1/);
    assert.deepEqual(closed(), [70]);
  });

  it('settles and destroys a task whose cgroup is gone: no OOM, no error', async () => {
    h.recordStatus('exited 2');
    h.native.pidfdOpenResult = syscallError(constants.errno.ESRCH, 'pidfd_open: no such process');
    h.tm.recover(h.handle({ cgroup: { mode: 'v2', dir: path.join(h.scratch.root, 'removed-cgroup') } }));
    assert.deepEqual((await h.tm.wait(ID)).result, { exitCode: 2, signal: 0, oomKilled: false });
    await h.tm.destroy(ID, false);
    assert.equal(h.tm.get(ID), undefined);
  });

  it('leaves a task it already tracks alone on a repeated RecoverTask (no pidfd opened)', async () => {
    const task = await h.startRunning();
    h.tm.recover(h.handle());
    assert.equal(h.tm.get(ID), task);
    assert.equal(h.native.calls.some((c) => c.fn === 'pidfdOpen'), false);
  });

  it('refuses handles Nomad could not have stored (INVALID_ARGUMENT)', () => {
    refused(undefined, 'INVALID_ARGUMENT', /needs a handle with its task config/);
    refused({ ...h.handle(), config: undefined }, 'INVALID_ARGUMENT', /needs a handle with its task config/);
    refused(h.handle({}, h.config({ id: '' })), 'INVALID_ARGUMENT', /has no task id/);
    refused({ ...h.handle(), version: 2 }, 'INVALID_ARGUMENT', /handle version 2 is not supported/);
    refused({ ...h.handle(), driverState: Buffer.from('not json') }, 'INVALID_ARGUMENT', /not from this driver/);
    assert.equal(h.native.calls.length, 0, 'no pidfd was opened for a bad handle');
  });
});
