/**
 * A Nomad client in miniature, used by `nomad-driver-exec2 run`, the demo,
 * the bench and the integration tests: builds TaskConfigs exactly as the
 * real client does for an UNVEIL-isolation driver (spec §6): ids,
 * environment, allocation directory and bind-mounted task view, FIFOs with a
 * reader, dynamic users, resources, a pre-created task cgroup; and it drives
 * the plugin over gRPC with Nomad's call sequence.
 *
 * Everything it makes is named after `name` plus a random suffix (one name
 * for the data dir, state dir, socket dir and cgroup parent) and removed by
 * cleanup(). It imports no test code; from src/main only the pure config
 * codec (config/cty.ts) and the plugin's config schemas (config/config.ts),
 * because the client encodes the job's config blocks with the very hclspec
 * the plugin publishes over ConfigSchema, as Nomad does.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ClientDuplexStream, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import type { SetConfigRequest } from '../gen/hashicorp/nomad/plugins/base/base';
import {
  NetworkIsolationSpec_NetworkIsolationMode as NetMode,
  type ExecTaskResponse,
  type ExecTaskStreamingRequest,
  type ExecTaskStreamingResponse,
  type ExitResult,
  type TaskConfig,
  type TaskHandle,
  type TaskStatsResponse,
} from '../gen/hashicorp/nomad/plugins/drivers/driver';
import { encodeObject, type CtyValue } from '../main/config/cty';
import { PLUGIN_CONFIG_SCHEMA, TASK_CONFIG_SCHEMA } from '../main/config/config';
import { clientCgroups, type TaskCgroupPaths, type TaskCgroups } from './cgroups';
import { FifoReader } from './log-reader';
import { call, PluginProcess, type StartOptions } from './plugin-process';

export const MHZ_PER_CORE = 2500;

export interface PluginConfigInput {
  unveil_defaults?: boolean;
  unveil_by_task?: boolean;
  unveil_paths?: string[];
  state_dir?: string;
  metrics_address?: string;
  metrics_per_task?: boolean;
  private_tmp?: boolean;
  allow_caps?: string[];
  dynamic_user_min?: number;
  dynamic_user_max?: number;
  pids_max?: number;
  scope_abstract_unix_sockets?: boolean;
}

export interface TaskInput {
  command: string;
  args?: string[];
  unveil?: string[];
  oom_score_adj?: number;
  work_dir?: string;
  cap_add?: string[];
  cap_drop?: string[];
  pids_max?: number;
  /** job `user`; default: a dynamic workload user nomad-<n> */
  user?: string;
  cpuMhz?: number;
  memoryMb?: number;
  memoryMaxMb?: number;
  /** reserved cores, e.g. "0" */
  cores?: string;
  env?: Record<string, string>;
  name?: string;
  allocId?: string;
  /** network namespace path for GROUP mode */
  netns?: string;
  /** raw msgpack instead of the encoded config (malformed-input tests) */
  rawConfig?: Uint8Array;
  logsDisabled?: boolean;
  /** volume mounts as Nomad's volume hook hands them (TaskConfig.mounts) */
  volumes?: Array<{ taskPath: string; hostPath: string; readonly?: boolean; propagationMode?: string; selinuxLabel?: string; requestName?: string }>;
  /** stream log chunks as they arrive; output is then not kept in memory */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

export interface PreparedTask {
  config: TaskConfig;
  stdout: FifoReader | null;
  stderr: FifoReader | null;
  uid: number;
  /** host paths */
  allocDir: string;
  taskDir: string;
  /** NOMAD_TASK_DIR etc. as the task sees them */
  env: Record<string, string>;
  cgroup: TaskCgroupPaths;
  mounts: string[];
}

export function topology(cores = os.availableParallelism()) {
  return {
    nodeIds: [0],
    distances: { dimension: 1, values: [10] },
    cores: Array.from({ length: cores }, (_, i) => ({
      socketId: 0, nodeId: 0, coreId: i, coreGrade: 0, disable: false, baseSpeed: MHZ_PER_CORE, maxSpeed: 0, guessSpeed: 0,
    })),
    overrideTotalCompute: 0,
    overrideWitholdCompute: 0,
  };
}

