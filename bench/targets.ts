/**
 * Issue 16's table of targets, judged from one run's results: a pure
 * function (no I/O, no clock), so every rule has a unit test
 * (test/unit/bench-targets.test.ts). The rows are judged as the issue words
 * them; lines that are not one of its targets are `info` (printed, never
 * PASS/MISS).
 */
import type { Pct } from './tools';

/** PASS / MISS: judged; n/a: a target whose figure was not measured in this run (the line says why); info: not a target. */
export type Verdict = 'PASS' | 'MISS' | 'n/a' | 'info';

export interface TargetLine {
  /** stable id of the rule (tests and the JSON use it) */
  rule: string;
  verdict: Verdict;
  what: string;
}

/** The part of a throughput row the targets read. */
export interface ThroughputFigures {
  concurrency: number;
  command: string;
  failures: number;
  perSecond: number;
  pluginCpuUsPerLaunch: number;
}

/** Baseline 1's own CPU per launch over a burst (bench/run.ts nativeCpuBurst). */
export interface NativeCpuFigures {
  concurrency: number;
  command: string;
  launches: number;
  failures: number;
  cpuUsPerLaunch: number;
}

export interface TargetInputs {
  /** "variant|metric|mode" -> percentiles, µs */
  latency: Record<string, Pct>;
  /** the first StartTask of freshly started plugins, µs */
  first?: { exec: Pct; rpc: Pct } | undefined;
  throughput: ThroughputFigures[];
  nativeCpu?: NativeCpuFigures | undefined;
  stats: null | { tasks: number; pluginCpuPct: number; pluginRssMb: number };
  /** why unshare-go was not measured (SKIP line), when it was not */
  goShimReason?: string | undefined;
  /** why unshare-cg was not measured (pure v2), when it was not */
  unshareCgReason?: string | undefined;
  /** which parts of the bench ran (--only); a target of a part not run is n/a with that reason */
  parts: { latency: boolean; first: boolean; throughput: boolean; stats: boolean };
}

/** Issue 16's figures. */
export const TARGETS = {
  /** warm time to exec: grpc <= 1.5x the native launcher */
  warmVsNative: 1.5,
  /** a fresh plugin's first launch <= 2x an idle launch of a long-running one */
  firstVsIdle: 2,
  /** plugin CPU per launch <= 2x the native launcher's own */
  cpuVsNative: 2,
  /** plugin-bound launches/s (1 / plugin CPU per launch) at c=8, /bin/true */
  pluginBoundRate: 1000,
  /** TaskStats: % of one core with 1,000 tasks streamed at 1 s */
  statsCpuPct: 5,
  /** plugin RSS with 1,000 tasks streaming stats, MB */
  statsRssMb: 100,
  /** warm: the faithful exec2 chain (Go shim) / grpc */
  vsFaithfulChain: 5,
} as const;

/** The throughput row the CPU and rate targets are read on (the issue: c=8, /bin/true). */
export const TARGET_CONCURRENCY = 8;
export const TARGET_COMMAND = '/bin/true';
/** Tasks the TaskStats targets are stated for. */
export const STATS_TASKS = 1000;

/** plugin-bound launches/s = 1 / plugin CPU per launch (issue 16's derived column). */
export function pluginBoundRate(pluginCpuUsPerLaunch: number): number {
  return pluginCpuUsPerLaunch > 0 ? 1e6 / pluginCpuUsPerLaunch : Infinity;
}

const us = (x: number): string => `${x.toFixed(0)} µs`;
const x2 = (x: number): string => `${x.toFixed(2)}x`;
/** "chain / grpc = 2.47x (grpc faster)": a ratio of a baseline's time to ours, read the same way whichever side is quicker. */
const speedup = (base: number, ours: number): string => `${x2(base / ours)} (grpc ${base >= ours ? 'faster' : 'slower'})`;

