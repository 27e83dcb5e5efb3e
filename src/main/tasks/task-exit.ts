/**
 * A task's exit: the record is created with its exit watcher armed (a task
 * is never tracked without one), the watcher's wait status and what pid 1
 * recorded settle it once, and waiters (WaitTask, stop escalation) see it.
 */
import type { TaskConfig } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import type { Exec2Native, WaitStatus } from '../../native/binding';
import { oomKillCount } from '../../shared/cgroups/task-cgroup';
import { DriverError } from '../../shared/errors';
import { readStatus } from '../../shared/exit-status';
import type { Logger } from '../log';
import type { DriverStateV1 } from './driver-state';
import type { TaskEvents } from './task-events';
import type { TaskExit, TaskRecord } from './task-record';

export interface ExitWatchDeps {
  native: () => Exec2Native;
  logger: Logger;
  events: TaskEvents;
}

/**
 * How the task ended. pid 1's recorded status is the truth; without one,
 * the wait status of pid 1 itself (it was killed, by a cgroup kill or an OOM
 * of pid 1, before it could record anything); without either, an unknown
 * exit. OOM: the cgroup counted more kills than before this start.
 * Sync on purpose: two small pseudo-file reads (~5 µs each); fs.promises
 * would cost ~50x that in thread-pool hand-offs.
 */
export function exitFor(state: Pick<DriverStateV1, 'statusDir' | 'cgroup' | 'oomKillsBefore'>, status: WaitStatus | null): TaskExit {
  const recorded = readStatus(state.statusDir);
  const oomKilled = oomKillCount(state.cgroup) > state.oomKillsBefore;
  if (recorded) return { result: { exitCode: recorded.exitCode, signal: recorded.signal, oomKilled }, err: '' };
  if (status) return { result: { exitCode: status.exitCode, signal: status.signal, oomKilled }, err: '' };
  return { result: { exitCode: -1, signal: 0, oomKilled }, err: 'task process complete but status is missing' };
}

/**
 * A new record for a task, its exit watcher armed on `pidfd` (which the
 * watcher then owns), or, for pidfd < 0 (a recovered task whose process is
 * gone), its exit settled on the next tick. Throws when the watcher cannot
 * be armed; then no record exists and the caller still owns the pidfd.
 */
export function trackTask(deps: ExitWatchDeps, config: TaskConfig, state: DriverStateV1, pidfd: number, startedAt: Date, recovered: boolean): TaskRecord {
  let settle: (e: TaskExit) => void = () => undefined;
  const exited = new Promise<TaskExit>((resolve) => {
    settle = resolve;
  });
  const task: TaskRecord = {
    // The record outlives the request: its own copy of the task config bytes,
    // since a slice of the request (or of Node's 8 KiB Buffer pool) would keep
    // the whole underlying buffer alive for as long as the task runs.
    config: { ...config, msgpackDriverConfig: ownBytes(config.msgpackDriverConfig) },
    state,
    startedAt,
    recovered,
    exited,
    timings: null,
    life: pidfd >= 0 ? { phase: 'running', pidfd } : { phase: 'vanished' },
  };
  const finish = (status: WaitStatus | null): void => {
    const exit = exitFor(task.state, status);
    task.life = { phase: 'exited', exit, completedAt: new Date() };
    deps.logger.debug('task exited', {
      task_id: config.id,
      exit_code: exit.result.exitCode,
      signal: exit.result.signal,
      oom_killed: exit.result.oomKilled,
    });
    deps.events.notify((o) => o.onTaskExit?.(task));
    if (exit.result.oomKilled) deps.events.notify((o) => o.onDriverEvent?.(task, 'OOM killed: the task reached its memory limit', { oom_killed: 'true' }));
    settle(exit);
  };
  if (pidfd >= 0) deps.native().watchExit(pidfd, finish);
  else setImmediate(() => finish(null));
  return task;
}

/** The task's exit; with `abort`, an INTERNAL error once it fires first (WaitTask's call went away). */
export function waitExit(task: TaskRecord, abort?: AbortSignal): Promise<TaskExit> {
  if (task.life.phase === 'exited') return Promise.resolve(task.life.exit);
  if (!abort) return task.exited;
  return new Promise<TaskExit>((resolve, reject) => {
    const onAbort = (): void => reject(new DriverError('INTERNAL', 'wait cancelled'));
    abort.addEventListener('abort', onAbort, { once: true });
    void task.exited.then((e) => {
      abort.removeEventListener('abort', onAbort);
      resolve(e);
    });
  });
}

/** Whether the task exits within `ms` (true at once when it already has; false at once for ms <= 0). */
export async function exitedWithin(task: TaskRecord, ms: number): Promise<boolean> {
  if (task.life.phase === 'exited') return true;
  if (ms <= 0) return false;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  const done = await Promise.race([task.exited.then(() => true as const), timedOut]);
  clearTimeout(timer);
  return done;
}

/** `b` in a buffer of its own (exactly its length, no shared backing store). */
function ownBytes(b: Uint8Array): Buffer {
  const own = Buffer.allocUnsafeSlow(b.length);
  own.set(b);
  return own;
}