export function encodePluginConfig(c: PluginConfigInput = {}): Uint8Array {
  const v: Record<string, CtyValue> = {
    unveil_defaults: c.unveil_defaults ?? true,
    unveil_by_task: c.unveil_by_task ?? false,
    unveil_paths: c.unveil_paths ?? null,
    state_dir: c.state_dir ?? '/run/nomad-driver-exec2',
    metrics_address: c.metrics_address ?? null,
    metrics_per_task: c.metrics_per_task ?? false,
    private_tmp: c.private_tmp ?? true,
    allow_caps: c.allow_caps ?? null,
    dynamic_user_min: c.dynamic_user_min ?? null,
    dynamic_user_max: c.dynamic_user_max ?? null,
    pids_max: c.pids_max ?? null,
    scope_abstract_unix_sockets: c.scope_abstract_unix_sockets ?? null,
  };
  return encodeObject(v, PLUGIN_CONFIG_SCHEMA);
}

export function encodeTaskConfig(t: Pick<TaskInput, 'command' | 'args' | 'unveil' | 'oom_score_adj' | 'work_dir' | 'cap_add' | 'cap_drop' | 'pids_max'>): Uint8Array {
  return encodeObject(
    {
      command: t.command, args: t.args ?? null, unveil: t.unveil ?? null, oom_score_adj: t.oom_score_adj ?? null, work_dir: t.work_dir ?? null,
      cap_add: t.cap_add ?? null, cap_drop: t.cap_drop ?? null, pids_max: t.pids_max ?? null,
    },
    TASK_CONFIG_SCHEMA,
  );
}

export interface ExecStreamOptions {
  tty?: boolean;
  /** replaces the setup message (malformed-stream tests); null sends no first message */
  firstMessage?: ExecTaskStreamingRequest | null;
}

export interface ExecStreamEnd {
  result: ExitResult;
  stdout: string;
  stderr: string;
  /** whether each stream was closed (close: true) before `exited` */
  closed: { stdout: boolean; stderr: boolean };
}

/**
 * One `nomad alloc exec` session as Nomad's client drives it: setup first,
 * then stdin, stdin close, terminal sizes; stdout/stderr chunks back until
 * `exited`, then the call ends.
 */
export class ExecStream {
  private out: Buffer[] = [];
  private err: Buffer[] = [];
  private readonly closed = { stdout: false, stderr: false };
  private result: ExitResult | null = null;
  readonly done: Promise<ExecStreamEnd>;

  constructor(readonly call: ClientDuplexStream<ExecTaskStreamingRequest, ExecTaskStreamingResponse>) {
    call.on('data', (m: ExecTaskStreamingResponse) => {
      if (m.stdout?.data.length) this.out.push(Buffer.from(m.stdout.data));
      if (m.stderr?.data.length) this.err.push(Buffer.from(m.stderr.data));
      if (m.stdout?.close) this.closed.stdout = true;
      if (m.stderr?.close) this.closed.stderr = true;
      if (m.exited) this.result = m.result ?? null;
    });
    this.done = new Promise((resolve, reject) => {
      call.on('error', (e: ServiceError) => reject(e));
      call.on('end', () => {
        if (!this.result) reject(new Error(`exec stream ended without an exit result (stdout ${JSON.stringify(this.stdout())}, stderr ${JSON.stringify(this.stderr())})`));
        else resolve({ result: this.result, stdout: this.stdout(), stderr: this.stderr(), closed: { ...this.closed } });
      });
    });
    // Observed through `done`; keep an unobserved rejection from crashing the process.
    this.done.catch(() => undefined);
  }

  stdout(): string {
    return Buffer.concat(this.out).toString();
  }

  stderr(): string {
    return Buffer.concat(this.err).toString();
  }

  write(data: string | Buffer): void {
    this.call.write({ stdin: { data: Buffer.from(data), close: false } });
  }

  closeStdin(): void {
    this.call.write({ stdin: { data: Buffer.alloc(0), close: true } });
  }

  resize(rows: number, cols: number): void {
    this.call.write({ ttySize: { height: rows, width: cols } });
  }

  heartbeat(): void {
    this.call.write({});
  }

  /** What `nomad alloc exec` does on ^C or a lost connection. */
  cancel(): void {
    this.call.cancel();
  }

