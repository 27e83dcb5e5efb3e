/**
 * Fakes for unit tests of the task code: a native binding that records the
 * calls it gets and lets the test fire exits, a scripted Launcher, task
 * configs, and "cgroups" that are plain temporary directories (the cgroup
 * code only reads and writes files there, so no root and no cgroupfs).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TaskConfig, TaskState, type TaskHandle } from '../../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { injectNative, loadNative, type Exec2Native, type WaitStatus } from '../../src/native/binding';
import type { CgroupLayout } from '../../src/shared/cgroups/detect';
import type { TaskCgroup } from '../../src/shared/cgroups/task-cgroup';
import { recordLaunched } from '../../src/shared/launch-handoff';
import type { ExecLaunchReply, LaunchReply, LaunchRequest, LaunchSuccess, LaunchTimings } from '../../src/shared/messages';
import { encodeObject, type CtyValue } from '../../src/main/config/cty';
import { DEFAULT_PLUGIN_CONFIG, TASK_CONFIG_SCHEMA } from '../../src/main/config/config';
import { PluginState } from '../../src/main/config/plugin-state';
import type { Launcher } from '../../src/main/launcher';
import { Logger } from '../../src/main/log';
import { encodeDriverState, type DriverStateV1 } from '../../src/main/tasks/driver-state';
import { statusDirFor } from '../../src/main/tasks/status-dir';
import { TaskManager } from '../../src/main/tasks/task-manager';
import type { ExecOutcome, TaskEventsSink, TaskRecord } from '../../src/main/tasks/task-record';

export type NativeCall =
  | { fn: 'signalTask'; pidfd: number; signal: number; target: number }
  | { fn: 'pidfdKill'; pidfd: number; signal: number }
  | { fn: 'pidfdOpen'; pid: number }
  | { fn: 'close'; fd: number }
  | { fn: 'watchExit'; pidfd: number };

export type SignalCall = Extract<NativeCall, { fn: 'signalTask' | 'pidfdKill' }>;

/**
 * The calls the task code makes, recorded; watchExit callbacks are kept so
 * the test decides when (and how) a process exits. A method the task code
 * is not expected to call throws, naming it.
 */
export class FakeNative {
  readonly calls: NativeCall[] = [];
  private readonly watchers = new Map<number, (status: WaitStatus | null) => void>();
  /** next pidfdOpen: a number, or an Error to throw */
  pidfdOpenResult: number | Error = 100;
  /** how many of the next watchExit calls throw */
  watchExitFailures = 0;
  /** run on every signalTask/pidfdKill, before it is recorded (to observe state at that moment) */
  onSignal: ((call: NativeCall) => void) | null = null;

  readonly binding: Exec2Native = new Proxy({} as Exec2Native, {
    get: (_t, key) => {
      const impl = (this.impl as Record<string | symbol, unknown>)[key];
      if (impl !== undefined) return impl;
      return () => {
        throw new Error(`unexpected native call ${String(key)}`);
      };
    },
  });

  private readonly impl: Partial<Exec2Native> = {
    signalTask: (pidfd, signal, target) => {
      this.record({ fn: 'signalTask', pidfd, signal, target });
      return true;
    },
    pidfdKill: (pidfd, signal) => {
      this.record({ fn: 'pidfdKill', pidfd, signal });
      return true;
    },
    pidfdOpen: (pid) => {
      this.calls.push({ fn: 'pidfdOpen', pid });
      const r = this.pidfdOpenResult;
      if (r instanceof Error) throw r;
      return r;
    },
    close: (fd) => {
      this.calls.push({ fn: 'close', fd });
    },
    watchExit: (pidfd, onExit) => {
      if (this.watchExitFailures > 0) {
        this.watchExitFailures--;
        throw Object.assign(new Error('injected: cannot watch pidfd'), { code: 'EXEC2_SYSCALL' });
      }
      this.calls.push({ fn: 'watchExit', pidfd });
      this.watchers.set(pidfd, onExit);
    },
  };

  private record(call: NativeCall): void {
    this.onSignal?.(call);
    this.calls.push(call);
  }

  /** The process behind `pidfd` exits: its watcher is called (once, as the addon does). */
  exit(pidfd: number, status: WaitStatus | null): void {
    const cb = this.watchers.get(pidfd);
    if (!cb) throw new Error(`no exit watcher on pidfd ${pidfd}`);
    this.watchers.delete(pidfd);
    cb(status);
  }

  watched(pidfd: number): boolean {
    return this.watchers.has(pidfd);
  }

  signals(): SignalCall[] {
    return this.calls.filter((c): c is SignalCall => c.fn === 'signalTask' || c.fn === 'pidfdKill');
  }
}

/** A Launcher whose launch answers are scripted; every request is kept. */
export class FakeLauncher implements Launcher {
  readonly requests: LaunchRequest[] = [];
  /** the next launch answers: a reply, or an Error the pool throws (after recording what "was launched" when `launched` is set) */
  readonly script: Array<LaunchReply | { error: Error; launched?: { pidfd: number; pid: number } }> = [];

