/**
 * Prometheus metrics (prom-client), off unless the plugin config names a
 * listen address. Measurements arrive from one place each: launch phase
 * timings from the worker's reply, exits from the task manager.
 */
import * as http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LaunchTimings } from '../shared/messages';
import { invalidConfig } from '../shared/errors';
import { parseListenAddress } from './config/listen-address';
import type { Launcher } from './launcher';
import type { Logger } from './log';
import { readCpu, readMemory } from './stats/counters';
import { exitOf, isRunning, type ExecOutcome, type TaskEventsSink, type TaskRecord, type TaskSource } from './tasks/task-record';

/** 50 µs to 10 s: a launch is ~0.2 ms when all is well and seconds when it is not. */
export const LAUNCH_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** prom-client default metrics that are gauges with a counter's `_total` suffix. */
export const MISNAMED_DEFAULT_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export type ExitReason = 'success' | 'failure' | 'signal' | 'oom';

export function exitReason(t: TaskRecord): ExitReason {
  const exit = exitOf(t);
  if (!exit) return 'failure';
  const r = exit.result;
  if (r.oomKilled) return 'oom';
  if (r.signal > 0) return 'signal';
  return r.exitCode === 0 && !exit.err ? 'success' : 'failure';
}

const TASK_LABELS = ['namespace', 'job', 'task_group', 'alloc_id', 'task'] as const;

export interface MetricsOptions {
  perTask: boolean;
  info: { landlockAbi: number; cgroupMode: string; version: string };
}

export class DriverMetrics implements TaskEventsSink {
  readonly registry = new Registry();
  private readonly launchDuration: Histogram<'phase'>;
  private readonly startOutcomes: Counter<'outcome'>;
  private readonly exits: Counter<'reason'>;
  private readonly execSessions: Counter<'outcome'>;
  private readonly taskMemory: Gauge<(typeof TASK_LABELS)[number]> | null = null;
  private readonly taskCpu: Gauge<(typeof TASK_LABELS)[number]> | null = null;

