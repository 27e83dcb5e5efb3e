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
  warm(): void;
  close(): Promise<void>;
  /** queued launches, for metrics */
  queueSize(): number;
  utilization(): number;
}

export class PiscinaLauncher implements Launcher {
  private pool: Piscina | undefined;

  private get piscina(): Piscina {
    if (!this.pool) {
      const threads = Math.max(2, Math.min(4, os.availableParallelism()));
      // Loaded on first use: Nomad's short-lived plugin processes never need it.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
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

  warm(): void {
    void this.piscina;
  }

  launch(req: LaunchRequest): Promise<LaunchReply> {
    return this.piscina.run(req) as Promise<LaunchReply>;
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
