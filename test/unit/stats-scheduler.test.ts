/** The TaskStats scheduler's decisions, with fake timers and sources (the kernel side is test/stats.test.ts). */
import assert from 'node:assert/strict';
import { dueForSample, PASS_SLICE, StatsScheduler, type SampleSource, type SchedulerTimers, type StatsSink } from '../../src/main/stats/scheduler';

class FakeTimers implements SchedulerTimers {
  t = 1_000_000;
  readonly timers = new Map<number, { fn: () => void; ms: number }>();
  private next = 1;
  setInterval(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.set(id, { fn, ms });
    return id;
  }
  clearInterval(h: unknown): void {
    assert.ok(this.timers.delete(h as number), 'cleared a timer that was not running');
  }
  now(): number {
    return this.t;
  }
  readonly deferred: Array<() => void> = [];
  defer(fn: () => void): void {
    this.deferred.push(fn);
  }
  /** run deferred slices until none is left */
  drain(): number {
    let n = 0;
    while (this.deferred.length) {
      this.deferred.shift()!();
      n++;
    }
    return n;
  }
  /** advance the clock and fire every timer whose interval is ms */
  fire(ms: number, advance = ms): void {
    this.t += advance;
    for (const t of [...this.timers.values()]) if (t.ms === ms) t.fn();
    this.drain();
  }
}

interface Sample { task: string; at: number; seq: number }

function setup() {
  const timers = new FakeTimers();
  const running = new Map<string, boolean>();
  const opened: string[] = [];
  const closed: string[] = [];
  let samples = 0;
  const sched = new StatsScheduler<Sample>((taskId, intervalMs): SampleSource<Sample> => {
    opened.push(`${taskId}@${intervalMs}`);
    return {
      running: () => running.get(taskId) ?? false,
      sample: (at) => ({ task: taskId, at, seq: samples++ }),
      close: () => void closed.push(`${taskId}@${intervalMs}`),
    };
  }, timers);
  const sink = () => {
    const got: Sample[] = [];
    let ended = 0;
    const s: StatsSink<Sample> = { write: (x) => void got.push(x), end: () => void ended++ };
    return { s, got, ended: () => ended };
  };
  return { timers, running, opened, closed, sched, sink, sampleCount: () => samples };
}

