/**
 * TaskStats streams share timers: one timer per distinct collection
 * interval, and on each tick ONE pass over every task streamed at that
 * interval, one sample per task however many streams watch it (Nomad opens
 * one per task; a restarted client or an operator's tool may add more).
 * Kept apart from gRPC and the kernel files so the decisions have unit tests.
 */

/** Where samples of one task come from, per interval group (it holds the previous counters). */
export interface SampleSource<S> {
  /** false once the task has exited or is gone: its streams end */
  running(): boolean;
  sample(nowMs: number): S;
  /** release what the source holds (kept fds) */
  close(): void;
}

export interface StatsSink<S> {
  write(sample: S): void;
  /** the task exited: finish the stream */
  end(): void;
}

export interface SchedulerTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  now(): number;
  /** run fn after pending I/O (between slices of a pass) */
  defer(fn: () => void): void;
}

export const realTimers: SchedulerTimers = {
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  now: () => Date.now(),
  defer: (fn) => void setImmediate(fn),
};

/**
 * Tasks sampled before the pass yields to pending I/O: a pass over 1,000
 * tasks takes tens of ms on the main thread, and a StartTask arriving
 * meanwhile should wait for one slice (a few ms), not the whole pass.
 */
export const PASS_SLICE = 100;

interface TaskEntry<S> {
  source: SampleSource<S>;
  sinks: Set<StatsSink<S>>;
  lastSampleMs: number;
}

interface Group<S> {
  intervalMs: number;
  timer: unknown;
  tasks: Map<string, TaskEntry<S>>;
  /** a pass is still going (sliced): a tick meanwhile is skipped, not stacked */
  passing: boolean;
}

/**
 * A tick skips a task sampled less than half an interval before (a stream
 * that just joined got its first sample at subscribe time): a delta over a
 * few ms would turn tick-granular counters (USER_HZ) into noise. Its next
 * sample comes at most 1.5 intervals after the first.
 */
export function dueForSample(nowMs: number, lastSampleMs: number, intervalMs: number): boolean {
  return nowMs - lastSampleMs >= intervalMs / 2;
}

export class StatsScheduler<S> {
  private readonly groups = new Map<number, Group<S>>();

  constructor(
    private readonly openSource: (taskId: string, intervalMs: number) => SampleSource<S>,
    private readonly timers: SchedulerTimers = realTimers,
  ) {}

  /**
   * Start streaming `taskId` every `intervalMs` into `sink`: one sample at
   * once, then one per tick of the interval's shared timer until the task
   * stops running (sink.end) or the returned function is called.
   */
  subscribe(taskId: string, intervalMs: number, sink: StatsSink<S>): () => void {
    let group = this.groups.get(intervalMs);
    if (!group) {
      const g: Group<S> = { intervalMs, timer: undefined, tasks: new Map(), passing: false };
      g.timer = this.timers.setInterval(() => this.tick(g), intervalMs);
      this.groups.set(intervalMs, g);
      group = g;
    }
    let entry = group.tasks.get(taskId);
    if (!entry) {
      entry = { source: this.openSource(taskId, intervalMs), sinks: new Set(), lastSampleMs: 0 };
      group.tasks.set(taskId, entry);
    }
    entry.sinks.add(sink);
    const g = group;
    const e = entry;
    if (!e.source.running()) {
      this.endTask(g, taskId, e);
    } else {
      const now = this.timers.now();
      let s: S | undefined;
      try {
        s = e.source.sample(now);
      } catch {
        this.endTask(g, taskId, e);
      }
      if (s !== undefined) {
        e.lastSampleMs = now;
        this.deliver(g, taskId, e, sink, s);
      }
    }
    return () => this.remove(g, taskId, sink);
  }

  /** Streams and timers alive now (for tests and metrics). */
  counts(): { timers: number; tasks: number; streams: number } {
    let tasks = 0, streams = 0;
    for (const g of this.groups.values()) {
      tasks += g.tasks.size;
      for (const e of g.tasks.values()) streams += e.sinks.size;
    }
    return { timers: this.groups.size, tasks, streams };
  }

  private tick(g: Group<S>): void {
    if (g.passing) return;
    g.passing = true;
    const entries = [...g.tasks];
    let i = 0;
    const slice = (): void => {
      const now = this.timers.now();
      const end = Math.min(entries.length, i + PASS_SLICE);
      for (; i < end; i++) {
        const [taskId, e] = entries[i]!;
        if (g.tasks.get(taskId) !== e) continue; // left since the pass began
        if (!e.source.running()) {
          this.endTask(g, taskId, e);
          continue;
        }
        if (!dueForSample(now, e.lastSampleMs, g.intervalMs)) continue;
        let s: S;
        try {
          s = e.source.sample(now);
        } catch {
          // never let one task's sample take down the timer (and the plugin):
          // its streams end, and Nomad reopens them after an interval
          this.endTask(g, taskId, e);
          continue;
        }
        e.lastSampleMs = now;
        for (const sink of [...e.sinks]) this.deliver(g, taskId, e, sink, s);
      }
      if (i < entries.length) {
        this.timers.defer(slice);
      } else {
        g.passing = false;
        this.dropIfEmpty(g);
      }
    };
    slice();
  }

  private deliver(g: Group<S>, taskId: string, e: TaskEntry<S>, sink: StatsSink<S>, s: S): void {
    try {
      sink.write(s);
    } catch {
      // a stream that can no longer be written to (torn down under us) leaves
      // the group; every other stream keeps its samples
      e.sinks.delete(sink);
      if (e.sinks.size === 0) this.removeTask(g, taskId, e);
    }
  }

  private endTask(g: Group<S>, taskId: string, e: TaskEntry<S>): void {
    this.removeTask(g, taskId, e);
    for (const sink of e.sinks) {
      try {
        sink.end();
      } catch {
        // already closed by the client: nothing left to end
      }
    }
    e.sinks.clear();
    this.dropIfEmpty(g);
  }

  private remove(g: Group<S>, taskId: string, sink: StatsSink<S>): void {
    const e = g.tasks.get(taskId);
    if (!e || !e.sinks.delete(sink)) return;
    if (e.sinks.size === 0) this.removeTask(g, taskId, e);
    this.dropIfEmpty(g);
  }

  private removeTask(g: Group<S>, taskId: string, e: TaskEntry<S>): void {
    if (g.tasks.get(taskId) === e) g.tasks.delete(taskId);
    e.source.close();
  }

  private dropIfEmpty(g: Group<S>): void {
    if (g.tasks.size === 0 && this.groups.get(g.intervalMs) === g) {
      this.timers.clearInterval(g.timer);
      this.groups.delete(g.intervalMs);
    }
  }
}
