/**
 * Issue 16's targets as the bench judges them (bench/targets.ts), one test
 * per rule, from synthetic figures: no timing is measured here, only the
 * rule (its boundary, what it is read on, and n/a when a figure is missing).
 */
import assert from 'node:assert/strict';
import { judgeTargets, pluginBoundRate, TARGETS, type TargetInputs, type TargetLine } from '../../bench/targets';
import { percentiles } from '../../bench/tools';

const p50 = (x: number) => percentiles([x]);

/** A run where every figure is present and every target passes with room. */
function inputs(over: Partial<TargetInputs> = {}): TargetInputs {
  return {
    latency: {
      'grpc|exec|warm': p50(1000), 'native|exec|warm': p50(1000), 'grpc+rpc|exec|warm': p50(1500),
      'grpc|exec|idle': p50(3000), 'native|exec|idle': p50(2000), 'grpc+rpc|exec|idle': p50(3500),
      'unshare|exec|idle': p50(4000), 'unshare|exec|warm': p50(2000),
      'unshare-cg|exec|idle': p50(15000),
      'unshare-go|exec|idle': p50(20000), 'unshare-go|exec|warm': p50(10000),
    },
    first: { exec: p50(4000), rpc: p50(5000) },
    throughput: [
      { concurrency: 1, command: '/bin/true', failures: 0, perSecond: 400, pluginCpuUsPerLaunch: 5000 },
      { concurrency: 8, command: '/bin/true', failures: 0, perSecond: 300, pluginCpuUsPerLaunch: 800 },
      { concurrency: 8, command: 'target (static)', failures: 0, perSecond: 500, pluginCpuUsPerLaunch: 100 },
    ],
    nativeCpu: { concurrency: 8, command: '/bin/true', launches: 2000, failures: 0, cpuUsPerLaunch: 500 },
    stats: { tasks: 1000, pluginCpuPct: 4, pluginRssMb: 90 },
    parts: { latency: true, first: true, throughput: true, stats: true },
    ...over,
  };
}

const line = (lines: TargetLine[], rule: string): TargetLine => {
  const l = lines.find((x) => x.rule === rule);
  assert.ok(l, `a line for ${rule}: ${lines.map((x) => x.rule).join(', ')}`);
  return l;
};
const verdict = (over: Partial<TargetInputs>, rule: string) => line(judgeTargets(inputs(over)), rule).verdict;
const withLatency = (patch: Record<string, number | undefined>): Partial<TargetInputs> => {
  const latency = { ...inputs().latency };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete latency[k];
    else latency[k] = p50(v);
  }
  return { latency };
};

