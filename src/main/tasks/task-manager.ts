/**
 * The main thread's task state: every task this plugin process started or
 * recovered, its exit, and the RPC semantics Nomad relies on (protocol
 * reference §5.7–5.16). Launch work is delegated to the worker pool; exits
 * arrive from the native pidfd watcher on this thread.
 */
import type { ExitResult, TaskConfig, TaskHandle } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import { TaskState } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import { INIT_HELPER_PATH, SIGNAL_TARGET_ALL, SIGNAL_TARGET_GROUP, type Exec2Native, type WaitStatus } from '../../native/binding';
import type { LaunchFailure, LaunchReply, LaunchRequest, LaunchTimings } from '../../shared/messages';
import { CgroupError, isEmpty, killAll, liftCpuLimit, oomKillCount, removeOwnCgroupsAsync, resolveTaskCgroup, withOwnCreated, type Limits, type TaskCgroup } from '../../shared/cgroups/task-cgroup';
import { launchedOf, newHandoff } from '../../shared/launch-handoff';
import { readerRetryDelay } from './retry';
import type { CgroupLayout } from '../../shared/cgroups/detect';
import { parseTaskConfig } from '../config/config';
import { DriverError, failedPrecondition, internal, invalidArgument, notFound } from '../../shared/errors';
import type { Launcher } from '../launcher';
import type { Logger } from '../log';
import type { PluginState } from '../config/plugin-state';
import { parseSignal } from '../signals';
import { cpuQuotaUs } from '../../shared/topology';
import { checkUserString, dynamicUser } from '../users';
import { decodeDriverState, encodeDriverState, HANDLE_VERSION, type DriverStateV1 } from './driver-state';
import { readStatus, removeStatusDir } from '../../shared/exit-status';
import { isOwnStatusDir, statusDirFor } from './status-dir';
import { pidStartTime } from '../../shared/proc';
import { memoryLimits } from './resources';
import { taskSandbox, type SandboxBlock } from './sandbox';
import { ExecSession, type ExecSessionOptions } from '../exec/exec-session';

/** After a forced kill, how long pid 1 gets to record the status before the cgroup is killed. */
const KILL_GRACE_MS = 1000;
/** How often a failing exit watch is tried again for a task being killed (10, 40, 160, 640 ms apart). */
const REAP_WATCH_ATTEMPTS = 4;

export type TaskPhase = 'running' | 'exited';

export interface TaskExit {
  result: ExitResult;
  err: string;
}

export interface TaskRecord {
  id: string;
  name: string;
  allocId: string;
  handleConfig: TaskConfig;
  state: DriverStateV1;
  phase: TaskPhase;
  startedAt: Date;
  completedAt: Date | null;
  exit: TaskExit | null;
  /** open while running; closed by the native watcher on exit */
  pidfd: number;
  recovered: boolean;
  exited: Promise<TaskExit>;
  timings: LaunchTimings | null;
}

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

/**
 * How an exec session ended: the command exited 0 (success) or otherwise
 * (failure, including 126/127 for a command that cannot run), ExecTask's
 * timeout killed it, the client went away, or the RPC failed with an error.
 */
export type ExecOutcome = 'success' | 'failure' | 'timeout' | 'cancelled' | 'error';

export interface TaskManagerDeps {
  native: () => Exec2Native;
  launcher: Launcher;
  logger: Logger;
  plugin: PluginState;
  layout: () => CgroupLayout;
  initPath?: string;
  observers?: TaskEventsSink[];
}

export interface StartOutcome {
  handle: TaskHandle;
  task: TaskRecord;
}

export class TaskManager {
  private readonly tasks = new Map<string, TaskRecord>();
  private readonly starting = new Set<string>();
  private readonly destroying = new Map<string, Promise<void>>();
  /** exec sessions whose command has not exited yet */
  private readonly execSessions = new Set<ExecSession>();

  /** Observers of starts, exits and driver events (metrics, the TaskEvents stream). */
  private readonly observers: TaskEventsSink[];

  constructor(private readonly deps: TaskManagerDeps) {
    this.observers = [...(deps.observers ?? [])];
  }

  observe(sink: TaskEventsSink): void {
    this.observers.push(sink);
  }