  /** Answers like the pool: every outcome, the missing script included, is a settled promise, never a throw. */
  launch(req: LaunchRequest): Promise<LaunchReply> {
    this.requests.push(req);
    const next = this.script.shift();
    if (!next) return Promise.reject(new Error('FakeLauncher: no scripted reply left'));
    if ('error' in next) {
      if (next.launched) recordLaunched(req.handoff, { ...next.launched, ownCreatedMask: 0 });
      return Promise.reject(next.error);
    }
    if (next.ok) recordLaunched(req.handoff, { pidfd: next.pidfd, pid: next.pid, ownCreatedMask: 0 });
    return Promise.resolve(next);
  }

  launchExec(): Promise<ExecLaunchReply> {
    return Promise.reject(new Error('FakeLauncher: exec is not scripted'));
  }

  warm(): Promise<void> {
    return Promise.resolve(); // nothing to warm
  }

  async close(): Promise<void> {
    // nothing to close
  }

  queueSize(): number {
    return 0;
  }

  utilization(): number {
    return 0;
  }
}

export const silentLogger = (): Logger => new Logger({ write: () => undefined }, 'test');

/** A temporary directory tree, removed by `remove()`. */
export class Scratch {
  readonly root = mkdtempSync(path.join(os.tmpdir(), 'exec2-unit-'));

