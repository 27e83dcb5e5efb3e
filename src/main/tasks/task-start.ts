/**
 * StartTask after the plan: the launch through the worker pool (again,
 * later, while logmon has not opened the FIFOs), the record of what it
 * started, and the handle Nomad stores. A task that was launched but cannot
 * be handed to Nomad is killed and cleaned up, never left running unwatched.
 */
import { constants } from 'node:os';
import type { TaskConfig, TaskHandle } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import { TaskState } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import type { Exec2Native } from '../../native/binding';
import { killAll, removeOwnCgroupsAsync, withOwnCreated, type TaskCgroup } from '../../shared/cgroups/task-cgroup';
import { DriverError, messageOf } from '../../shared/errors';
import { removeStatusDirAsync } from '../../shared/exit-status';
import { launchedOf, newHandoff } from '../../shared/launch-handoff';
import type { LaunchReply, LaunchRequest } from '../../shared/messages';
import type { Launcher } from '../launcher';
import { launchError } from '../launch-error';
import type { Logger } from '../log';
import { encodeDriverState, HANDLE_VERSION, type DriverStateV1 } from './driver-state';
import { launchedState, type LaunchPlan } from './launch-plan';
import { readerRetryDelay } from './retry';
import { isRunning, type TaskRecord } from './task-record';

/** How often a failing exit watch is tried again for a task being killed (10, 40, 160, 640 ms apart). */
const REAP_WATCH_ATTEMPTS = 4;

export interface TaskStartDeps {
  native: () => Exec2Native;
  launcher: Launcher;
  logger: Logger;
}

/** Makes the record of a launched task with its exit watcher armed (throws when it cannot be armed). */
export type Register = (config: TaskConfig, state: DriverStateV1, pidfd: number, startedAt: Date) => TaskRecord;

export class TaskStarter {
  constructor(private readonly deps: TaskStartDeps) {}

  /** Launch `plan` and track what it started; throws the DriverError StartTask answers with. */
  async start(cfg: TaskConfig, plan: LaunchPlan, register: Register): Promise<TaskRecord> {
    const { req } = plan;
    const reply = await this.launchWaitingForReader(req);
    if (!reply.ok) throw launchError(reply);
    const startedAt = new Date();
    const state = launchedState(plan, reply, startedAt);
    let task: TaskRecord;
    try {
      task = register(cfg, state, reply.pidfd, startedAt);
    } catch (err) {
      // Running but unwatched: nobody would ever see its exit. Kill it and
      // leave nothing behind, so Nomad's retry starts from a clean slate.
      await this.abandon({ pidfd: reply.pidfd, pid: reply.pid }, reply.cgroup, req.statusDir);
      throw new DriverError('INTERNAL', `cannot watch the task's exit (${messageOf(err)}); the task was killed`, { recoverable: true, cause: err });
    }
    task.timings = reply.timings;
    this.deps.logger.debug('task started', {
      task_id: cfg.id,
      pid: reply.pid,
      user: req.user.name,
      to_exec_us: Math.round(reply.timings.totalToExecNs / 1000),
      queue_us: Math.round(reply.timings.queueNs / 1000),
      cgroup_us: Math.round(reply.timings.cgroupNs / 1000),
      prepare_us: Math.round(reply.timings.prepareNs / 1000),
      spawn_us: Math.round(reply.timings.spawnNs / 1000),
      // CLOCK_MONOTONIC, to line launches up with tracing tools (and the benchmark)
      received_monotonic_ns: req.receivedNs,
      // every phase, ns (shared/messages.ts LaunchTimings; the benchmark's breakdown)
      timings_ns: reply.timings,
    });
    return task;
  }

