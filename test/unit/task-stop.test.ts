/** Signal, stop escalation and destroy, through the task manager on fakes. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import * as path from 'node:path';
import { SIGNAL_TARGET_ALL, SIGNAL_TARGET_GROUP } from '../../src/native/binding';
import { DriverError } from '../../src/shared/errors';
import type { NativeCall } from './task-fakes';
import { ManagerHarness, syscallError, until } from './task-fakes';

const SIGINT = 2;
const SIGABRT = 6;
const SIGKILL = 9;
const SIGTERM = 15;
const ID = 'a1/web/1';

describe('stop escalation and destroy', () => {
  let h: ManagerHarness;
  beforeEach(() => {
    h = new ManagerHarness();
  });
  afterEach(() => h.close());

  /** The task exits (status `signaled <n>`) as soon as it gets one of `signals`. */
  function exitOn(...signals: number[]): void {
    h.native.onSignal = (c: NativeCall) => {
      if ((c.fn === 'signalTask' || c.fn === 'pidfdKill') && signals.includes(c.signal)) {
        setImmediate(() => h.native.exit(c.pidfd, { exitCode: 128 + c.signal, signal: c.signal }));
      }
    };
  }

  describe('SignalTask', () => {
    it('signals the task\'s process group through its pidfd', async () => {
      await h.startRunning();
      h.tm.signal(ID, 'SIGHUP');
      assert.deepEqual(h.native.signals(), [{ fn: 'signalTask', pidfd: 50, signal: 1, target: SIGNAL_TARGET_GROUP }]);
    });

    it('ignores an unknown task but refuses an exited one (FAILED_PRECONDITION) and an unknown signal name', async () => {
      h.tm.signal('nope', 'SIGHUP');
      await h.startRunning();
      assert.throws(() => h.tm.signal(ID, 'SIGNOPE'), DriverError);
      h.native.exit(50, { exitCode: 0, signal: 0 });
      assert.throws(() => h.tm.signal(ID, 'SIGHUP'), (e: DriverError) => e.code === 'FAILED_PRECONDITION' && /is not running/.test(e.message));
      assert.deepEqual(h.native.signals(), [], 'nothing was signalled, least of all a closed pidfd');
    });
  });

  describe('StopTask', () => {
    it('sends the stop signal to the process group and goes no further when the task exits within the timeout', async () => {
      await h.startRunning();
      exitOn(SIGTERM);
      await h.tm.stop(ID, 60_000, 'SIGTERM');
      assert.deepEqual(h.native.signals(), [{ fn: 'signalTask', pidfd: 50, signal: SIGTERM, target: SIGNAL_TARGET_GROUP }]);
      assert.deepEqual(h.log.driverEvents, []);
    });

    it('sends SIGINT when Nomad names no signal', async () => {
      await h.startRunning();
      exitOn(SIGINT);
      await h.tm.stop(ID, 60_000, '');
      assert.deepEqual(h.native.signals().map((c) => c.signal), [SIGINT]);
    });

    it('after the timeout tells the operator, lifts the CPU limit, then SIGKILLs every process through pid 1', async () => {
      await h.startRunning();
      h.cgroupFile('cpu.max', '10000 100000');
      let cpuMaxAtKill = '';
      h.native.onSignal = (c) => {
        if (c.fn === 'signalTask' && c.signal === SIGKILL) {
          cpuMaxAtKill = h.readCgroupFile('cpu.max');
          setImmediate(() => h.native.exit(50, { exitCode: 137, signal: 9 }));
        }
      };
      await h.tm.stop(ID, 0, 'SIGTERM');
      assert.deepEqual(h.native.signals(), [
        { fn: 'signalTask', pidfd: 50, signal: SIGTERM, target: SIGNAL_TARGET_GROUP },
        { fn: 'signalTask', pidfd: 50, signal: SIGKILL, target: SIGNAL_TARGET_ALL },
      ]);
      assert.equal(cpuMaxAtKill, 'max', 'the quota was lifted before the kill');
      assert.deepEqual(h.log.driverEvents, [{ message: 'Task did not exit within 0 ms of SIGTERM; killing it', annotations: { kill_timeout_ms: '0' } }]);
    });

    it('kills the cgroup when pid 1 survives SIGKILL, and kills pid 1 by its pidfd last', async () => {
      await h.startRunning();
      h.cgroupFile('cgroup.kill', '');
      let cgroupKilledFirst = false;
      h.native.onSignal = (c) => {
        if (c.fn === 'pidfdKill') {
          cgroupKilledFirst = h.readCgroupFile('cgroup.kill') === '1';
          setImmediate(() => h.native.exit(50, null));
        }
      };
      await h.tm.stop(ID, 0, 'SIGTERM');
      assert.deepEqual(h.native.signals().map((c) => `${c.fn} ${c.signal}`), ['signalTask 15', 'signalTask 9', 'pidfdKill 9']);
      assert.equal(cgroupKilledFirst, true, 'cgroup.kill was written before pid 1 was killed');
    });

    it('stops at the cgroup kill when that ends the task', async () => {
      await h.startRunning();
      h.cgroupFile('cgroup.kill', '');
      const stopping = h.tm.stop(ID, 0, 'SIGTERM');
      await until(() => h.readCgroupFile('cgroup.kill') === '1', 'the cgroup kill');
      h.native.exit(50, { exitCode: 137, signal: 9 });
      await stopping;
      assert.deepEqual(h.native.signals().map((c) => `${c.fn} ${c.signal}`), ['signalTask 15', 'signalTask 9']);
    });

    it('does nothing for an exited or unknown task', async () => {
      await h.tm.stop('nope', 0, 'SIGTERM');
      await h.startRunning();
      h.native.exit(50, { exitCode: 0, signal: 0 });
      await h.tm.stop(ID, 0, 'SIGTERM');
      assert.deepEqual(h.native.signals(), []);
    });
  });

  describe('DestroyTask', () => {
    it('refuses to destroy a running task without force (FAILED_PRECONDITION) and keeps it', async () => {
      await h.startRunning();
      await assert.rejects(h.tm.destroy(ID, false), (e: DriverError) => e.code === 'FAILED_PRECONDITION' && e.message === 'cannot destroy running task');
      assert.ok(h.tm.get(ID));
      assert.deepEqual(h.native.signals(), []);
    });

    it('with force sends SIGABRT first, then kills, removes the status dir and forgets the task', async () => {
      await h.startRunning();
      h.recordStatus('signaled 9');
      exitOn(SIGKILL);
      await h.tm.destroy(ID, true);
      assert.deepEqual(h.native.signals().map((c) => `${c.fn} ${c.signal} ${c.fn === 'signalTask' ? c.target : ''}`), [`signalTask ${SIGABRT} ${SIGNAL_TARGET_GROUP}`, `signalTask ${SIGKILL} ${SIGNAL_TARGET_ALL}`]);
      assert.equal(existsSync(h.statusDir()), false);
      assert.equal(h.tm.get(ID), undefined);
      assert.deepEqual(h.log.events, ['started a1/web/1', 'exit a1/web/1', 'destroyed a1/web/1']);
    });

    it('kills what is left in the cgroup of an exited task before cleaning up', async () => {
      await h.startRunning();
      h.native.exit(50, { exitCode: 0, signal: 0 });
      h.cgroupFile('cgroup.kill', '');
      h.cgroupFile('cgroup.procs', '999999\n');
      await h.tm.destroy(ID, false);
      assert.equal(h.readCgroupFile('cgroup.kill'), '1');
      assert.equal(h.tm.get(ID), undefined);
    });

    it('lets concurrent destroys share one cleanup', async () => {
      await h.startRunning();
      h.native.exit(50, { exitCode: 0, signal: 0 });
      const a = h.tm.destroy(ID, true);
      const b = h.tm.destroy(ID, true);
      assert.equal(a, b);
      await a;
      assert.deepEqual(h.log.events.filter((e) => e.startsWith('destroyed')), ['destroyed a1/web/1']);
      await h.tm.destroy(ID, true);
    });

    it('never removes a status dir a handle names outside <state_dir>/tasks', async () => {
      const elsewhere = path.join(h.scratch.root, 'precious');
      mkdirSync(elsewhere);
      writeFileSync(path.join(elsewhere, 'status'), 'exited 0\n');
      h.native.pidfdOpenResult = syscallError(constants.errno.ESRCH, 'pidfd_open: no such process');
      h.tm.recover(h.handle({ statusDir: elsewhere }));
      await h.tm.wait(ID);
      await h.tm.destroy(ID, false);
      assert.equal(existsSync(path.join(elsewhere, 'status')), true);
      assert.equal(h.tm.get(ID), undefined);
    });
  });
});
