/**
 * The benchmark's report (bench/report.ts) prints the per-phase breakdown
 * and the first-launch row and draws the stacked bar: no timing is judged
 * here, only that the rows are there, from a synthetic result.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PHASES, report, type Results } from '../../bench/report';
import { percentiles } from '../../bench/tools';

const pct = (xs: number[]) => ({ ...percentiles(xs), raw: xs });

/** The report of `r` as printed, and the SVG it wrote (into a temporary directory, removed). */
function render(r: Results): { text: string; svg: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'exec2-bench-report-'));
  try {
    const lines: string[] = [];
    report(r, dir, 'test', (s) => lines.push(s));
    const svg = readFileSync(path.join(dir, readdirSync(dir).find((f) => f.endsWith('.svg'))!), 'utf8');
    return { text: lines.join('\n'), svg };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('bench report', () => {
  it('prints where a launch\'s time goes, the first launch of a fresh plugin, and draws the stacked bar', () => {
    const phases = Object.fromEntries(PHASES.map((p, i) => [p, percentiles([10 * (i + 1), 20 * (i + 1)])]));
    const r: Results = {
      meta: { idleGapMs: 50, kernel: 'k', cpus: 2, cgroupMode: 'hybrid', pluginRssAtStartMb: 50 },
      variants: ['grpc', 'grpc+rpc', 'native'],
      latency: {
        'grpc|exec|idle': pct([2000, 2100]), 'grpc|exec|warm': pct([1000, 1100]),
        'grpc+rpc|exec|idle': pct([2500, 2600]), 'grpc+rpc|exec|warm': pct([1500, 1600]),
        'native|exec|idle': pct([1500, 1600]), 'native|exec|warm': pct([500, 600]),
      },
      phases: { 'grpc|idle': phases, 'grpc|warm': phases, 'native|idle': { setup: percentiles([100]), 'clone→exec': percentiles([900]) } },
      first: { plugins: 2, exec: pct([4000, 5000]), rpc: pct([4500, 5500]), second: pct([2000, 2100]), phases, gapMs: 0 },
      throughput: [],
      stats: null,
    };
    const { text, svg } = render(r);
    assert.match(text, /Where a launch's time goes/);
    for (const p of PHASES) assert.ok(text.includes(p), `phase ${p} printed`);
    assert.match(text, /^idle {2}grpc .*$/m);
    assert.match(text, /^warm {2}grpc .*$/m);
    assert.match(text, /First launch of a freshly started plugin \(2 plugins/);
    assert.match(text, /(PASS|MISS) {2}first launch of a fresh plugin <= 2x an idle launch/);
    assert.match(svg, /Where a launch's time goes/);
    assert.ok(svg.includes('grpc first'), 'a bar for the first launch');
  });

  it('prints the derived plugin-bound rate, baseline 1\'s own CPU per launch and the issue 16 target lines, and draws the rate target', () => {
    const row = { concurrency: 8, command: '/bin/true', launches: 100, failures: 0, firstError: '', seconds: 1, perSecond: 244, pluginCpuPct: 90, benchCpuPct: 30, pluginCpuUsPerLaunch: 800, phasesUs: {}, pluginRssAfterMb: 80 };
    const r: Results = {
      meta: { idleGapMs: 50, kernel: 'k', cpus: 2, cgroupMode: 'hybrid', parts: { latency: false, first: false, throughput: true, stats: false } },
      latency: {},
      throughput: [row],
      nativeCpu: { concurrency: 8, command: '/bin/true', launches: 100, failures: 0, firstError: '', seconds: 1, perSecond: 300, cpuPct: 20, cpuUsPerLaunch: 500, sequentialLaunches: true },
      stats: null,
    };
    const { text, svg } = render(r);
    assert.match(text, /plugin-bound\/s/);
    assert.match(text, /^ {4}8 \/bin\/true .* 800 +1250 /m);
    assert.match(text, /native launcher \(baseline 1\), c=8 \/bin\/true, 100 launches: 500 µs CPU per launch/);
    assert.match(text, /launch\(\) calls run one after another/);
    assert.match(text, /^ {2}PASS {2}plugin CPU per launch .*800 µs vs 2 x 500 µs = 1\.60x$/m);
    assert.match(text, /^ {2}PASS {2}plugin-bound launches\/s .*: 1250\/s \(measured 244\/s/m);
    assert.match(text, /^ {2}n\/a {3}\[warm\] StartTask received .*latency part did not run/m);
    assert.ok(!/>= 1,000 launches\/s through gRPC/.test(text), 'the old measured-rate target is gone');
    assert.ok(svg.includes('target: plugin-bound 1,000/s at c=8'), 'the rate target drawn on the plugin-bound bars');
    assert.ok(svg.includes('= 1.60x (target &lt;= 2x)'), 'CPU per launch against the native launcher');
  });
});
