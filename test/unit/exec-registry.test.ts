/** Exec sessions before any process starts: which tasks may have one, and the sandbox a session gets. */
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { DriverError } from '../../src/shared/errors';
import { pidStartTime } from '../../src/shared/proc';
import { execSandbox } from '../../src/main/exec/exec-registry';
import type { TaskRecord } from '../../src/main/tasks/task-record';
import { driverConfig, ManagerHarness, syscallError } from './task-fakes';

const ID = 'a1/web/1';
const CAP_NET_BIND_SERVICE = 10;
const opts = { argv: ['/bin/true'], tty: false, stdin: 'null' as const };

describe('exec sessions (registry and sandbox)', () => {
  let h: ManagerHarness;
  beforeEach(() => {
    h = new ManagerHarness();
  });
  afterEach(() => h.close());

  const rejectsWith = async (p: Promise<unknown>, code: string, message: RegExp): Promise<void> => {
    await assert.rejects(p, (e: DriverError) => e.code === code && message.test(e.message));
  };

  it('refuses an unknown task (NOT_FOUND) and an exited one (FAILED_PRECONDITION) without starting anything', async () => {
    await rejectsWith(h.tm.startExec('nope', opts), 'NOT_FOUND', /task not found/);
    await h.startRunning();
    h.native.exit(50, { exitCode: 0, signal: 0 });
    await rejectsWith(h.tm.startExec(ID, opts), 'FAILED_PRECONDITION', /task a1\/web\/1 is not running/);
  });

  it('refuses a vanished (recovered, process gone) task: it has nothing to exec into', async () => {
    h.native.pidfdOpenResult = syscallError(constants.errno.ESRCH, 'gone');
    h.tm.recover(h.handle());
    await rejectsWith(h.tm.startExec(ID, opts), 'FAILED_PRECONDITION', /is not running/);
  });

  it('refuses a task whose handle kept no sandbox and whose config block Nomad did not persist', async () => {
    h.native.pidfdOpenResult = 70;
    const self = pidStartTime(process.pid) ?? '';
    h.tm.recover(h.handle({ pid: process.pid, pidStartTime: self }, h.config({ msgpackDriverConfig: Buffer.alloc(0) })));
    await rejectsWith(h.tm.startExec(ID, opts), 'FAILED_PRECONDITION', /started by a plugin version without exec support/);
  });

  it('relays how a session ended to the task observers', () => {
    h.tm.execEnded('timeout');
    h.tm.execEnded('success');
    assert.deepEqual(h.log.events, ['exec timeout', 'exec success']);
  });

  describe('execSandbox', () => {
    async function taskWith(block: Parameters<typeof driverConfig>[0], allowCaps: number[]): Promise<TaskRecord> {
      const config = h.plugin.config;
      assert.ok(config);
      h.plugin.config = { ...config, allowCaps };
      return h.startRunning(h.config({ msgpackDriverConfig: driverConfig(block) }));
    }

    it('gives the session exactly the capabilities the task started with, whatever allow_caps says now', async () => {
      const task = await taskWith({ command: '/bin/true', cap_add: ['net_bind_service'] }, [CAP_NET_BIND_SERVICE]);
      const recorded = task.state.caps;
      assert.deepEqual(recorded, { bounding: [CAP_NET_BIND_SERVICE], ambient: [CAP_NET_BIND_SERVICE] }, 'the launch recorded the non-root set');
      const config = h.plugin.config;
      assert.ok(config);
      const sandbox = execSandbox(task, { ...config, allowCaps: [] }, [], null);
      assert.deepEqual(sandbox.caps, { root: recorded, user: recorded });
    });

    it('recomputes the capabilities for a handle that recorded none (and checks cap_add again)', async () => {
      const task = await taskWith({ command: '/bin/true', cap_add: ['net_bind_service'] }, [CAP_NET_BIND_SERVICE]);
      const older = { ...task.state, caps: undefined };
      const config = h.plugin.config;
      assert.ok(config);
      assert.throws(() => execSandbox({ ...task, state: older }, { ...config, allowCaps: [] }, [], null), (e: DriverError) => e.code === 'FAILED_PRECONDITION' && /not allowed by this client/.test(e.message));
    });

    it('keeps the task\'s abstract-socket scope, and rebuilds the sandbox from the handle\'s block when Nomad did not persist the config', async () => {
      const task = await taskWith({ command: '/bin/true', oom_score_adj: 500 }, [CAP_NET_BIND_SERVICE]);
      const config = h.plugin.config;
      assert.ok(config);
      const state = { ...task.state, scopeAbstractUnixSockets: false };
      const afterRestart: TaskRecord = { ...task, config: { ...task.config, msgpackDriverConfig: Buffer.alloc(0) }, state };
      const sandbox = execSandbox(afterRestart, { ...config, scopeAbstractUnixSockets: true }, [], null);
      assert.equal(sandbox.scopeAbstractUnixSockets, false);
      assert.equal(sandbox.oomScoreAdj, 500, 'oom_score_adj came from the block the handle kept');
    });
  });
});