describe('stats scheduler', () => {
  it('runs one timer per interval, however many tasks and streams', () => {
    const { timers, running, sched, sink } = setup();
    for (let i = 0; i < 50; i++) running.set(`t${i}`, true);
    const unsubs = [];
    for (let i = 0; i < 50; i++) unsubs.push(sched.subscribe(`t${i}`, 1000, sink().s));
    unsubs.push(sched.subscribe('t0', 500, sink().s));
    assert.equal(timers.timers.size, 2);
    assert.deepEqual(sched.counts(), { timers: 2, tasks: 51, streams: 51 });
    for (const u of unsubs) u();
    assert.equal(timers.timers.size, 0, 'cancelled streams leave no timers');
    assert.deepEqual(sched.counts(), { timers: 0, tasks: 0, streams: 0 });
  });

  it('samples at once, then once per tick per task, shared by every stream of that task and interval', () => {
    const { timers, running, sched, sink, opened, sampleCount } = setup();
    running.set('a', true);
    const x = sink(), y = sink();
    sched.subscribe('a', 1000, x.s);
    timers.fire(1000);
    sched.subscribe('a', 1000, y.s); // joins mid-way: its own first sample now
    assert.equal(x.got.length, 2);
    assert.equal(y.got.length, 1);
    timers.fire(1000);
    assert.equal(x.got.length, 3);
    assert.equal(y.got.length, 2);
    assert.equal(x.got[2], y.got[1], 'one sample object for both streams');
    assert.deepEqual(opened, ['a@1000'], 'one source per task and interval');
    assert.equal(sampleCount(), 4);
  });

  it('skips a task sampled less than half an interval ago instead of sending a few-ms delta', () => {
    const { timers, running, sched, sink } = setup();
    running.set('a', true);
    running.set('b', true);
    const a = sink(), b = sink();
    sched.subscribe('a', 1000, a.s);
    timers.fire(1000);
    timers.t += 700;
    sched.subscribe('b', 1000, b.s); // 300 ms before the next tick
    timers.fire(1000, 300);
    assert.equal(a.got.length, 3);
    assert.equal(b.got.length, 1, 'b skipped the tick 300 ms after its first sample');
    timers.fire(1000);
    assert.equal(b.got.length, 2);
    assert.equal(b.got[1]!.at - b.got[0]!.at, 1300);
  });

  it('ends every stream of a task when it stops running, closes its source, and drops an empty timer', () => {
    const { timers, running, sched, sink, closed } = setup();
    running.set('a', true);
    running.set('b', true);
    const a1 = sink(), a2 = sink(), b = sink();
    sched.subscribe('a', 1000, a1.s);
    sched.subscribe('a', 1000, a2.s);
    sched.subscribe('b', 1000, b.s);
    running.set('a', false);
    timers.fire(1000);
    assert.equal(a1.ended(), 1);
    assert.equal(a2.ended(), 1);
    assert.equal(b.ended(), 0);
    assert.equal(b.got.length, 2);
    assert.deepEqual(closed, ['a@1000']);
    running.set('b', false);
    timers.fire(1000);
    assert.equal(b.ended(), 1);
    assert.equal(timers.timers.size, 0);
  });

  it('ends at once a stream for a task that is not running, leaving no timer', () => {
    const { timers, sched, sink, closed } = setup();
    const x = sink();
    sched.subscribe('gone', 1000, x.s);
    assert.equal(x.ended(), 1);
    assert.equal(x.got.length, 0);
    assert.equal(timers.timers.size, 0);
    assert.deepEqual(closed, ['gone@1000']);
  });

  it('a stream whose write throws leaves; the other streams keep their samples', () => {
    const { timers, running, sched, sink } = setup();
    running.set('a', true);
    const good = sink();
    let calls = 0;
    sched.subscribe('a', 1000, { write: () => { if (++calls > 1) throw new Error('stream torn down'); }, end: () => undefined });
    sched.subscribe('a', 1000, good.s);
    timers.fire(1000);
    timers.fire(1000);
    assert.equal(calls, 2, 'no writes after the throw');
    assert.equal(good.got.length, 3);
    assert.deepEqual(sched.counts(), { timers: 1, tasks: 1, streams: 1 });
  });

  it('unsubscribing twice, or after the task ended, is harmless', () => {
    const { timers, running, sched, sink } = setup();
    running.set('a', true);
    const u = sched.subscribe('a', 1000, sink().s);
    const keep = sched.subscribe('a', 1000, sink().s);
    u();
    u();
    assert.deepEqual(sched.counts(), { timers: 1, tasks: 1, streams: 1 });
    running.set('a', false);
    timers.fire(1000);
    keep();
    assert.equal(timers.timers.size, 0);
  });

  it('slices a pass over many tasks, yielding between slices, and skips a tick while a pass is still going', () => {
    const { timers, running, sched, sink } = setup();
    const n = PASS_SLICE * 2 + 5;
    const sinks = Array.from({ length: n }, (_, i) => {
      running.set(`t${i}`, true);
      const s = sink();
      sched.subscribe(`t${i}`, 1000, s.s);
      return s;
    });
    timers.t += 1000;
    for (const t of timers.timers.values()) t.fn(); // one tick, slices not yet run
    assert.equal(sinks.filter((s) => s.got.length === 2).length, PASS_SLICE, 'first slice only');
    for (const t of timers.timers.values()) t.fn(); // a tick during the pass: skipped
    assert.equal(timers.drain(), 2, 'two more slices');
    assert.ok(sinks.every((s) => s.got.length === 2), 'every task sampled once in the pass');
  });

  it('a source that throws ends its task\'s streams; other tasks and the timer go on', () => {
    const timers = new FakeTimers();
    let fail = false;
    const sched = new StatsScheduler<number>((taskId) => ({
      running: () => true,
      sample: () => { if (fail && taskId === 'bad') throw new Error('EIO'); return 1; },
      close: () => undefined,
    }), timers);
    let badEnded = 0, good = 0;
    sched.subscribe('bad', 1000, { write: () => undefined, end: () => void badEnded++ });
    sched.subscribe('good', 1000, { write: () => void good++, end: () => undefined });
    fail = true;
    timers.fire(1000);
    assert.equal(badEnded, 1);
    assert.equal(good, 2);
    assert.deepEqual(sched.counts(), { timers: 1, tasks: 1, streams: 1 });
  });

  it('dueForSample: half an interval or more since the last sample', () => {
    assert.equal(dueForSample(1500, 1000, 1000), true);
    assert.equal(dueForSample(1499, 1000, 1000), false);
    assert.equal(dueForSample(2000, 0, 1000), true);
  });
});