  /**
   * Launch, and when logmon has not opened the FIFOs yet (EXEC2_LOG_READER)
   * launch again later: the worker never waits, this thread waits on a timer
   * with backoff, so tasks whose reader is late hold no worker. The answer
   * is the first success or the last failure (recoverable).
   */
  private async launchWaitingForReader(req: LaunchRequest): Promise<LaunchReply> {
    const began = Date.now();
    for (let attempt = 1; ; attempt++) {
      const reply = await this.launchOnce(req);
      if (reply.ok || reply.code !== 'EXEC2_LOG_READER') return reply;
      const delay = readerRetryDelay(attempt, Date.now() - began);
      if (delay === null) return { ...reply, message: `${reply.message}; gave up after ${attempt} attempts in ${Date.now() - began} ms` };
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** One launch through the pool; whatever it launched is never lost with its reply. */
  private async launchOnce(req: LaunchRequest): Promise<LaunchReply> {
    const handoff = newHandoff();
    let reply: LaunchReply;
    try {
      reply = await this.deps.launcher.launch({ ...req, handoff });
    } catch (err) {
      const launched = launchedOf(handoff);
      if (launched) await this.abandon(launched, withOwnCreated(req.cgroup, launched.ownCreatedMask), req.statusDir);
      throw new DriverError('INTERNAL', `launch failed in the worker pool: ${messageOf(err)}${launched ? '; the task it had started was killed' : ''}`, { recoverable: true, cause: err });
    }
    if (!reply.ok) {
      const launched = launchedOf(handoff);
      if (launched) await this.abandon(launched, withOwnCreated(req.cgroup, launched.ownCreatedMask), req.statusDir);
    }
    return reply;
  }

  /**
   * A task that runs but cannot be handed to Nomad: SIGKILL its pid 1 (the
   * kernel then kills its whole pid namespace) and its cgroup, reap it, and
   * remove what the launch created. Takes ownership of the pidfd.
   */
  private async abandon(l: { pidfd: number; pid: number }, cgroup: TaskCgroup, statusDir: string): Promise<void> {
    const native = this.deps.native();
    this.deps.logger.warn('killing a task that cannot be handed to Nomad', { pid: l.pid });
    try {
      native.pidfdKill(l.pidfd, constants.signals.SIGKILL);
    } catch (err) {
      this.deps.logger.debug('pidfd kill failed', { pid: l.pid, error: err });
    }
    try {
      killAll(cgroup);
    } catch (err) {
      this.deps.logger.debug('cgroup kill failed', { pid: l.pid, error: err });
    }
    if (!(await this.reap(l.pidfd))) {
      this.deps.logger.error('cannot watch a killed task to reap it; it stays a zombie until the plugin exits', { pid: l.pid });
      try {
        native.close(l.pidfd);
      } catch {
        // nothing more to release
      }
      return;
    }
    await removeOwnCgroupsAsync(cgroup);
    try {
      await removeStatusDirAsync(statusDir);
    } catch (err) {
      this.deps.logger.warn('cannot remove the status directory of a killed task', { status_dir: statusDir, error: err });
    }
  }

  /** Wait for (and reap) the process behind `pidfd`; a failing watch is tried again a few times. Closes the pidfd. */
  private async reap(pidfd: number): Promise<boolean> {
    for (let attempt = 0; attempt < REAP_WATCH_ATTEMPTS; attempt++) {
      try {
        await new Promise<void>((resolve) => this.deps.native().watchExit(pidfd, () => resolve()));
        return true;
      } catch {
        await new Promise((r) => setTimeout(r, 10 * 4 ** attempt));
      }
    }
    return false;
  }
}

/** The handle Nomad stores for `task` and hands back in RecoverTask. */
export function taskHandle(task: TaskRecord): TaskHandle {
  const { pid, pidStartTime, statusDir, cgroup, user, taskDir, startedAt, oomKillsBefore, sandbox, caps, scopeAbstractUnixSockets } = task.state;
  return {
    version: HANDLE_VERSION,
    config: task.config,
    state: isRunning(task) ? TaskState.RUNNING : TaskState.EXITED,
    driverState: Buffer.from(encodeDriverState({ pid, pidStartTime, statusDir, cgroup, user, taskDir, startedAt, oomKillsBefore, sandbox, caps, scopeAbstractUnixSockets })),
  };
}