  unobserve(sink: TaskEventsSink): void {
    const i = this.observers.indexOf(sink);
    if (i >= 0) this.observers.splice(i, 1);
  }

  private notify(fn: (o: TaskEventsSink) => void): void {
    for (const o of this.observers) {
      try {
        fn(o);
      } catch (err) {
        this.deps.logger.error('task observer failed', { error: err });
      }
    }
  }

  get size(): number {
    return this.tasks.size;
  }

  list(): TaskRecord[] {
    return [...this.tasks.values()];
  }

  get(id: string): TaskRecord | undefined {
    return this.tasks.get(id);
  }

  private require(id: string): TaskRecord {
    const t = this.tasks.get(id);
    if (!t) throw notFound('task not found for given id');
    return t;
  }

  /** The plugin's own directories besides state_dir, which tasks must never reach. */
  private pluginDirs(): string[] {
    const dir = this.deps.plugin.socketDir;
    return dir ? [dir] : [];
  }

  // ---------------------------------------------------------------- start

  async start(cfg: TaskConfig): Promise<StartOutcome> {
    const receivedNs = process.hrtime.bigint();
    const config = this.deps.plugin.config;
    if (!config) throw failedPrecondition('plugin is not configured yet (SetConfig with nomad_config has not been called)');
    if (!cfg.id) throw invalidArgument('task id must be set');
    if (this.tasks.has(cfg.id) || this.starting.has(cfg.id)) throw new DriverError('ALREADY_EXISTS', `task with ID "${cfg.id}" already started`);
    this.starting.add(cfg.id);
    try {
      return await this.launch(cfg, receivedNs);
    } catch (err) {
      const reason = err instanceof DriverError ? err.code : 'INTERNAL';
      this.notify((o) => o.onStartFailure?.(reason));
      throw err;
    } finally {
      this.starting.delete(cfg.id);
    }
  }

  private buildRequest(cfg: TaskConfig, receivedNs: bigint): { req: LaunchRequest; taskDir: string; block: SandboxBlock } {
    const config = this.deps.plugin.config!;
    const block = parseTaskConfig(cfg.msgpackDriverConfig);
    const res = cfg.resources;
    const lin = res?.linuxResources;
    const alloc = res?.allocatedResources;
    let cgroup: TaskCgroup;
    try {
      cgroup = resolveTaskCgroup(this.deps.layout(), lin?.cpusetCgroup ?? '', cfg.allocId, cfg.name);
    } catch (err) {
      if (err instanceof CgroupError) throw failedPrecondition(err.message);
      throw err;
    }
    const compute = this.deps.plugin.compute;
    const sandbox = taskSandbox(cfg, block, config, this.pluginDirs(), { cgroup, compute });
    checkUserString(cfg.user);

    const cpuMhz = alloc?.cpu?.cpuShares || lin?.cpuShares || 0;
    const limits: Limits = {
      cpuQuotaUs: compute ? cpuQuotaUs(cpuMhz, compute.mhzPerCore) : 0,
      cpuShares: cpuMhz,
      cpusetCpus: lin?.cpusetCpus ?? '',
      ...memoryLimits(alloc?.memory?.memoryMb ?? 0, alloc?.memory?.memoryMaxMb ?? 0),
      pidsMax: pidsLimit(block.pidsMax, config.pidsMax),
    };
    if (!compute && cpuMhz > 0) this.deps.logger.warn('no CPU topology from Nomad; cpu bandwidth not limited', { task_id: cfg.id });

    const dyn = dynamicUser(cfg.user, { min: config.dynamicUserMin, max: config.dynamicUserMax });
    const req: LaunchRequest = {
      kind: 'launch',
      taskId: cfg.id,
      user: { name: cfg.user, resolved: dyn ? { uid: dyn.uid, gid: dyn.gid, groups: dyn.groups, home: dyn.home } : null },
      dynamicUser: dyn !== null,
      cgroup,
      limits,
      stdoutPath: cfg.stdoutPath || '/dev/null',
      stderrPath: cfg.stderrPath || '/dev/null',
      chownFifos: true,
      statusDir: statusDirFor(config.stateDir, cfg.id),
      netnsPath: sandbox.netnsPath,
      tmp: sandbox.tmp,
      masks: sandbox.masks,
      untrustedRoots: sandbox.untrustedRoots,
      volumes: sandbox.volumes,
      taskRoot: sandbox.taskRoot,
      argv: [block.command, ...block.args],
      env: sandbox.env,
      cwd: sandbox.cwd,
      cwdBeneath: sandbox.cwdBeneath,
      unveil: sandbox.unveil,
      oomScoreAdj: sandbox.oomScoreAdj,
      initPath: this.deps.initPath ?? INIT_HELPER_PATH,
      caps: sandbox.caps,
      scopeAbstractUnixSockets: sandbox.scopeAbstractUnixSockets,
      receivedNs: receivedNs.toString(),
    };
    return { req, taskDir: sandbox.taskRoot, block: { unveil: block.unveil, workDir: block.workDir, oomScoreAdj: block.oomScoreAdj, capAdd: block.capAdd, capDrop: block.capDrop } };
  }

