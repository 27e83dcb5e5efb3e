/**
 * RecoverTask: adopt a task a previous plugin process started, from the
 * handle Nomad stored. The pid is adopted only while it still is the process
 * we started (same start time): pids get reused. A task whose process is
 * gone is tracked as vanished and settles from its recorded status.
 */
import type { TaskConfig, TaskHandle } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import { isNativeError } from '../../native/binding';
import { ESRCH } from '../../native/errno';
import { failedPrecondition, internal, invalidArgument, messageOf } from '../../shared/errors';
import { readStatus } from '../../shared/exit-status';
import { pidStartTime } from '../../shared/proc';
import { decodeDriverState, type DriverStateV1 } from './driver-state';
import { trackTask, type ExitWatchDeps } from './task-exit';
import type { TaskRecord } from './task-record';

/** A handle with the task config that names the task. */
export interface RecoverableHandle {
  handle: TaskHandle;
  config: TaskConfig;
}

/** INVALID_ARGUMENT for a handle Nomad could not have stored (no config, no task id). */
export function recoverable(handle: TaskHandle | undefined): RecoverableHandle {
  if (!handle || !handle.config) throw invalidArgument('RecoverTask needs a handle with its task config');
  if (!handle.config.id) throw invalidArgument('task handle has no task id');
  return { handle, config: handle.config };
}

/**
 * A pidfd for the task's pid 1 if it still runs, else -1 (its exit is then
 * settled from what it recorded). FAILED_PRECONDITION when the pid now
 * belongs to another process and the task recorded no exit: adopting it
 * would make Nomad manage a stranger, and calling the task exited would lie.
 */
export function adoptPid(native: ExitWatchDeps['native'], taskId: string, state: DriverStateV1): number {
  let pidfd = -1;
  try {
    pidfd = native().pidfdOpen(state.pid);
  } catch (err) {
    if (!(isNativeError(err) && err.errno === ESRCH)) throw internal(`cannot open pidfd for task ${taskId} (pid ${state.pid}): ${messageOf(err)}`);
  }
  if (pidfd < 0) return -1;
  const now = pidStartTime(state.pid);
  if (now === state.pidStartTime) return pidfd;
  native().close(pidfd);
  if (now !== null && !readStatus(state.statusDir)) {
    throw failedPrecondition(`task ${taskId}: pid ${state.pid} now belongs to another process (start time ${now}, expected ${state.pidStartTime}) and no exit status was recorded; not adopting it`);
  }
  return -1;
}

/** The record of a recovered task (not yet in any store), its exit watched. */
export function recoverTask(deps: ExitWatchDeps, { handle, config }: RecoverableHandle): TaskRecord {
  const state = decodeDriverState(handle.driverState, handle.version);
  const pidfd = adoptPid(deps.native, config.id, state);
  let task: TaskRecord;
  try {
    task = trackTask(deps, config, state, pidfd, new Date(state.startedAt), true);
  } catch (err) {
    if (pidfd >= 0) deps.native().close(pidfd);
    throw internal(`cannot watch the exit of recovered task ${config.id} (pid ${state.pid}): ${messageOf(err)}`, err);
  }
  deps.logger.info('task recovered', { task_id: config.id, pid: state.pid, running: pidfd >= 0 });
  return task;
}
