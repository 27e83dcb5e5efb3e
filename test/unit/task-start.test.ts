/** StartTask through the task manager on fakes: tracking, the handle, and a launched task that cannot be handed over. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { TaskState } from '../../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { DriverError } from '../../src/shared/errors';
import { decodeDriverState } from '../../src/main/tasks/driver-state';
import { isRunning } from '../../src/main/tasks/task-record';
import { ManagerHarness, until, ZERO_TIMINGS } from './task-fakes';

describe('task start (task manager on a fake native binding and launcher)', () => {
  let h: ManagerHarness;
  beforeEach(() => {
    h = new ManagerHarness();
  });
  afterEach(() => h.close());

  it('tracks a launched task as running on the pidfd the worker returned, its exit watched, and tells the observers', async () => {
    const task = await h.startRunning();
    assert.deepEqual(task.life, { phase: 'running', pidfd: 50 });
    assert.equal(h.native.watched(50), true, 'the exit watcher is armed on the pidfd');
    assert.equal(h.tm.get('a1/web/1'), task);
    assert.deepEqual(task.timings, { planNs: 500, queueNs: 1000, cgroupNs: 2000, prepareNs: 3000, setupNs: 400, spawnNs: 4000, totalToExecNs: 10000, cloneAtNs: 6400, finishNs: 300, doneAtNs: 10300, replyNs: 200 });
    assert.deepEqual(h.log.events, ['started a1/web/1']);
  });

  it('sends the planned request with a fresh hand-off buffer and the StartTask receive time', async () => {
    await h.startRunning();
    const [req] = h.launcher.requests;
    assert.ok(req?.handoff instanceof SharedArrayBuffer, 'a hand-off buffer for a lost reply');
    assert.match(req.receivedNs, /^\d+$/);
    assert.equal(req.initPath, '/opt/exec2-init');
    assert.equal(req.statusDir, h.statusDir());
  });

  it('hands Nomad a RUNNING handle whose driver_state decodes to what the launch recorded', async () => {
    h.launcher.script.push({ ok: true, pid: 4242, pidStartTime: '777', pidfd: 50, uid: 65534, gid: 65534, home: '/', cgroup: h.cgroup, oomKillsBefore: 2, timings: ZERO_TIMINGS });
    const { handle, task } = await h.tm.start(h.config());
    assert.equal(handle.state, TaskState.RUNNING);
    assert.equal(handle.config, task.config);
    const state = decodeDriverState(handle.driverState, handle.version);
    assert.deepEqual({ pid: state.pid, pst: state.pidStartTime, oom: state.oomKillsBefore, dir: state.statusDir, user: state.user }, { pid: 4242, pst: '777', oom: 2, dir: h.statusDir(), user: { name: 'nobody', uid: 65534, gid: 65534 } });
    assert.deepEqual(state, task.state);
  });

  it("keeps its own copy of the task config bytes, never a view that pins the request's buffer", async () => {
    h.launcher.script.push({ ok: true, pid: 4242, pidStartTime: '777', pidfd: 50, uid: 65534, gid: 65534, home: '/', cgroup: h.cgroup, oomKillsBefore: 0, timings: ZERO_TIMINGS });
    const cfg = h.config();
    // as a decoded request carries it: a view into a much larger buffer
    const big = Buffer.alloc(64 * 1024);
    cfg.msgpackDriverConfig.copy(big, 100);
    cfg.msgpackDriverConfig = big.subarray(100, 100 + cfg.msgpackDriverConfig.length);
    const { task } = await h.tm.start(cfg);
    assert.deepEqual(Buffer.from(task.config.msgpackDriverConfig), Buffer.from(cfg.msgpackDriverConfig));
    assert.notEqual(task.config.msgpackDriverConfig.buffer, big.buffer);
    assert.equal(task.config.msgpackDriverConfig.buffer.byteLength, cfg.msgpackDriverConfig.length);
  });

  it('refuses a second StartTask for an id being started or already tracked (ALREADY_EXISTS) without counting a start failure', async () => {
    h.launcher.script.push({ ok: true, pid: 1, pidStartTime: '1', pidfd: 50, uid: 1, gid: 1, home: '/', cgroup: h.cgroup, oomKillsBefore: 0, timings: ZERO_TIMINGS });
    const first = h.tm.start(h.config());
    await assert.rejects(h.tm.start(h.config()), (e: DriverError) => e.code === 'ALREADY_EXISTS' && /already started/.test(e.message));
    await first;
    await assert.rejects(h.tm.start(h.config()), (e: DriverError) => e.code === 'ALREADY_EXISTS');
    assert.equal(h.launcher.requests.length, 1);
    assert.deepEqual(h.log.events, ['started a1/web/1']);
  });

  it('fails before any launch when the plugin is not configured (FAILED_PRECONDITION) or the id is empty (INVALID_ARGUMENT)', async () => {
    await assert.rejects(h.tm.start(h.config({ id: '' })), (e: DriverError) => e.code === 'INVALID_ARGUMENT');
    h.plugin.config = null;
    await assert.rejects(h.tm.start(h.config()), (e: DriverError) => e.code === 'FAILED_PRECONDITION' && /not configured/.test(e.message));
    assert.equal(h.launcher.requests.length, 0);
  });

  it('fails a start whose plan is refused with the plan\'s code, counted as a start failure, launching nothing', async () => {
    await assert.rejects(h.tm.start(h.config({ user: '' })), (e: DriverError) => e.code === 'INVALID_ARGUMENT');
    assert.equal(h.launcher.requests.length, 0);
    assert.deepEqual(h.log.events, ['start-failure INVALID_ARGUMENT']);
    assert.equal(h.tm.size, 0);
  });

  it('kills a launched task whose exit watcher cannot be armed: pid 1 and the cgroup killed, reaped, status dir gone, INTERNAL recoverable', async () => {
    h.cgroupFile('cgroup.kill', '');
    mkdirSync(h.statusDir(), { recursive: true });
    h.native.watchExitFailures = 1;
    h.launcher.script.push({ ok: true, pid: 4242, pidStartTime: '777', pidfd: 50, uid: 1, gid: 1, home: '/', cgroup: h.cgroup, oomKillsBefore: 0, timings: ZERO_TIMINGS });
    const start = h.tm.start(h.config());
    await until(() => h.native.watched(50), 'the reap watch');
    h.native.exit(50, { exitCode: 137, signal: 9 });
    await assert.rejects(start, (e: DriverError) => e.code === 'INTERNAL' && e.recoverable && /cannot watch the task's exit .*the task was killed/.test(e.message));
    assert.deepEqual(h.native.signals(), [{ fn: 'pidfdKill', pidfd: 50, signal: 9 }]);
    assert.equal(h.readCgroupFile('cgroup.kill'), '1');
    assert.equal(existsSync(h.statusDir()), false);
    assert.equal(h.tm.get('a1/web/1'), undefined);
    assert.deepEqual(h.log.events, ['start-failure INTERNAL']);
  });

  it('kills what the worker launched when the pool loses its reply, and a retry of the id starts it', async () => {
    h.launcher.script.push({ error: new Error('worker exited'), launched: { pidfd: 60, pid: 99 } });
    const start = h.tm.start(h.config());
    await until(() => h.native.watched(60), 'the reap watch');
    h.native.exit(60, null);
    await assert.rejects(start, (e: DriverError) => e.code === 'INTERNAL' && e.recoverable && /launch failed in the worker pool: worker exited; the task it had started was killed/.test(e.message));
    assert.deepEqual(h.native.signals(), [{ fn: 'pidfdKill', pidfd: 60, signal: 9 }]);
    const task = await h.startRunning();
    assert.equal(isRunning(task), true);
  });

  it('says nothing was killed when the pool fails before the worker launched anything', async () => {
    h.launcher.script.push({ error: new Error('pool closed') });
    await assert.rejects(h.tm.start(h.config()), (e: DriverError) => e.code === 'INTERNAL' && e.message === 'launch failed in the worker pool: pool closed');
    assert.deepEqual(h.native.calls, []);
  });
});