  constructor(tasks: () => TaskSource, launcher: Launcher, opts: MetricsOptions) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // prom-client also exports the sums of the per-type gauges below as
    // gauges named *_total, a suffix Prometheus reserves for counters
    // (promtool check metrics rejects them). sum(nodejs_active_handles) etc.
    // give the same numbers, so the misnamed copies are not exported.
    for (const name of MISNAMED_DEFAULT_GAUGES) this.registry.removeSingleMetric(name);
    this.launchDuration = new Histogram({
      name: 'exec2_launch_duration_seconds',
      help: 'Time spent in each phase of a task launch: plan (main thread, StartTask received to request built), queue (StartTask received to start in a worker: plan plus the hand-off), cgroup (limits), prepare (user, fds), setup (addon, to just before clone3), spawn (setup plus clone3 to confirmed execve), exec_confirmed (StartTask received to confirmed execve), reply (worker done to reply received by the main thread).',
      labelNames: ['phase'],
      buckets: LAUNCH_BUCKETS,
      registers,
    });
    this.startOutcomes = new Counter({
      name: 'exec2_start_task_total',
      help: 'StartTask calls by outcome (success, or the error code).',
      labelNames: ['outcome'],
      registers,
    });
    this.exits = new Counter({
      name: 'exec2_task_exits_total',
      help: 'Task exits by reason: success (code 0), failure (non-zero code), signal, oom.',
      labelNames: ['reason'],
      registers,
    });
    for (const r of ['success', 'failure', 'signal', 'oom']) this.exits.inc({ reason: r }, 0);
    this.execSessions = new Counter({
      name: 'exec2_exec_sessions_total',
      help: 'Exec sessions (nomad alloc exec, script checks) by outcome: success (exit 0), failure (non-zero exit, including 126/127), timeout (ExecTask killed it), cancelled (the client went away), error (the RPC failed).',
      labelNames: ['outcome'],
      registers,
    });
    for (const o of ['success', 'failure', 'timeout', 'cancelled', 'error'] satisfies ExecOutcome[]) this.execSessions.inc({ outcome: o }, 0);
    for (const o of ['success', 'INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION', 'ALREADY_EXISTS', 'INTERNAL']) this.startOutcomes.inc({ outcome: o }, 0);
    new Gauge({
      name: 'exec2_tasks_running',
      help: 'Tasks currently running under this plugin process.',
      registers,
      collect() {
        this.set(tasks().list().filter(isRunning).length);
      },
    });
    new Gauge({
      name: 'exec2_worker_queue_depth',
      help: 'Launches waiting for a free worker thread.',
      registers,
      collect() {
        this.set(launcher.queueSize());
      },
    });
    new Gauge({
      name: 'exec2_worker_utilization_ratio',
      help: 'Share of time the launch workers were busy since the pool started (0-1).',
      registers,
      collect() {
        this.set(launcher.utilization());
      },
    });
    const info = new Gauge({
      name: 'exec2_info',
      help: 'Driver facts: Landlock ABI, cgroup mode and plugin version (value is always 1).',
      labelNames: ['landlock_abi', 'cgroup_mode', 'version'],
      registers,
    });
    info.set({ landlock_abi: String(opts.info.landlockAbi), cgroup_mode: opts.info.cgroupMode, version: opts.info.version }, 1);
    if (opts.perTask) {
      const labels = (t: TaskRecord): Record<(typeof TASK_LABELS)[number], string> => ({
        namespace: t.config.namespace,
        job: t.config.jobName,
        task_group: t.config.taskGroupName,
        alloc_id: t.config.allocId,
        task: t.config.name,
      });
      this.taskMemory = new Gauge({
        name: 'exec2_task_memory_usage_bytes',
        help: 'Memory charged to the task cgroup (per task; opt-in).',
        labelNames: TASK_LABELS,
        registers,
        collect() {
          for (const t of tasks().list()) if (isRunning(t)) this.set(labels(t), readMemory(t.state.cgroup).usage ?? 0);
        },
      });
      this.taskCpu = new Gauge({
        name: 'exec2_task_cpu_usage_seconds',
        help: 'CPU time used by the task cgroup so far (per task; opt-in).',
        labelNames: TASK_LABELS,
        registers,
        collect() {
          for (const t of tasks().list()) if (isRunning(t)) this.set(labels(t), readCpu(t.state.cgroup).usageUs / 1e6);
        },
      });
      this.perTaskLabels = labels;
    }
  }

  private perTaskLabels: ((t: TaskRecord) => Record<(typeof TASK_LABELS)[number], string>) | null = null;

  observeLaunch(t: LaunchTimings): void {
    this.launchDuration.observe({ phase: 'plan' }, t.planNs / 1e9);
    this.launchDuration.observe({ phase: 'queue' }, t.queueNs / 1e9);
    this.launchDuration.observe({ phase: 'cgroup' }, t.cgroupNs / 1e9);
    this.launchDuration.observe({ phase: 'prepare' }, t.prepareNs / 1e9);
    this.launchDuration.observe({ phase: 'setup' }, t.setupNs / 1e9);
    this.launchDuration.observe({ phase: 'spawn' }, t.spawnNs / 1e9);
    this.launchDuration.observe({ phase: 'exec_confirmed' }, t.totalToExecNs / 1e9);
    this.launchDuration.observe({ phase: 'reply' }, t.replyNs / 1e9);
  }

  onStarted(task: TaskRecord): void {
    this.startOutcomes.inc({ outcome: 'success' });
    if (task.timings) this.observeLaunch(task.timings);
  }

  onStartFailure(reason: string): void {
    this.startOutcomes.inc({ outcome: reason });
  }

  onTaskExit(task: TaskRecord): void {
    this.exits.inc({ reason: exitReason(task) });
  }

  onExecSession(outcome: ExecOutcome): void {
    this.execSessions.inc({ outcome });
  }

  onTaskDestroyed(task: TaskRecord): void {
    if (!this.perTaskLabels) return;
    const l = this.perTaskLabels(task);
    this.taskMemory?.remove(l);
    this.taskCpu?.remove(l);
  }
}

export class MetricsServer {
  private server: http.Server | null = null;

  constructor(private readonly metrics: DriverMetrics, private readonly logger: Logger) {}

  get address(): string | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? `${a.address}:${a.port}` : null;
  }

  listen(addr: string): Promise<void> {
    const { host, port } = parseListenAddress(addr);
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
        return;
      }
      this.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
    });
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(invalidConfig(`plugin config: attribute "metrics_address": cannot listen on ${addr}: ${err.code ?? err.message}`));
      });
      server.listen(port, host, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.logger.error('metrics server error', { error: err }));
        this.server = server;
        this.logger.info('serving metrics', { address: this.address });
        resolve();
      });
    });
  }

  close(): void {
    this.server?.close();
    this.server = null;
  }
}