describe('bench targets (issue 16)', () => {
  it('judges exactly the issue\'s rows; everything else is info', () => {
    const lines = judgeTargets(inputs());
    const judged = lines.filter((l) => l.verdict === 'PASS' || l.verdict === 'MISS').map((l) => l.rule);
    assert.deepEqual(judged, ['warm-vs-native', 'idle-vs-unshare', 'first-vs-idle', 'first-vs-idle-rpc', 'cpu-vs-native', 'plugin-bound-rate', 'stats-cpu', 'stats-rss', 'vs-faithful-chain']);
    assert.ok(lines.every((l) => l.verdict === 'PASS' || l.verdict === 'info'), JSON.stringify(lines, null, 1));
    // the older issue's targets are gone: no judged idle-vs-native, no judged 5x against the C shim or in idle mode
    for (const rule of ['warm-vs-native-rpc', 'idle-vs-native', 'idle-vs-unshare-cg', 'vs-c-shim', 'vs-chains-idle']) assert.equal(line(lines, rule).verdict, 'info', rule);
    assert.ok(!lines.some((l) => /(first instruction|time to exec).*<= 2x|>= 5x faster than exec2's chain, best case/.test(l.what)), 'no "<= 2x native" time-to-exec line, no 5x target against the C shim');
  });

  it('warm time to exec: grpc <= 1.5x native, the boundary included', () => {
    assert.equal(TARGETS.warmVsNative, 1.5);
    assert.equal(verdict(withLatency({ 'grpc|exec|warm': 1500 }), 'warm-vs-native'), 'PASS');
    assert.equal(verdict(withLatency({ 'grpc|exec|warm': 1501 }), 'warm-vs-native'), 'MISS');
    // read on grpc (StartTask received), not on grpc+rpc, which is printed beside it as information
    const l = judgeTargets(inputs(withLatency({ 'grpc|exec|warm': 1400, 'grpc+rpc|exec|warm': 9000 })));
    assert.equal(line(l, 'warm-vs-native').verdict, 'PASS');
    assert.match(line(l, 'warm-vs-native').what, /1400 µs vs 1\.5 x 1000 µs = 1\.40x/);
    assert.match(line(l, 'warm-vs-native-rpc').what, /9000 µs = 9\.00x native/);
    assert.equal(verdict(withLatency({ 'native|exec|warm': undefined }), 'warm-vs-native'), 'n/a');
  });

  it('idle: grpc never slower than the unshare chain (equal passes), and the same-work line against unshare-cg', () => {
    assert.equal(verdict(withLatency({ 'grpc|exec|idle': 4000 }), 'idle-vs-unshare'), 'PASS');
    assert.equal(verdict(withLatency({ 'grpc|exec|idle': 4001 }), 'idle-vs-unshare'), 'MISS');
    const l = judgeTargets(inputs(withLatency({ 'grpc|exec|idle': 14000 })));
    assert.equal(line(l, 'idle-vs-unshare').verdict, 'MISS');
    const cg = line(l, 'idle-vs-unshare-cg');
    assert.equal(cg.verdict, 'info');
    assert.match(cg.what, /14000 µs vs 15000 µs = 0\.93x \(not slower\); unshare-cg - unshare = 11000 µs/);
    // pure v2: unshare-cg is left out, the line says why
    const v2 = judgeTargets(inputs({ ...withLatency({ 'unshare-cg|exec|idle': undefined }), unshareCgReason: 'pure cgroup v2: clone into cgroup' }));
    assert.match(line(v2, 'idle-vs-unshare-cg').what, /not measured \(pure cgroup v2: clone into cgroup\)/);
    assert.equal(line(v2, 'idle-vs-unshare').verdict, 'PASS');
  });

  it('first launch of a fresh plugin <= 2x an idle launch, the boundary included', () => {
    assert.equal(verdict({ first: { exec: p50(6000), rpc: p50(7000) } }, 'first-vs-idle'), 'PASS');
    assert.equal(verdict({ first: { exec: p50(6001), rpc: p50(7000) } }, 'first-vs-idle'), 'MISS');
    assert.equal(verdict({ first: { exec: p50(6000), rpc: p50(7001) } }, 'first-vs-idle-rpc'), 'MISS');
    const noFirst = line(judgeTargets(inputs({ first: undefined, parts: { latency: true, first: false, throughput: true, stats: true } })), 'first-vs-idle');
    assert.equal(noFirst.verdict, 'n/a');
    assert.match(noFirst.what, /first part did not run/);
  });

  it('plugin CPU per launch <= 2x the native launcher\'s own, read on c=8 /bin/true; n/a without the native burst', () => {
    const tp = (us: number, failures = 0) => [{ concurrency: 8, command: '/bin/true', failures, perSecond: 300, pluginCpuUsPerLaunch: us }, { concurrency: 1, command: '/bin/true', failures: 0, perSecond: 1, pluginCpuUsPerLaunch: 1 }];
    assert.equal(verdict({ throughput: tp(1000) }, 'cpu-vs-native'), 'PASS');
    assert.equal(verdict({ throughput: tp(1001) }, 'cpu-vs-native'), 'MISS');
    assert.equal(verdict({ throughput: tp(900, 3) }, 'cpu-vs-native'), 'MISS');
    assert.match(line(judgeTargets(inputs({ throughput: tp(1000) })), 'cpu-vs-native').what, /1000 µs vs 2 x 500 µs = 2\.00x/);
    const none = line(judgeTargets(inputs({ nativeCpu: undefined })), 'cpu-vs-native');
    assert.equal(none.verdict, 'n/a');
    assert.match(none.what, /native CPU burst missing/);
    const notRun = line(judgeTargets(inputs({ throughput: [], nativeCpu: undefined, parts: { latency: true, first: true, throughput: false, stats: true } })), 'cpu-vs-native');
    assert.match(notRun.what, /throughput part did not run/);
  });

  it('launches/s: judged on the derived plugin-bound rate (1 / plugin CPU per launch), the measured rate printed beside it', () => {
    assert.equal(pluginBoundRate(1000), 1000);
    assert.equal(pluginBoundRate(250), 4000);
    const tp = (us: number, perSecond: number) => [{ concurrency: 8, command: '/bin/true', failures: 0, perSecond, pluginCpuUsPerLaunch: us }];
    // a measured 244/s passes when the plugin's own CPU would allow 1,000/s ...
    const pass = line(judgeTargets(inputs({ throughput: tp(1000, 244) })), 'plugin-bound-rate');
    assert.equal(pass.verdict, 'PASS');
    assert.match(pass.what, /: 1000\/s \(measured 244\/s/);
    // ... and a measured 5,000/s does not when it would not
    assert.equal(verdict({ throughput: tp(1001, 5000) }, 'plugin-bound-rate'), 'MISS');
    // only the c=8 /bin/true row counts
    assert.equal(verdict({ throughput: [{ concurrency: 8, command: 'target (static)', failures: 0, perSecond: 9000, pluginCpuUsPerLaunch: 10 }] }, 'plugin-bound-rate'), 'n/a');
  });

  it('TaskStats <= 5 % and RSS <= 100 MB with 1,000 tasks; n/a with fewer (--quick)', () => {
    assert.equal(verdict({ stats: { tasks: 1000, pluginCpuPct: 5, pluginRssMb: 100 } }, 'stats-cpu'), 'PASS');
    assert.equal(verdict({ stats: { tasks: 1000, pluginCpuPct: 5, pluginRssMb: 100 } }, 'stats-rss'), 'PASS');
    assert.equal(verdict({ stats: { tasks: 1000, pluginCpuPct: 5.1, pluginRssMb: 100 } }, 'stats-cpu'), 'MISS');
    assert.equal(verdict({ stats: { tasks: 1000, pluginCpuPct: 1, pluginRssMb: 100.5 } }, 'stats-rss'), 'MISS');
    assert.equal(verdict({ stats: { tasks: 100, pluginCpuPct: 50, pluginRssMb: 500 } }, 'stats-cpu'), 'n/a');
    assert.equal(verdict({ stats: null }, 'stats-rss'), 'n/a');
  });

  it('vs the official chain, warm: >= 5x faster than the Go shim; the C shim ratio is information; n/a with the SKIP reason without the Go shim', () => {
    assert.equal(verdict(withLatency({ 'unshare-go|exec|warm': 5000 }), 'vs-faithful-chain'), 'PASS');
    assert.equal(verdict(withLatency({ 'unshare-go|exec|warm': 4999 }), 'vs-faithful-chain'), 'MISS');
    const l = judgeTargets(inputs(withLatency({ 'unshare|exec|warm': 800 })));
    assert.equal(line(l, 'vs-c-shim').verdict, 'info');
    assert.match(line(l, 'vs-c-shim').what, /unshare \/ grpc = 0\.80x \(grpc slower\)/);
    const skip = line(judgeTargets(inputs({ ...withLatency({ 'unshare-go|exec|warm': undefined, 'unshare-go|exec|idle': undefined }), goShimReason: 'Debian\'s Go packages missing (golang-go); install them with: apt-get install golang-go' })), 'vs-faithful-chain');
    assert.equal(skip.verdict, 'n/a');
    assert.match(skip.what, /SKIP: Debian's Go packages missing \(golang-go\); install them with: apt-get install golang-go/);
  });

  it('a part that did not run gives n/a lines with the reason, never PASS or MISS', () => {
    const lines = judgeTargets({ latency: {}, throughput: [], stats: null, parts: { latency: false, first: false, throughput: false, stats: false } });
    assert.ok(lines.length >= 8);
    for (const l of lines) {
      assert.equal(l.verdict, 'n/a', l.what);
      assert.match(l.what, /did not run/);
    }
  });
});
