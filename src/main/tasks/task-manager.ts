/**
 * The driver's task RPCs on the main thread (protocol reference §5.7–5.16),
 * composed from one-job parts: the store (task-store.ts), the pure launch
 * plan (launch-plan.ts), the start path (task-start.ts), exits
 * (task-exit.ts), stop and destroy (task-stop.ts), recovery
 * (task-recovery.ts) and exec sessions (exec/exec-registry.ts). Launch work
 * is delegated to the worker pool; exits arrive from the native pidfd
 * watcher on this thread.
 */
import type { TaskConfig, TaskHandle } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import { INIT_HELPER_PATH, type Exec2Native } from '../../native/binding';
import type { CgroupLayout } from '../../shared/cgroups/detect';
import { DriverError, failedPrecondition, invalidArgument } from '../../shared/errors';
import type { PluginConfig } from '../config/config';
import type { PluginState } from '../config/plugin-state';
import { execSandbox, ExecRegistry, type ExecHost } from '../exec/exec-registry';
import type { ExecSession, ExecSessionOptions } from '../exec/exec-session';
import type { Launcher } from '../launcher';
import type { Logger } from '../log';
import { parseSignal } from '../signals';
import type { DriverStateV1 } from './driver-state';
import { launchPlan, pluginDirsOf } from './launch-plan';
import { TaskEvents } from './task-events';
import { trackTask, waitExit, type ExitWatchDeps } from './task-exit';
import type { ExecOutcome, TaskEventsSink, TaskExit, TaskRecord, TaskSource } from './task-record';
import { recoverable, recoverTask } from './task-recovery';
import { taskHandle, TaskStarter } from './task-start';
import { TaskStopper } from './task-stop';
import { TaskStore } from './task-store';

export interface TaskManagerDeps {
  native: () => Exec2Native;
  launcher: Launcher;
  logger: Logger;
  plugin: PluginState;
  layout: () => CgroupLayout;
  initPath?: string;
  observers?: TaskEventsSink[];
  /** how long a forced kill waits at each step (task-stop.ts KILL_GRACE_MS unless a test shortens it) */
  killGraceMs?: number;
}

export interface StartOutcome {
  handle: TaskHandle;
  task: TaskRecord;
}

const NOT_CONFIGURED = 'plugin is not configured yet (SetConfig with nomad_config has not been called)';

export class TaskManager implements TaskSource, ExecHost {
  private readonly store = new TaskStore();
  private readonly events: TaskEvents;
  private readonly exits: ExitWatchDeps;
  private readonly starter: TaskStarter;
  private readonly stopper: TaskStopper;
  private readonly execs: ExecRegistry;
  private readonly initPath: string;

  constructor(private readonly deps: TaskManagerDeps) {
    const { native, launcher, logger } = deps;
    this.initPath = deps.initPath ?? INIT_HELPER_PATH;
    this.events = new TaskEvents(logger, deps.observers);
    this.exits = { native, logger, events: this.events };
    this.starter = new TaskStarter({ native, launcher, logger });
    this.stopper = new TaskStopper({ native, logger, events: this.events, killGraceMs: deps.killGraceMs });
    this.execs = new ExecRegistry({ native, launcher, logger, initPath: this.initPath, events: this.events });
  }

  observe(sink: TaskEventsSink): void {
    this.events.observe(sink);
  }

  unobserve(sink: TaskEventsSink): void {
    this.events.unobserve(sink);
  }

  get size(): number {
    return this.store.size;
  }

  list(): TaskRecord[] {
    return this.store.list();
  }

  get(id: string): TaskRecord | undefined {
    return this.store.get(id);
  }

  inspect(id: string): TaskRecord {
    return this.store.require(id);
  }

  private configured(): PluginConfig {
    const config = this.deps.plugin.config;
    if (!config) throw failedPrecondition(NOT_CONFIGURED);
    return config;
  }

  // ---------------------------------------------------------------- start, recover

  async start(cfg: TaskConfig): Promise<StartOutcome> {
    const receivedNs = process.hrtime.bigint();
    const config = this.configured();
    if (!cfg.id) throw invalidArgument('task id must be set');
    return this.store.reserving(cfg.id, async () => {
      try {
        const { plugin, logger } = this.deps;
        const plan = launchPlan(cfg, { config, compute: plugin.compute, pluginDirs: pluginDirsOf(plugin.socketDir), layout: this.deps.layout(), initPath: this.initPath, receivedNs });
        if (plan.cpuUnlimited) logger.warn('no CPU topology from Nomad; cpu bandwidth not limited', { task_id: cfg.id });
        const task = await this.starter.start(cfg, plan, (c, state, pidfd, startedAt) => this.track(c, state, pidfd, startedAt, false));
        this.events.notify((o) => o.onStarted?.(task));
        return { handle: taskHandle(task), task };
      } catch (err) {
        const reason = err instanceof DriverError ? err.code : 'INTERNAL';
        this.events.notify((o) => o.onStartFailure?.(reason));
        throw err;
      }
    });
  }

  /** RecoverTask: a task already tracked (Nomad retries) is left as it is. */
  recover(handle: TaskHandle | undefined): void {
    const valid = recoverable(handle);
    if (this.store.has(valid.config.id)) return;
    this.store.add(recoverTask(this.exits, valid));
  }

  /** A record with its exit watcher armed, tracked at once (throws, tracking nothing, when it cannot be armed). */
  private track(config: TaskConfig, state: DriverStateV1, pidfd: number, startedAt: Date, recovered: boolean): TaskRecord {
    const task = trackTask(this.exits, config, state, pidfd, startedAt, recovered);
    this.store.add(task);
    return task;
  }

  // ---------------------------------------------------------------- wait, signal, stop, destroy

  async wait(id: string, abort?: AbortSignal): Promise<TaskExit> {
    return waitExit(this.store.require(id), abort);
  }

  signal(id: string, name: string): void {
    const sig = parseSignal(name);
    const task = this.store.get(id);
    if (task) this.stopper.signal(task, sig);
  }

  async stop(id: string, timeoutMs: number, signalName: string): Promise<void> {
    const task = this.store.get(id);
    if (task) await this.stopper.stop(task, timeoutMs, signalName);
  }

  /** Concurrent DestroyTask calls for one task share one cleanup. */
  destroy(id: string, force: boolean): Promise<void> {
    return this.store.destroyOnce(id, async (task) => {
      await this.stopper.destroy(task, force, () => this.deps.plugin.config?.stateDir ?? null);
      this.store.delete(id);
      this.events.notify((o) => o.onTaskDestroyed?.(task));
    });
  }

  // ---------------------------------------------------------------- exec

  /**
   * Start a command inside a running task (nomad alloc exec, script checks),
   * confined exactly like the task. NOT_FOUND for an unknown task,
   * FAILED_PRECONDITION when it is not running.
   */
  async startExec(id: string, opts: ExecSessionOptions): Promise<ExecSession> {
    const task = this.store.require(id);
    const { plugin } = this.deps;
    return this.execs.start(task, () => execSandbox(task, this.configured(), pluginDirsOf(plugin.socketDir), plugin.compute), opts);
  }

  /**
   * The plugin is going away: its exec sessions' streams go with it, so
   * their commands must too. (Tasks stay: they outlive the plugin.)
   */
  killExecSessions(): void {
    this.execs.killAll();
  }

  execEnded(outcome: ExecOutcome): void {
    this.execs.ended(outcome);
  }
}
