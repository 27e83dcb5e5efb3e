/**
 * What the plugin knows about one task, and the events it tells observers
 * (metrics, the TaskEvents stream). Small on purpose: stats, metrics and the
 * exec code import this, never the task manager.
 */
import type { ExitResult, TaskConfig } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import type { LaunchTimings } from '../../shared/messages';
import type { DriverStateV1 } from './driver-state';

export interface TaskExit {
  result: ExitResult;
  /** non-empty when the exit could not be known (Nomad shows the task as UNKNOWN) */
  err: string;
}

/**
 * Where a task is in its life; each state carries exactly what is true in it.
 * - running: its pid 1 is reachable through `pidfd`, which the exit watcher
 *   owns and closes on exit.
 * - vanished: recovered after its process had already gone (or been
 *   replaced); its exit is settled on the next tick. Nomad still sees it
 *   running until then, but nothing may be signalled.
 * - exited: the exit is known; the task waits for DestroyTask.
 */
export type TaskLife =
  | { readonly phase: 'running'; readonly pidfd: number }
  | { readonly phase: 'vanished' }
  | { readonly phase: 'exited'; readonly exit: TaskExit; readonly completedAt: Date };

export interface TaskRecord {
  /** the TaskConfig of the handle (Nomad persists it and hands it back on recovery): id, name, alloc id live here only */
  readonly config: TaskConfig;
  readonly state: DriverStateV1;
  readonly startedAt: Date;
  readonly recovered: boolean;
  /** settles once, when `life` becomes exited */
  readonly exited: Promise<TaskExit>;
  /** set by the start path once the record exists (null for recovered tasks) */
  timings: LaunchTimings | null;
  life: TaskLife;
}

/** Not exited yet (running or vanished): what Nomad sees as RUNNING. */
export function isRunning(task: TaskRecord): boolean {
  return task.life.phase !== 'exited';
}

/**
 * The pidfd of a task that can be signalled, or null. A pidfd the exit
 * watcher closed must never be used: its number may already name another
 * task's pidfd, which is why it lives only in the running state.
 */
export function livePidfd(task: TaskRecord): number | null {
  return task.life.phase === 'running' ? task.life.pidfd : null;
}

export function exitOf(task: TaskRecord): TaskExit | null {
  return task.life.phase === 'exited' ? task.life.exit : null;
}

export function completedAtOf(task: TaskRecord): Date | null {
  return task.life.phase === 'exited' ? task.life.completedAt : null;
}

/**
 * How an exec session ended: the command exited 0 (success) or otherwise
 * (failure, including 126/127 for a command that cannot run), ExecTask's
 * timeout killed it, the client went away, or the RPC failed with an error.
 */
export type ExecOutcome = 'success' | 'failure' | 'timeout' | 'cancelled' | 'error';

export interface TaskEventsSink {
  onTaskExit?(task: TaskRecord): void;
  onStartFailure?(reason: string): void;
  onStarted?(task: TaskRecord): void;
  onTaskDestroyed?(task: TaskRecord): void;
  /** something the operator should see in the task's events (Nomad "Driver" events) */
  onDriverEvent?(task: TaskRecord, message: string, annotations: Record<string, string>): void;
  /** an exec session (nomad alloc exec or a script check) ended */
  onExecSession?(outcome: ExecOutcome): void;
}

/** The tasks a reader (metrics, stats) may look at. */
export interface TaskSource {
  get(id: string): TaskRecord | undefined;
  list(): TaskRecord[];
}
