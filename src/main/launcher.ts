/**
 * The worker pool that performs launches. Created lazily (the short-lived
 * catalog and validation processes Nomad starts never need it) and warmed
 * when the long-lived instance is configured.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type Piscina from 'piscina';
import type { ExecLaunchReply, ExecLaunchRequest, LaunchReply, LaunchRequest } from '../shared/messages';

export interface Launcher {
  launch(req: LaunchRequest): Promise<LaunchReply>;
  /** start a command inside a running task (nomad alloc exec, script checks) */
  launchExec(req: ExecLaunchRequest): Promise<ExecLaunchReply>;
  /**
   * Start the pool's threads and have each load its worker code, the addon
   * and the user database modules, so the first StartTask finds them ready.
   * Resolves when every thread answered (or after WARM_TIMEOUT_MS: a pool
   * that cannot start fails the launches, which say why).
   */
  warm(): Promise<void>;
  close(): Promise<void>;
  /** queued launches, for metrics */
  queueSize(): number;
  utilization(): number;
}

/** SetConfig never waits longer than this for the pool's warm-up. */
const WARM_TIMEOUT_MS = 2000;

export class PiscinaLauncher implements Launcher {
  private pool: Piscina | undefined;
  private readonly threads = Math.max(2, Math.min(4, os.availableParallelism()));
  private warming: Promise<void> | undefined;

  private get piscina(): Piscina {
    if (!this.pool) {
      const threads = this.threads;
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use: Nomad's short-lived plugin processes never need it
      const PiscinaCtor = require('piscina') as typeof Piscina;
      this.pool = new PiscinaCtor({
        filename: path.join(__dirname, '..', 'workers', 'launch-worker.js'),
        minThreads: threads,
        maxThreads: threads,
        // Launch calls block their worker for well under a millisecond each;
        // more in flight per thread only adds queueing inside the worker.
        concurrentTasksPerWorker: 1,
        idleTimeout: 60_000,
        // Workers close what they open themselves (closeAll), including fds
        // the addon opened (openBeneath). With Node's tracking on, each such
        // close queues a "closed but not opened in unmanaged mode" warning on
        // process.nextTick, and piscina's synchronous task loop never drains
        // that queue: ~2 KB of worker heap per launch, forever (measured with
        // bench/stats-rss.ts: 6,000 launches grew the workers' live heaps by
        // 19 MB; none with this off).
        trackUnmanagedFds: false,
      });
    }
    return this.pool;
  }

  warm(): Promise<void> {
    if (!this.warming) {
      const pool = this.piscina;
      // One warm-up task per thread: with one task per worker at a time the
      // pool hands each to a different thread (all start out idle).
      const all = Promise.all(Array.from({ length: this.threads }, () => pool.run(null, { name: 'warm' }))).then(() => undefined, () => undefined);
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, WARM_TIMEOUT_MS);
        timer.unref();
      });
      this.warming = Promise.race([all, limit]).finally(() => clearTimeout(timer));
    }
    return this.warming;
  }

  async launch(req: LaunchRequest): Promise<LaunchReply> {
    // Two hrtime reads per launch: the plan/hand-off boundary and the reply's arrival.
    req.plannedNs = process.hrtime.bigint().toString();
    const reply = (await this.piscina.run(req)) as LaunchReply;
    if (reply.ok) reply.timings.replyNs = Number(process.hrtime.bigint() - BigInt(req.receivedNs)) - reply.timings.doneAtNs;
    return reply;
  }

  launchExec(req: ExecLaunchRequest): Promise<ExecLaunchReply> {
    // Same threads, another entry point: exec sessions are rare next to launches.
    return this.piscina.run(req, { filename: path.join(__dirname, '..', 'workers', 'exec-worker.js') }) as Promise<ExecLaunchReply>;
  }

  queueSize(): number {
    return this.pool ? this.pool.queueSize : 0;
  }

  utilization(): number {
    return this.pool ? this.pool.utilization : 0;
  }

  async close(): Promise<void> {
    if (this.pool) await this.pool.destroy();
  }
}