  dir(...parts: string[]): string {
    const d = path.join(this.root, ...parts);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** A v2 "cgroup": a directory with an empty cgroup.procs (and whatever files the test adds). */
  cgroup(name = 'cg'): TaskCgroup & { mode: 'v2' } {
    const dir = this.dir(name);
    writeFileSync(path.join(dir, 'cgroup.procs'), '');
    return { mode: 'v2', dir };
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** The `config {}` block as Nomad sends it (msgpack of the cty object). */
export function driverConfig(block: Record<string, CtyValue | undefined>): Buffer {
  return Buffer.from(encodeObject({ args: null, unveil: null, oom_score_adj: null, work_dir: null, cap_add: null, cap_drop: null, pids_max: null, ...block }, TASK_CONFIG_SCHEMA));
}

/** TaskConfig.resources as Nomad sends them: `cpuMhz` of CPU, `memoryMb`/`memoryMaxMb`, the task cgroup path. */
export function taskResources(over: { cpusetCgroup?: string; cpuMhz?: number; memoryMb?: number; memoryMaxMb?: number } = {}): NonNullable<TaskConfig['resources']> {
  const cpuShares = over.cpuMhz ?? 500;
  return {
    allocatedResources: { cpu: { cpuShares }, memory: { memoryMb: over.memoryMb ?? 256, memoryMaxMb: over.memoryMaxMb ?? 0 }, networks: [] },
    linuxResources: { cpuPeriod: 0, cpuQuota: 0, cpuShares, memoryLimitBytes: 0, oomScoreAdj: 0, cpusetCpus: '', PercentTicks: 0, cpusetCgroup: over.cpusetCgroup ?? '/sys/fs/cgroup/nomad.slice/a1.web.scope' },
    ports: [],
  };
}

/** A TaskConfig as Nomad's client builds one for alloc `a1`, task `web`, below `allocDir`. */
export function taskConfig(allocDir: string, over: Partial<TaskConfig> = {}, block: Record<string, CtyValue | undefined> = { command: '/bin/true' }): TaskConfig {
  return TaskConfig.fromPartial({
    id: 'a1/web/1',
    name: 'web',
    allocId: 'a1',
    user: 'nobody',
    allocDir,
    stdoutPath: path.join(allocDir, 'alloc', 'logs', '.web.stdout.fifo'),
    stderrPath: path.join(allocDir, 'alloc', 'logs', '.web.stderr.fifo'),
    env: { NOMAD_TASK_DIR: path.join(allocDir, 'web', 'local'), NOMAD_ALLOC_DIR: path.join(allocDir, 'alloc'), NOMAD_SECRETS_DIR: path.join(allocDir, 'web', 'secrets') },
    msgpackDriverConfig: driverConfig(block),
    resources: taskResources(),
    ...over,
  });
}

/** Timings of a launch whose phases took no time (tests that do not look at them). */
export const ZERO_TIMINGS: LaunchTimings = { planNs: 0, queueNs: 0, cgroupNs: 0, prepareNs: 0, setupNs: 0, spawnNs: 0, totalToExecNs: 0, cloneAtNs: 0, finishNs: 0, doneAtNs: 0, replyNs: 0 };

/** A successful launch reply for `req`. */
export function launched(req: { cgroup: TaskCgroup }, over: Partial<LaunchSuccess> = {}): LaunchSuccess {
  return {
    ok: true,
    pid: 4242,
    pidStartTime: '777',
    pidfd: 50,
    uid: 65534,
    gid: 65534,
    home: '/nonexistent',
    cgroup: req.cgroup,
    oomKillsBefore: 0,
    timings: { planNs: 500, queueNs: 1000, cgroupNs: 2000, prepareNs: 3000, setupNs: 400, spawnNs: 4000, totalToExecNs: 10000, cloneAtNs: 6400, finishNs: 300, doneAtNs: 10300, replyNs: 200 },
    ...over,
  };
}

/** Every event the task manager told its observers, in order. */
export class EventLog implements TaskEventsSink {
  readonly events: string[] = [];
  readonly driverEvents: Array<{ message: string; annotations: Record<string, string> }> = [];
  onStarted(t: TaskRecord): void {
    this.events.push(`started ${t.config.id}`);
  }
  onStartFailure(reason: string): void {
    this.events.push(`start-failure ${reason}`);
  }
  onTaskExit(t: TaskRecord): void {
    this.events.push(`exit ${t.config.id}`);
  }
  onTaskDestroyed(t: TaskRecord): void {
    this.events.push(`destroyed ${t.config.id}`);
  }
  onDriverEvent(_t: TaskRecord, message: string, annotations: Record<string, string>): void {
    this.driverEvents.push({ message, annotations });
  }
  onExecSession(outcome: ExecOutcome): void {
    this.events.push(`exec ${outcome}`);
  }
}

/**
 * A TaskManager on fakes: the fake native binding injected (injectNative),
 * a scripted launcher, state_dir, the allocation and a v2 "cgroup" in a
 * scratch directory. `close()` undoes the injection and removes it all.
 */
export class ManagerHarness {
  readonly scratch = new Scratch();
  readonly native = new FakeNative();
  readonly launcher = new FakeLauncher();
  readonly log = new EventLog();
  readonly plugin = new PluginState();
  readonly cgroup: TaskCgroup & { mode: 'v2' };
  readonly stateDir: string;
  readonly allocDir: string;
  readonly tm: TaskManager;

  constructor() {
    injectNative(this.native.binding);
    this.stateDir = this.scratch.dir('state');
    this.allocDir = this.scratch.dir('alloc');
    this.cgroup = this.scratch.cgroup('cgroup');
    // No default unveil set: its rwc:/tmp would expose a state_dir in the scratch dir below /tmp (the plan refuses that).
    this.plugin.config = { ...DEFAULT_PLUGIN_CONFIG, stateDir: this.stateDir, unveilDefaults: false };
    this.plugin.compute = { totalMhz: 8000, cores: 4, mhzPerCore: 2000, usableMhz: 8000 };
    const layout: CgroupLayout = { mode: 'v2', root: this.scratch.root, v1: new Map(), unified: this.scratch.root, favorDynmods: false };
    this.tm = new TaskManager({ native: loadNative, launcher: this.launcher, logger: silentLogger(), plugin: this.plugin, layout: () => layout, initPath: '/opt/exec2-init', observers: [this.log], killGraceMs: 20 });
  }

  config(over: Partial<TaskConfig> = {}): TaskConfig {
    return taskConfig(this.allocDir, { resources: taskResources({ cpusetCgroup: this.cgroup.dir }), ...over });
  }

  statusDir(id = 'a1/web/1'): string {
    return statusDirFor(this.stateDir, id);
  }

  /** What pid 1 records when the task ends ("exited 3", "signaled 9"). */
  recordStatus(text: string, id = 'a1/web/1'): void {
    mkdirSync(this.statusDir(id), { recursive: true });
    writeFileSync(path.join(this.statusDir(id), 'status'), text);
  }

  cgroupFile(name: string, text: string): void {
    writeFileSync(path.join(this.cgroup.dir, name), text);
  }

  readCgroupFile(name: string): string {
    return readFileSync(path.join(this.cgroup.dir, name), 'utf8');
  }

  /** StartTask of `cfg` with a successful launch (pidfd 50, pid 4242). */
  async startRunning(cfg = this.config(), reply: Partial<LaunchSuccess> = {}): Promise<TaskRecord> {
    this.launcher.script.push(launched({ cgroup: this.cgroup }, reply));
    return (await this.tm.start(cfg)).task;
  }

  /** A handle as Nomad stores it for a task started with `state` (defaults: this harness's paths). */
  handle(state: Partial<Omit<DriverStateV1, 'format' | 'v'>> = {}, cfg = this.config()): TaskHandle {
    return {
      version: 1,
      config: cfg,
      state: TaskState.RUNNING,
      driverState: Buffer.from(encodeDriverState({
        pid: 4242, pidStartTime: '777', statusDir: this.statusDir(cfg.id), cgroup: this.cgroup, user: { name: 'nobody', uid: 65534, gid: 65534 },
        taskDir: path.join(this.allocDir, 'web'), startedAt: '2026-01-01T00:00:00.000Z', oomKillsBefore: 0, ...state,
      })),
    };
  }

  close(): void {
    injectNative(undefined);
    this.scratch.remove();
  }
}

/** Resolves once `cond` holds, checking after each turn of the event loop (bounded, so a broken test fails instead of hanging). */
export async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

/** A NativeError-shaped failure of a syscall with `errno`. */
export function syscallError(errno: number, message: string): Error {
  return Object.assign(new Error(message), { code: 'EXEC2_SYSCALL', errno });
}