  /** Resolves once stdout (tty: the terminal) matches. */
  async waitForStdout(re: RegExp, timeoutMs = 10_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    while (!re.test(this.stdout())) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${re} in exec output ${JSON.stringify(this.stdout())} (stderr ${JSON.stringify(this.stderr())})`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.stdout();
  }
}

export const DEFAULT_CLIENT_NAME = 'nomad-driver-exec2-client';

export interface ClientOptions {
  /** where the client's data dir is made (default: the temp dir); made if missing, and then removed again */
  baseDir?: string;
  /** names everything the client makes: <name>-<random> (default DEFAULT_CLIENT_NAME) */
  name?: string;
  /** who makes task cgroups (default: the client's own tree named like the data dir, see clientPlacement) */
  cgroups?: TaskCgroups;
  /**
   * Start the plugin with PLUGIN_UNIX_SOCKET_DIR=/run/<data dir name>-sockets
   * (made 0700, removed by cleanup) instead of the plugin's default
   * /run/nomad-driver-exec2/sockets, which a real agent on this host uses.
   */
  privateSocketDir?: boolean;
}

export class NomadLikeClient {
  readonly root: string;
  readonly allocRoot: string;
  readonly mountsRoot: string;
  readonly stateDir: string;
  /** the plugin's socket directory when `privateSocketDir`, else null (the plugin's default) */
  readonly socketDir: string | null;
  readonly cgroups: TaskCgroups;
  readonly prepared = new Map<string, PreparedTask>();
  plugin!: PluginProcess;
  private statsStreams: Array<ClientReadableStream<TaskStatsResponse>> = [];
  /** the first level of `baseDir` this client made, removed by cleanup() when empty */
  private readonly madeBase: string | null;

  constructor(opts: ClientOptions = {}) {
    // Absolute: these paths go into TaskConfig (alloc_dir, FIFOs, NOMAD_* env) for a plugin with another cwd.
    const base = path.resolve(opts.baseDir ?? os.tmpdir());
    this.madeBase = opts.baseDir ? (mkdirSync(base, { recursive: true }) ?? null) : null;
    this.root = mkdtempSync(path.join(base, `${opts.name ?? DEFAULT_CLIENT_NAME}-`));
    const name = path.basename(this.root);
    this.allocRoot = path.join(this.root, 'data', 'alloc');
    this.mountsRoot = path.join(this.root, 'alloc_mounts');
    // Like the default /run/nomad-driver-exec2: outside every unveiled path
    // (the data dir lives in /tmp, which the default sets unveil).
    this.stateDir = path.join('/run', `${name}-state`);
    this.socketDir = opts.privateSocketDir ? path.join('/run', `${name}-sockets`) : null;
    try {
      chmodSync(this.root, 0o711);
      mkdirSync(this.allocRoot, { recursive: true, mode: 0o711 });
      chmodSync(path.join(this.root, 'data'), 0o711);
      mkdirSync(this.mountsRoot, { mode: 0o711 });
      if (this.socketDir) mkdirSync(this.socketDir, { mode: 0o700 });
      this.cgroups = opts.cgroups ?? clientCgroups(name);
    } catch (err) {
      this.removeDirs();
      throw err;
    }
  }

  /** Process #3 of spec §1.2: start, SetConfig with nomad_config, Init. */
  async startPlugin(config: PluginConfigInput = {}, opts: StartOptions = {}): Promise<PluginProcess> {
    const start = this.socketDir ? { ...opts, env: { PLUGIN_UNIX_SOCKET_DIR: this.socketDir, ...opts.env } } : opts;
    this.plugin = await PluginProcess.start(start);
    await this.configure(config);
    return this.plugin;
  }

  async configure(config: PluginConfigInput = {}): Promise<void> {
    const req: SetConfigRequest = {
      msgpackConfig: Buffer.from(encodePluginConfig({ state_dir: this.stateDir, ...config })),
      nomadConfig: { driver: { ClientMaxPort: 14512, ClientMinPort: 14000, Topology: topology() } },
      pluginApiVersion: '0.1.0',
    };
    await call(this.plugin.base, this.plugin.base.setConfig, req);
    await call(this.plugin.driver, this.plugin.driver.init, {});
  }

  /** Nomad's prestart hooks for one task: dirs, mounts, FIFOs, user, cgroup. */
  prepareTask(input: TaskInput): PreparedTask {
    const allocId = input.allocId ?? randomUUID();
    const name = input.name ?? 'task';
    const uid = input.user === undefined ? randomInt(80000, 89999) : -1;
    const user = input.user ?? `nomad-${uid}`;
    const allocDir = path.join(this.allocRoot, allocId);
    const shared = path.join(allocDir, 'alloc');
    const taskHost = path.join(allocDir, name);
    mkdirSync(allocDir, { recursive: true, mode: 0o755 });
    for (const d of ['', 'logs', 'tmp', 'data']) mkdirSync(path.join(shared, d), { recursive: true });
    for (const d of ['logs', 'tmp', 'data']) chmodSync(path.join(shared, d), 0o777);
    for (const d of ['', 'local', 'tmp', 'secrets', 'private', 'alloc']) mkdirSync(path.join(taskHost, d), { recursive: true });
    chmodSync(taskHost, 0o777);
    chmodSync(path.join(taskHost, 'local'), 0o777);
    chmodSync(path.join(taskHost, 'tmp'), 0o1777);

    // UNVEIL isolation: the task sees its dirs through <mounts>/<alloc>-<task>.
    const view = path.join(this.mountsRoot, `${allocId}-${name}`);
    mkdirSync(view, { mode: 0o710 });
    const mounts: string[] = [];
    const bind = (src: string, dst: string): void => {
      execFileSync('mount', ['--bind', '-o', 'nosuid,noatime', src, dst]);
      mounts.push(dst);
    };
    bind(taskHost, view);
    bind(shared, path.join(view, 'alloc'));
    const owner = uid >= 0 ? uid : 0;
    chownSync(view, owner, owner);
    chmodSync(view, 0o710);
    chownSync(path.join(view, 'secrets'), owner, owner);
    chmodSync(path.join(view, 'secrets'), 0o710);

    let stdout: FifoReader | null = null;
    let stderr: FifoReader | null = null;
    let stdoutPath = '/dev/null';
    let stderrPath = '/dev/null';
    if (!input.logsDisabled) {
      stdoutPath = path.join(shared, 'logs', `.${name}.stdout.fifo`);
      stderrPath = path.join(shared, 'logs', `.${name}.stderr.fifo`);
      stdout = new FifoReader(stdoutPath, input.onStdout, !input.onStdout);
      stderr = new FifoReader(stderrPath, input.onStderr, !input.onStderr);
    }

    const cgroup = this.cgroups.createTask(allocId, name, input.cores ?? '');
    const cpuMhz = input.cores ? input.cores.split(',').length * MHZ_PER_CORE : input.cpuMhz ?? 100;
    const memoryMb = input.memoryMb ?? 300;
    const memoryMaxMb = input.memoryMaxMb ?? 0;
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      LANG: 'C.UTF-8',
      NOMAD_ALLOC_DIR: path.join(view, 'alloc'),
      NOMAD_TASK_DIR: path.join(view, 'local'),
      NOMAD_SECRETS_DIR: path.join(view, 'secrets'),
      NOMAD_MEMORY_LIMIT: String(memoryMb),
      NOMAD_CPU_LIMIT: String(cpuMhz),
      NOMAD_CPU_CORES: input.cores ?? ' ',
      NOMAD_ALLOC_ID: allocId,
      NOMAD_SHORT_ALLOC_ID: allocId.slice(0, 8),
      NOMAD_ALLOC_NAME: 'example.group[0]',
      NOMAD_ALLOC_INDEX: '0',
      NOMAD_TASK_NAME: name,
      NOMAD_GROUP_NAME: 'group',
      NOMAD_JOB_ID: 'example',
      NOMAD_JOB_NAME: 'example',
      NOMAD_JOB_PARENT_ID: '',
      NOMAD_DC: 'dc1',
      NOMAD_REGION: 'global',
      NOMAD_NAMESPACE: 'default',
      NOMAD_PARENT_CGROUP: this.cgroups.parent,
      ...(memoryMaxMb ? { NOMAD_MEMORY_MAX_LIMIT: String(memoryMaxMb) } : {}),
      ...input.env,
    };
    const id = `${allocId}/${name}/${randomBytes(4).toString('hex')}`;
    const config: TaskConfig = {
      id,
      name,
      msgpackDriverConfig: Buffer.from(input.rawConfig ?? encodeTaskConfig(input)),
      env,
      deviceEnv: {},
      resources: {
        allocatedResources: { cpu: { cpuShares: cpuMhz }, memory: { memoryMb, memoryMaxMb }, networks: [] },
        linuxResources: {
          cpuPeriod: 0, cpuQuota: 0, cpuShares: cpuMhz,
          memoryLimitBytes: Math.max(memoryMb, memoryMaxMb) * 1024 * 1024,
          oomScoreAdj: 0, cpusetCpus: input.cores ?? '', PercentTicks: 0, cpusetCgroup: cgroup.cpusetCgroup,
        },
        ports: [],
      },
      mounts: (input.volumes ?? []).map((v) => ({ taskPath: v.taskPath, hostPath: v.hostPath, readonly: v.readonly ?? false, propagationMode: v.propagationMode ?? 'private', selinuxLabel: v.selinuxLabel ?? '', requestName: v.requestName ?? '' })),
      devices: [],
      user,
      allocDir,
      stdoutPath,
      stderrPath,
      taskGroupName: 'group',
      jobName: 'example',
      allocId,
      networkIsolationSpec: input.netns ? { mode: NetMode.GROUP, path: input.netns, labels: {}, hostsConfig: undefined } : undefined,
      dns: undefined,
      jobId: 'example',
      namespace: 'default',
      nodeName: os.hostname(),
      nodeId: randomUUID(),
      parentJobId: '',
    };
    const prepared: PreparedTask = { config, stdout, stderr, uid, allocDir, taskDir: taskHost, env, cgroup, mounts };
    this.prepared.set(id, prepared);
    return prepared;
  }

  /**
   * What Nomad hands back after an agent restart: the stored handle, with
   * `msgpack_driver_config` not persisted and an empty task_id in the request.
   */
  recover(handle: TaskHandle, asAfterAgentRestart = true): Promise<unknown> {
    const h: TaskHandle = asAfterAgentRestart && handle.config ? { ...handle, config: { ...handle.config, msgpackDriverConfig: Buffer.alloc(0) } } : handle;
    return call(this.plugin.driver, this.plugin.driver.recoverTask, { taskId: '', handle: h });
  }

  startTask(task: PreparedTask): Promise<TaskHandle> {
    return call(this.plugin.driver, this.plugin.driver.startTask, { task: task.config }).then((r) => r.handle!);
  }

  /** prepare + StartTask */
  async run(input: TaskInput): Promise<{ task: PreparedTask; handle: TaskHandle }> {
    const task = this.prepareTask(input);
    const handle = await this.startTask(task);
    return { task, handle };
  }

  async wait(id: string): Promise<{ result: ExitResult; err: string }> {
    const r = await call(this.plugin.driver, this.plugin.driver.waitTask, { taskId: id });
    return { result: r.result ?? { exitCode: 0, signal: 0, oomKilled: false }, err: r.err };
  }

  stop(id: string, timeoutMs: number, signal = ''): Promise<unknown> {
    return call(this.plugin.driver, this.plugin.driver.stopTask, {
      taskId: id,
      timeout: { seconds: Math.floor(timeoutMs / 1000), nanos: (timeoutMs % 1000) * 1e6 },
      signal,
    });
  }

  destroy(id: string, force = true): Promise<unknown> {
    return call(this.plugin.driver, this.plugin.driver.destroyTask, { taskId: id, force });
  }

  signal(id: string, signal: string): Promise<unknown> {
    return call(this.plugin.driver, this.plugin.driver.signalTask, { taskId: id, signal });
  }

  /** `nomad alloc exec`: Driver.ExecTaskStreaming with the setup message sent first. */
  execStream(id: string, command: string[], opts: ExecStreamOptions = {}): ExecStream {
    const stream = new ExecStream(this.plugin.driver.execTaskStreaming());
    const first = opts.firstMessage === undefined ? { setup: { taskId: id, command, tty: opts.tty ?? false } } : opts.firstMessage;
    if (first) stream.call.write(first);
    return stream;
  }

  /** Run a command to completion in a session, stdin closed at once (an ordinary `nomad alloc exec` of a non-interactive command). */
  async exec(id: string, command: string[], input?: string): Promise<ExecStreamEnd> {
    const s = this.execStream(id, command);
    if (input) s.write(input);
    s.closeStdin();
    return s.done;
  }

  /** A script check: Driver.ExecTask with a timeout (0 = none). */
  execTask(id: string, command: string[], timeoutMs = 0): Promise<ExecTaskResponse> {
    return call(this.plugin.driver, this.plugin.driver.execTask, {
      taskId: id,
      command,
      timeout: { seconds: Math.floor(timeoutMs / 1000), nanos: (timeoutMs % 1000) * 1e6 },
    });
  }

  inspect(id: string) {
    return call(this.plugin.driver, this.plugin.driver.inspectTask, { taskId: id });
  }

  /** Nomad's exit handling: wait, DestroyTask(force), then its own cgroup cleanup. */
  async finish(task: PreparedTask): Promise<{ result: ExitResult; err: string }> {
    const r = await this.wait(task.config.id);
    await this.destroy(task.config.id, true);
    this.releaseTask(task);
    return r;
  }

  /** Post-stop hooks: logmon stops, mounts go, cgroup removed. */
  releaseTask(task: PreparedTask): void {
    task.stdout?.close();
    task.stderr?.close();
    for (const m of [...task.mounts].reverse()) {
      try {
        execFileSync('umount', [m]);
      } catch {
        execFileSync('umount', ['-l', m]);
      }
    }
    task.mounts.length = 0;
    this.cgroups.removeTask(task.cgroup);
    this.prepared.delete(task.config.id);
  }

  openStats(id: string, intervalMs: number): ClientReadableStream<TaskStatsResponse> {
    const s = this.plugin.driver.taskStats({ taskId: id, collectionInterval: { seconds: Math.floor(intervalMs / 1000), nanos: (intervalMs % 1000) * 1e6 } });
    this.statsStreams.push(s);
    return s;
  }

  /** The first `count` samples of a TaskStats stream; rejects if it ends or fails before. */
  collectStats(id: string, intervalMs: number, count: number): Promise<TaskStatsResponse[]> {
    const stream = this.openStats(id, intervalMs);
    const got: TaskStatsResponse[] = [];
    return new Promise((resolve, reject) => {
      stream.on('data', (m: TaskStatsResponse) => {
        got.push(m);
        if (got.length === count) {
          stream.cancel();
          resolve(got);
        }
      });
      stream.on('error', (e: Error) => {
        if (got.length < count) reject(e);
      });
      stream.on('end', () => {
        if (got.length < count) reject(new Error(`stats stream ended after ${got.length} of ${count} samples`));
      });
    });
  }

  /** Stop everything still running, kill the plugin Nomad's way, remove all fixtures. */
  async cleanup(): Promise<string[]> {
    for (const s of this.statsStreams) s.cancel();
    for (const t of [...this.prepared.values()]) {
      if (this.plugin && !this.plugin.exited) {
        await this.stop(t.config.id, 0).catch(() => undefined);
        await this.destroy(t.config.id, true).catch(() => undefined);
      }
      this.releaseTask(t);
    }
    if (this.plugin) await this.plugin.kill();
    const failures = this.cgroups.cleanup();
    this.removeDirs();
    return failures;
  }

  /** The data dir, state dir and socket dir (with a socket a SIGKILLed plugin left), and a base dir this client made. */
  private removeDirs(): void {
    rmSync(this.root, { recursive: true, force: true });
    rmSync(this.stateDir, { recursive: true, force: true });
    if (this.socketDir) rmSync(this.socketDir, { recursive: true, force: true });
    if (this.madeBase && existsSync(this.madeBase)) removeEmptyLevels(this.madeBase, path.dirname(this.root));
  }
}

/** rmdir `deepest` and its parents up to `top` while they are empty (what mkdir -p made). */
function removeEmptyLevels(top: string, deepest: string): void {
  for (let d = deepest; d.startsWith(top); d = path.dirname(d)) {
    if (readdirSync(d).length > 0) return;
    rmdirSync(d);
    if (d === top) return;
  }
}