export function judgeTargets(r: TargetInputs): TargetLine[] {
  const out: TargetLine[] = [];
  const push = (rule: string, verdict: Verdict, what: string): void => void out.push({ rule, verdict, what });
  const judged = (ok: boolean): Verdict => (ok ? 'PASS' : 'MISS');
  const exec = (variant: string, mode: 'idle' | 'warm'): Pct | undefined => r.latency[`${variant}|exec|${mode}`];
  const notRun = (part: string): string => `not measured: the ${part} part did not run in this invocation (--only / --profile)`;

  // 1. warm, StartTask received -> task's first instruction, p50: grpc <= 1.5x native.
  {
    const what = `[warm] StartTask received -> task's first instruction, p50, grpc <= ${TARGETS.warmVsNative}x the native launcher (baseline 1)`;
    const g = exec('grpc', 'warm'), b1 = exec('native', 'warm');
    if (g && b1) push('warm-vs-native', judged(g.p50 <= TARGETS.warmVsNative * b1.p50), `${what}: ${us(g.p50)} vs ${TARGETS.warmVsNative} x ${us(b1.p50)} = ${x2(g.p50 / b1.p50)}`);
    else push('warm-vs-native', 'n/a', `${what}: ${r.parts.latency ? 'grpc or native row missing' : notRun('latency')}`);
    const rpc = exec('grpc+rpc', 'warm');
    if (rpc && b1) push('warm-vs-native-rpc', 'info', `[warm] the same from the client's StartTask call (grpc+rpc, adds the gRPC transport baseline 1 does not have): ${us(rpc.p50)} = ${x2(rpc.p50 / b1.p50)} native`);
    const gi = exec('grpc', 'idle'), b1i = exec('native', 'idle');
    if (gi && b1i) push('idle-vs-native', 'info', `[idle] grpc / native, time to exec p50: ${us(gi.p50)} / ${us(b1i.p50)} = ${x2(gi.p50 / b1i.p50)} (the issue's idle target is the unshare chain, below)`);
  }

  // 2. idle: the driver is never slower than the unshare chain on the same host.
  {
    const what = '[idle] time to exec p50, grpc never slower than the unshare chain (unshare + C shim, the issue\'s figure)';
    const g = exec('grpc', 'idle'), u = exec('unshare', 'idle');
    if (g && u) push('idle-vs-unshare', judged(g.p50 <= u.p50), `${what}: ${us(g.p50)} vs ${us(u.p50)} = ${x2(g.p50 / u.p50)}`);
    else push('idle-vs-unshare', 'n/a', `${what}: ${r.parts.latency ? 'grpc or unshare row missing' : notRun('latency')}`);
    const uc = exec('unshare-cg', 'idle');
    const sameWork = '[idle] same work, no target: grpc vs unshare-cg (the chain joining the task\'s cgroups, as exec2\'s would on a v1 host)';
    if (g && uc) push('idle-vs-unshare-cg', 'info', `${sameWork}: ${us(g.p50)} vs ${us(uc.p50)} = ${x2(g.p50 / uc.p50)} (${g.p50 <= uc.p50 ? 'not slower' : 'slower'}); unshare-cg - unshare = ${us(uc.p50 - (u?.p50 ?? NaN))}, the kernel's wait for the join`);
    else if (r.parts.latency) push('idle-vs-unshare-cg', 'info', `${sameWork}: not measured (${r.unshareCgReason ?? 'unshare-cg row missing'})`);
  }

  // 3. first launch of a freshly started plugin <= 2x an idle launch of a long-running plugin.
  {
    const what = `first launch of a fresh plugin <= ${TARGETS.firstVsIdle}x an idle launch of a long-running one`;
    const idle = exec('grpc', 'idle'), idleRpc = exec('grpc+rpc', 'idle');
    if (r.first && idle) push('first-vs-idle', judged(r.first.exec.p50 <= TARGETS.firstVsIdle * idle.p50), `${what}, from receipt: ${us(r.first.exec.p50)} vs ${TARGETS.firstVsIdle} x ${us(idle.p50)} = ${x2(r.first.exec.p50 / idle.p50)}`);
    else push('first-vs-idle', 'n/a', `${what}: ${!r.parts.first ? notRun('first') : !r.parts.latency ? `${notRun('latency')} (the idle launch it is compared with)` : 'a row is missing'}`);
    if (r.first && idleRpc) push('first-vs-idle-rpc', judged(r.first.rpc.p50 <= TARGETS.firstVsIdle * idleRpc.p50), `${what}, from the client's call: ${us(r.first.rpc.p50)} vs ${TARGETS.firstVsIdle} x ${us(idleRpc.p50)} = ${x2(r.first.rpc.p50 / idleRpc.p50)}`);
  }

  // 4. plugin CPU per launch <= 2x the native launcher's own, same run; 5. plugin-bound rate >= 1,000/s.
  {
    const row = r.throughput.find((t) => t.concurrency === TARGET_CONCURRENCY && t.command === TARGET_COMMAND);
    const nc = r.nativeCpu;
    const cpuWhat = `plugin CPU per launch (Start + Wait + Destroy, c=${TARGET_CONCURRENCY}, ${TARGET_COMMAND}) <= ${TARGETS.cpuVsNative}x the native launcher's own, same run`;
    const failed = (n: number): string => (n ? `, ${n} failed` : '');
    if (row && nc) {
      push('cpu-vs-native', judged(row.pluginCpuUsPerLaunch <= TARGETS.cpuVsNative * nc.cpuUsPerLaunch && row.failures === 0 && nc.failures === 0),
        `${cpuWhat}: ${us(row.pluginCpuUsPerLaunch)} vs ${TARGETS.cpuVsNative} x ${us(nc.cpuUsPerLaunch)} = ${x2(row.pluginCpuUsPerLaunch / nc.cpuUsPerLaunch)}${failed(row.failures)}${nc.failures ? `, native ${nc.failures} failed` : ''}`);
    } else {
      push('cpu-vs-native', 'n/a', `${cpuWhat}: ${!r.parts.throughput ? notRun('throughput') : !row ? `no c=${TARGET_CONCURRENCY} ${TARGET_COMMAND} row` : 'native CPU burst missing'}`);
    }
    const rateWhat = `plugin-bound launches/s (1 / plugin CPU per launch) at c=${TARGET_CONCURRENCY}, ${TARGET_COMMAND} >= ${TARGETS.pluginBoundRate.toLocaleString('en-US')}/s`;
    if (row) {
      const rate = pluginBoundRate(row.pluginCpuUsPerLaunch);
      push('plugin-bound-rate', judged(rate >= TARGETS.pluginBoundRate && row.failures === 0), `${rateWhat}: ${rate.toFixed(0)}/s (measured ${row.perSecond.toFixed(0)}/s with the bench client on the same CPUs${failed(row.failures)})`);
    } else {
      push('plugin-bound-rate', 'n/a', `${rateWhat}: ${!r.parts.throughput ? notRun('throughput') : `no c=${TARGET_CONCURRENCY} ${TARGET_COMMAND} row`}`);
    }
  }

  // 6. TaskStats <= 5 % of one core and RSS <= 100 MB, with 1,000 tasks.
  {
    const s = r.stats;
    const cpuWhat = `TaskStats plugin CPU <= ${TARGETS.statsCpuPct} % of one core with ${STATS_TASKS.toLocaleString('en-US')} tasks streamed at 1 s`;
    const rssWhat = `plugin RSS <= ${TARGETS.statsRssMb} MB with ${STATS_TASKS.toLocaleString('en-US')} tasks streaming stats`;
    if (s) {
      const full = s.tasks >= STATS_TASKS;
      const notJudged = full ? '' : ` (not judged: fewer than ${STATS_TASKS.toLocaleString('en-US')} tasks in --quick)`;
      push('stats-cpu', full ? judged(s.pluginCpuPct <= TARGETS.statsCpuPct) : 'n/a', `${cpuWhat}: ${s.pluginCpuPct.toFixed(1)} % with ${s.tasks}${notJudged}`);
      push('stats-rss', full ? judged(s.pluginRssMb <= TARGETS.statsRssMb) : 'n/a', `${rssWhat}: ${s.pluginRssMb.toFixed(0)} MB with ${s.tasks}${notJudged}`);
    } else {
      push('stats-cpu', 'n/a', `${cpuWhat}: ${notRun('stats')}`);
      push('stats-rss', 'n/a', `${rssWhat}: ${notRun('stats')}`);
    }
  }

  // 7. vs the official driver's launch chain, warm: >= 5x faster than the faithful chain (Go shim).
  {
    const what = `[warm] vs the official driver's launch chain: grpc >= ${TARGETS.vsFaithfulChain}x faster than exec2's chain with the Go shim (unshare-go, faithful)`;
    const g = exec('grpc', 'warm'), ug = exec('unshare-go', 'warm'), u = exec('unshare', 'warm');
    if (g && ug) push('vs-faithful-chain', judged(ug.p50 >= TARGETS.vsFaithfulChain * g.p50), `${what}: unshare-go / grpc = ${speedup(ug.p50, g.p50)}; unshare-go ${us(ug.p50)}, grpc ${us(g.p50)}`);
    else push('vs-faithful-chain', 'n/a', `${what}: ${!r.parts.latency ? notRun('latency') : `not measured (SKIP: ${r.goShimReason ?? 'no Go shim row'})`}`);
    if (g && u) push('vs-c-shim', 'info', `[warm] vs exec2's chain, best case (unshare + C shim), no target: unshare / grpc = ${speedup(u.p50, g.p50)}; unshare ${us(u.p50)}, grpc ${us(g.p50)}`);
    const gi = exec('grpc', 'idle'), ugi = exec('unshare-go', 'idle'), ui = exec('unshare', 'idle');
    if (gi && (ugi || ui)) {
      const parts = [ugi ? `unshare-go / grpc = ${speedup(ugi.p50, gi.p50)}` : null, ui ? `unshare (C shim) / grpc = ${speedup(ui.p50, gi.p50)}` : null].filter(Boolean).join('; ');
      push('vs-chains-idle', 'info', `[idle] vs the chains, time to exec p50, no target: ${parts}`);
    }
  }
  return out;
}