  private async launch(cfg: TaskConfig, receivedNs: bigint): Promise<StartOutcome> {
    const { req, taskDir, block } = this.buildRequest(cfg, receivedNs);
    const reply = await this.launchWaitingForReader(req);
    if (!reply.ok) throw launchError(reply);

    const startTime = reply.pidStartTime;
    const startedAt = new Date();
    const state: DriverStateV1 = {
      format: 'nomad-driver-exec2-ts',
      v: 1,
      pid: reply.pid,
      pidStartTime: startTime ?? '0',
      statusDir: req.statusDir,
      cgroup: reply.cgroup,
      user: { name: req.user.name, uid: reply.uid, gid: reply.gid },
      taskDir,
      startedAt: startedAt.toISOString(),
      oomKillsBefore: reply.oomKillsBefore,
      sandbox: block,
      caps: reply.uid === 0 ? req.caps.root : req.caps.user,
      scopeAbstractUnixSockets: req.scopeAbstractUnixSockets,
    };
    let task: TaskRecord;
    try {
      task = this.register(cfg, state, reply.pidfd, startedAt, false);
    } catch (err) {
      // Running but unwatched: nobody would ever see its exit. Kill it and
      // leave nothing behind, so Nomad's retry starts from a clean slate.
      await this.abandon({ pidfd: reply.pidfd, pid: reply.pid }, reply.cgroup, req.statusDir);
      throw new DriverError('INTERNAL', `cannot watch the task's exit (${(err as Error).message}); the task was killed`, { recoverable: true, cause: err });
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
    this.notify((o) => o.onStarted?.(task));
    return { handle: this.handleFor(task), task };
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
      throw new DriverError('INTERNAL', `launch failed in the worker pool: ${(err as Error).message}${launched ? '; the task it had started was killed' : ''}`, { recoverable: true, cause: err });
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
      native.pidfdKill(l.pidfd, 9);
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
      removeStatusDir(statusDir);
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

  private handleFor(task: TaskRecord): TaskHandle {
    const { pid, pidStartTime: pst, statusDir, cgroup, user, taskDir, startedAt, oomKillsBefore, sandbox, caps, scopeAbstractUnixSockets } = task.state;
    return {
      version: HANDLE_VERSION,
      config: task.handleConfig,
      state: task.phase === 'running' ? TaskState.RUNNING : TaskState.EXITED,
      driverState: Buffer.from(encodeDriverState({ pid, pidStartTime: pst, statusDir, cgroup, user, taskDir, startedAt, oomKillsBefore, sandbox, caps, scopeAbstractUnixSockets })),
    };
  }

  /** Track a task and arm its exit watcher (pidfd >= 0) or settle it now (pidfd < 0). */
  private register(cfg: TaskConfig, state: DriverStateV1, pidfd: number, startedAt: Date, recovered: boolean): TaskRecord {
    let settle!: (e: TaskExit) => void;
    const exited = new Promise<TaskExit>((resolve) => {
      settle = resolve;
    });
    const task: TaskRecord = {
      id: cfg.id,
      name: cfg.name,
      allocId: cfg.allocId,
      handleConfig: cfg,
      state,
      phase: 'running',
      startedAt,
      completedAt: null,
      exit: null,
      pidfd,
      recovered,
      exited,
      timings: null,
    };
    const finish = (status: WaitStatus | null): void => {
      task.pidfd = -1;
      task.phase = 'exited';
      task.completedAt = new Date();
      task.exit = this.exitFor(task, status);
      this.deps.logger.debug('task exited', {
        task_id: task.id,
        exit_code: task.exit.result.exitCode,
        signal: task.exit.result.signal,
        oom_killed: task.exit.result.oomKilled,
      });
      this.notify((o) => o.onTaskExit?.(task));
      if (task.exit.result.oomKilled) this.notify((o) => o.onDriverEvent?.(task, 'OOM killed: the task reached its memory limit', { oom_killed: 'true' }));
      settle(task.exit);
    };
    // Armed before the task is tracked: if this throws, no task without a watcher exists.
    if (pidfd >= 0) this.deps.native().watchExit(pidfd, finish);
    else setImmediate(() => finish(null));
    this.tasks.set(cfg.id, task);
    return task;
  }

  // Sync on purpose: these are two small pseudo-file reads (~5 µs each);
  // fs.promises would cost ~50x that in thread-pool hand-offs.
  private exitFor(task: TaskRecord, status: WaitStatus | null): TaskExit {
    const recorded = readStatus(task.state.statusDir);
    const oomKilled = oomKillCount(task.state.cgroup) > task.state.oomKillsBefore;
    if (recorded) return { result: { exitCode: recorded.exitCode, signal: recorded.signal, oomKilled }, err: '' };
    // pid 1 itself was killed (cgroup kill, OOM of pid 1) before it could record anything.
    if (status) return { result: { exitCode: status.exitCode, signal: status.signal, oomKilled }, err: '' };
    return { result: { exitCode: -1, signal: 0, oomKilled }, err: 'task process complete but status is missing' };
  }

  // ---------------------------------------------------------------- wait / inspect

  async wait(id: string, abort?: AbortSignal): Promise<TaskExit> {
    const task = this.require(id);
    if (task.exit) return task.exit;
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

  inspect(id: string): TaskRecord {
    return this.require(id);
  }

  // ---------------------------------------------------------------- signals, stop, destroy

  signal(id: string, name: string): void {
    const sig = parseSignal(name);
    const task = this.tasks.get(id);
    if (!task) return;
    if (!isLive(task)) throw failedPrecondition(`task ${id} is not running`);
    this.deps.native().signalTask(task.pidfd, sig, SIGNAL_TARGET_GROUP);
  }

  async stop(id: string, timeoutMs: number, signalName: string): Promise<void> {
    const task = this.tasks.get(id);
    if (!task || task.phase !== 'running') return;
    if (!isLive(task)) {
      await task.exited;
      return;
    }
    const sig = parseSignal(signalName || 'SIGINT');
    this.deps.logger.debug('stopping task', { task_id: id, signal: sig, timeout_ms: timeoutMs });
    this.deps.native().signalTask(task.pidfd, sig, SIGNAL_TARGET_GROUP);
    if (await this.exitedWithin(task, timeoutMs)) return;
    this.notify((o) => o.onDriverEvent?.(task, `Task did not exit within ${timeoutMs} ms of ${signalName || 'SIGINT'}; killing it`, { kill_timeout_ms: String(timeoutMs) }));
    await this.forceKill(task);
  }

  private async exitedWithin(task: TaskRecord, ms: number): Promise<boolean> {
    if (task.phase === 'exited') return true;
    if (ms <= 0) return false;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((r) => {
      timer = setTimeout(() => r(false), ms);
    });
    const done = await Promise.race([task.exited.then(() => true as const), timedOut]);
    clearTimeout(timer);
    return done;
  }

  /**
   * SIGKILL everything in the task's namespace through pid 1 (which then
   * records `signaled 9`); if pid 1 itself does not go, kill the cgroup.
   */
  private async forceKill(task: TaskRecord): Promise<void> {
    if (!isLive(task)) return;
    this.deps.logger.debug('killing task', { task_id: task.id });
    this.liftCpuLimit(task);
    this.deps.native().signalTask(task.pidfd, 9, SIGNAL_TARGET_ALL);
    if (await this.exitedWithin(task, KILL_GRACE_MS)) return;
    this.deps.logger.warn('task pid 1 did not exit after SIGKILL; killing its cgroup', { task_id: task.id });
    killAll(task.state.cgroup);
    if (await this.exitedWithin(task, KILL_GRACE_MS)) return;
    if (isLive(task)) this.deps.native().pidfdKill(task.pidfd, 9);
    await task.exited;
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
      this.deps.logger.warn('cannot lift the CPU limit of a task before killing it', { task_id: task.id, error: (err as Error).message });
    }
  }

  /** Concurrent DestroyTask calls for one task share one cleanup. */
  destroy(id: string, force: boolean): Promise<void> {
    const pending = this.destroying.get(id);
    if (pending) return pending;
    const task = this.tasks.get(id);
    if (!task) return Promise.resolve();
    const done = this.destroyTask(task, force).finally(() => this.destroying.delete(id));
    this.destroying.set(id, done);
    return done;
  }

  private async destroyTask(task: TaskRecord, force: boolean): Promise<void> {
    const id = task.id;
    if (task.phase === 'running' && !isLive(task)) await task.exited;
    if (task.phase === 'running') {
      if (!force) throw failedPrecondition('cannot destroy running task');
      // exec2: SIGABRT first so a task can dump state, then the kill.
      this.deps.native().signalTask(task.pidfd, 6, SIGNAL_TARGET_GROUP);
      if (!(await this.exitedWithin(task, 100))) await this.forceKill(task);
    }
    if (!isEmpty(task.state.cgroup)) {
      this.liftCpuLimit(task);
      killAll(task.state.cgroup);
    }
    // rmdir of a v1 cgroup can block for milliseconds while the kernel takes
    // it offline; everything else here is a few µs and stays synchronous.
    await removeOwnCgroupsAsync(task.state.cgroup);
    this.removeStatusDirOf(task);
    this.tasks.delete(id);
    this.notify((o) => o.onTaskDestroyed?.(task));
  }

  /**
   * A recovered handle names its status dir itself; it is removed only when
   * it lies exactly one level below <state_dir>/tasks (a hostile or stale
   * driver_state must never make us delete anything else).
   */
  private removeStatusDirOf(task: TaskRecord): void {
    const dir = task.state.statusDir;
    const stateDir = this.deps.plugin.config?.stateDir;
    if (!stateDir || !isOwnStatusDir(stateDir, dir)) {
      this.deps.logger.warn('not removing a task status directory outside <state_dir>/tasks', { task_id: task.id, status_dir: dir, state_dir: stateDir ?? null });
      return;
    }
    try {
      removeStatusDir(dir);
    } catch (err) {
      throw internal(`cannot remove task state ${dir}: ${(err as Error).message}`);
    }
  }

  // ---------------------------------------------------------------- exec

  /**
   * Start a command inside a running task (nomad alloc exec, script checks),
   * confined exactly like the task: its sandbox is recomputed by the same
   * function StartTask used. NOT_FOUND for an unknown task,
   * FAILED_PRECONDITION when it is not running.
   */
  async startExec(id: string, opts: ExecSessionOptions): Promise<ExecSession> {
    const task = this.require(id);
    if (!isLive(task)) throw failedPrecondition(`task ${id} is not running`);
    const config = this.deps.plugin.config;
    if (!config) throw failedPrecondition('plugin is not configured yet (SetConfig with nomad_config has not been called)');
    // Nomad does not persist the config block across agent restarts; the
    // handle keeps the parts that shape the sandbox.
    const block: SandboxBlock | undefined = task.handleConfig.msgpackDriverConfig.length > 0 ? parseTaskConfig(task.handleConfig.msgpackDriverConfig) : task.state.sandbox;
    if (!block) throw failedPrecondition(`task ${id} was started by a plugin version without exec support; its sandbox cannot be reproduced (restart the task to enable exec)`);
    // Exactly the task's own capabilities and scopes, whatever the plugin
    // config says now (handles from older versions: recomputed). With the
    // recorded sets, cap_add is not checked against today's allow_caps: the
    // session must neither fail nor differ because the operator changed it.
    const caps = task.state.caps;
    const computed = taskSandbox(task.handleConfig, caps ? { ...block, capAdd: [], capDrop: [] } : block, config, this.pluginDirs(), { cgroup: task.state.cgroup, compute: this.deps.plugin.compute });
    const sandbox = {
      ...computed,
      caps: caps ? { root: caps, user: caps } : computed.caps,
      scopeAbstractUnixSockets: task.state.scopeAbstractUnixSockets ?? computed.scopeAbstractUnixSockets,
    };
    const deps = { native: this.deps.native, launcher: this.deps.launcher, initPath: this.deps.initPath ?? INIT_HELPER_PATH, logger: this.deps.logger };
    const session = await ExecSession.start(deps, { task, sandbox }, opts);
    this.execSessions.add(session);
    void session.exit.then(() => this.execSessions.delete(session));
    return session;
  }

  /**
   * The plugin is going away: its exec sessions' streams go with it, so
   * their commands must too. (Tasks stay: they outlive the plugin.)
   */
  killExecSessions(): void {
    for (const s of this.execSessions) s.kill();
  }

  execEnded(outcome: ExecOutcome): void {
    this.notify((o) => o.onExecSession?.(outcome));
  }

  // ---------------------------------------------------------------- recovery

  recover(handle: TaskHandle | undefined): void {
    if (!handle || !handle.config) throw invalidArgument('RecoverTask needs a handle with its task config');
    const cfg = handle.config;
    if (!cfg.id) throw invalidArgument('task handle has no task id');
    if (this.tasks.has(cfg.id)) return;
    const state = decodeDriverState(handle.driverState, handle.version);
    let pidfd = -1;
    try {
      pidfd = this.deps.native().pidfdOpen(state.pid);
    } catch (err) {
      if ((err as { errno?: number }).errno !== 3 /* ESRCH */) throw internal(`cannot open pidfd for task ${cfg.id} (pid ${state.pid}): ${(err as Error).message}`);
    }
    // Only adopt the pid if it is still the process we started: pids get reused.
    if (pidfd >= 0) {
      const now = pidStartTime(state.pid);
      if (now !== state.pidStartTime) {
        this.deps.native().close(pidfd);
        pidfd = -1;
        if (now !== null && !readStatus(state.statusDir)) {
          throw failedPrecondition(`task ${cfg.id}: pid ${state.pid} now belongs to another process (start time ${now}, expected ${state.pidStartTime}) and no exit status was recorded; not adopting it`);
        }
      }
    }
    try {
      this.register(cfg, state, pidfd, new Date(state.startedAt), true);
    } catch (err) {
      if (pidfd >= 0) this.deps.native().close(pidfd);
      throw internal(`cannot watch the exit of recovered task ${cfg.id} (pid ${state.pid}): ${(err as Error).message}`, err);
    }
    this.deps.logger.info('task recovered', { task_id: cfg.id, pid: state.pid, running: pidfd >= 0 });
  }
}

/**
 * Running and reachable through its pidfd. A recovered task whose process
 * was already gone is "running" without a pidfd until its exit is settled
 * on the next tick; and a pidfd the exit watcher closed must never be used,
 * its number may already name another task's pidfd.
 */
function isLive(task: TaskRecord): boolean {
  return task.phase === 'running' && task.pidfd >= 0;
}

/**
 * The task's pids.max: its own pids_max, which may not exceed the plugin's
 * (a job author must not lift the operator's bound), else the plugin's.
 * 0 = no limit (only when the operator set pids_max = 0).
 */
export function pidsLimit(task: number | null, plugin: number): number {
  if (task === null) return plugin;
  if (plugin > 0 && task > plugin) throw failedPrecondition(`task config: attribute "pids_max": ${task} is above this client's limit of ${plugin} (the plugin option pids_max)`, false);
  return task;
}

function launchError(f: LaunchFailure): DriverError {
  const code = f.kind === 'invalid-argument' ? 'INVALID_ARGUMENT' : f.kind === 'not-found' ? 'NOT_FOUND' : f.kind === 'failed-precondition' ? 'FAILED_PRECONDITION' : 'INTERNAL';
  return new DriverError(code, f.message, { recoverable: f.recoverable });
}

