/**
 * Ending a task: SignalTask, StopTask's escalation (the task's signal, its
 * kill timeout, then SIGKILL through pid 1, then the cgroup, then pid 1
 * itself) and DestroyTask's cleanup (cgroup, status directory).
 */
import { constants } from 'node:os';
import { SIGNAL_TARGET_ALL, SIGNAL_TARGET_GROUP, type Exec2Native } from '../../native/binding';
import { isEmpty, killAll, liftCpuLimit, removeOwnCgroupsAsync } from '../../shared/cgroups/task-cgroup';
import { failedPrecondition, internal, messageOf } from '../../shared/errors';
import { removeStatusDirAsync } from '../../shared/exit-status';
import type { Logger } from '../log';
import { parseSignal } from '../signals';
import { isOwnStatusDir } from './status-dir';
import type { TaskEvents } from './task-events';
import { exitedWithin } from './task-exit';
import { livePidfd, type TaskRecord } from './task-record';

/** After a forced kill, how long pid 1 gets to record the status before the cgroup is killed. */
export const KILL_GRACE_MS = 1000;
/** DestroyTask(force) of a running task: how long SIGABRT gets before the kill. */
export const ABORT_GRACE_MS = 100;

const { SIGABRT, SIGKILL } = constants.signals;

export interface TaskStopDeps {
  native: () => Exec2Native;
  logger: Logger;
  events: TaskEvents;
  /** KILL_GRACE_MS unless a test shortens it */
  killGraceMs?: number;
}

export class TaskStopper {
  constructor(private readonly deps: TaskStopDeps) {}

  /** SignalTask: the task's process group gets `sig`; FAILED_PRECONDITION when it cannot be signalled. */
  signal(task: TaskRecord, sig: number): void {
    const pidfd = livePidfd(task);
    if (pidfd === null) throw failedPrecondition(`task ${task.config.id} is not running`);
    this.deps.native().signalTask(pidfd, sig, SIGNAL_TARGET_GROUP);
  }

  /**
   * StopTask: `signalName` (SIGINT when empty) to the task's process group,
   * then, if it has not exited after `timeoutMs`, a driver event and the
   * forced kill. Resolves once the task has exited.
   */
  async stop(task: TaskRecord, timeoutMs: number, signalName: string): Promise<void> {
    if (task.life.phase === 'exited') return;
    const pidfd = livePidfd(task);
    if (pidfd === null) {
      await task.exited;
      return;
    }
    const sig = parseSignal(signalName || 'SIGINT');
    this.deps.logger.debug('stopping task', { task_id: task.config.id, signal: sig, timeout_ms: timeoutMs });
    this.deps.native().signalTask(pidfd, sig, SIGNAL_TARGET_GROUP);
    if (await exitedWithin(task, timeoutMs)) return;
    this.deps.events.notify((o) => o.onDriverEvent?.(task, `Task did not exit within ${timeoutMs} ms of ${signalName || 'SIGINT'}; killing it`, { kill_timeout_ms: String(timeoutMs) }));
    await this.forceKill(task);
  }

  /**
   * SIGKILL everything in the task's namespace through pid 1 (which then
   * records `signaled 9`); if pid 1 itself does not go, kill the cgroup,
   * and last pid 1 itself. The CPU limit is lifted first.
   */
  async forceKill(task: TaskRecord): Promise<void> {
    const grace = this.deps.killGraceMs ?? KILL_GRACE_MS;
    const pidfd = livePidfd(task);
    if (pidfd === null) return;
    this.deps.logger.debug('killing task', { task_id: task.config.id });
    this.liftCpuLimit(task);
    this.deps.native().signalTask(pidfd, SIGKILL, SIGNAL_TARGET_ALL);
    if (await exitedWithin(task, grace)) return;
    this.deps.logger.warn('task pid 1 did not exit after SIGKILL; killing its cgroup', { task_id: task.config.id });
    killAll(task.state.cgroup);
    if (await exitedWithin(task, grace)) return;
    // Read again: the watcher may have closed the pidfd while we waited.
    const still = livePidfd(task);
    if (still !== null) this.deps.native().pidfdKill(still, SIGKILL);
    await task.exited;
  }

  /**
   * DestroyTask's work. A running task is refused without `force`; with it,
   * SIGABRT first (exec2: a task may dump state), then the forced kill.
   * Whatever is left in the cgroup is killed, the driver's own cgroups and
   * the status directory are removed.
   */
  async destroy(task: TaskRecord, force: boolean, stateDir: () => string | null): Promise<void> {
    if (task.life.phase === 'vanished') await task.exited;
    const pidfd = livePidfd(task);
    if (pidfd !== null) {
      if (!force) throw failedPrecondition('cannot destroy running task');
      this.deps.native().signalTask(pidfd, SIGABRT, SIGNAL_TARGET_GROUP);
      if (!(await exitedWithin(task, ABORT_GRACE_MS))) await this.forceKill(task);
    }
    if (!isEmpty(task.state.cgroup)) {
      this.liftCpuLimit(task);
      killAll(task.state.cgroup);
    }
    // rmdir of a v1 cgroup can block for milliseconds while the kernel takes
    // it offline, and the status dir's unlinks and rmdir wait on the journal
    // of a state_dir on ext4: both run in libuv's pool, not on this thread.
    await removeOwnCgroupsAsync(task.state.cgroup);
    await this.removeStatusDirOf(task, stateDir());
  }

  /**
   * A SIGKILLed thread still has to be scheduled to die: under a small CPU
   * quota thousands of threads take minutes to go (the quota is shared by
   * the dying threads). Lifting the quota first makes the kill take the
   * time the kernel needs, not the time the quota allows. Best effort: the
   * kill goes ahead whatever happens here.
   */
  private liftCpuLimit(task: TaskRecord): void {
    try {
      liftCpuLimit(task.state.cgroup);
    } catch (err) {
      this.deps.logger.warn('cannot lift the CPU limit of a task before killing it', { task_id: task.config.id, error: messageOf(err) });
    }
  }

  /**
   * A recovered handle names its status dir itself; it is removed only when
   * it lies exactly one level below <state_dir>/tasks (a hostile or stale
   * driver_state must never make us delete anything else).
   */
  private async removeStatusDirOf(task: TaskRecord, stateDir: string | null): Promise<void> {
    const dir = task.state.statusDir;
    if (!stateDir || !isOwnStatusDir(stateDir, dir)) {
      this.deps.logger.warn('not removing a task status directory outside <state_dir>/tasks', { task_id: task.config.id, status_dir: dir, state_dir: stateDir ?? null });
      return;
    }
    try {
      await removeStatusDirAsync(dir);
    } catch (err) {
      throw internal(`cannot remove task state ${dir}: ${messageOf(err)}`);
    }
  }
}
