/**
 * The printed table, PASS/MISS per target, the raw JSON and a hand-written
 * SVG chart (no dependencies).
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { judgeTargets, pluginBoundRate, TARGET_COMMAND, TARGET_CONCURRENCY, TARGETS, type TargetInputs, type TargetLine } from './targets';
import type { Pct } from './tools';

export interface SeriesKey {
  variant: string;
  metric: 'exec' | 'reply' | 'exit';
  mode: 'idle' | 'warm';
}

/** A burst of launches: what it ran and how it went (the plugin's throughput rows, baseline 1's CPU burst). */
export interface BurstRow {
  concurrency: number;
  command: string;
  launches: number;
  failures: number;
  firstError: string;
  seconds: number;
  perSecond: number;
}

export interface ThroughputRow extends BurstRow {
  pluginCpuPct: number;
  benchCpuPct: number;
  pluginCpuUsPerLaunch: number;
  /** mean µs per launch phase, from the plugin's own Prometheus histogram */
  phasesUs: Record<string, number>;
  pluginRssAfterMb: number;
}

/** Baseline 1's own CPU per launch over a burst, measured next to the plugin's c=8 row (bench/run.ts nativeCpuBurst). */
export interface NativeCpuRow extends BurstRow {
  /** the bench process's CPU (all threads) over the burst, % of one core */
  cpuPct: number;
  cpuUsPerLaunch: number;
  /** launch() blocks its thread: the launches run one after another, the waits overlap */
  sequentialLaunches: boolean;
}

export interface Results {
  meta: Record<string, unknown>;
  variants?: string[];
  /** "variant|metric|mode" -> percentiles (µs) and raw samples */
  latency: Record<string, Pct & { raw: number[] }>;
  throughput: ThroughputRow[];
  stats: null | {
    tasks: number;
    windowS: number;
    pluginCpuPct: number;
    pluginRssMb: number;
    pluginRssBeforeMb: number;
    /** with the tasks running, before any stream was opened */
    pluginRssTasksMb: number;
    statsPerSecond: number;
    streamErrors: number;
    startSecs: number;
    stopSecs: number;
  };
  /** "variant|mode" -> phase -> percentiles (µs) of the exec launches (grpc and native) */
  phases?: Record<string, Record<string, Pct>>;
  /** the first StartTask of freshly started plugins (one launch per plugin) */
  first?: FirstLaunch;
  /** --ab-bin: the same row for another tree's plugin, interleaved */
  firstB?: FirstLaunch & { bin: string };
  /** baseline 1's own CPU per launch at c=8 (the plugin CPU target's reference) */
  nativeCpu?: NativeCpuRow;
  targets?: TargetLine[];
  profile?: unknown;
}

export interface FirstLaunch {
  plugins: number;
  /** StartTask received → task's first instruction, µs, one per plugin */
  exec: Pct & { raw: number[] };
  /** client's StartTask call → task's first instruction */
  rpc: Pct & { raw: number[] };
  /** the same plugin's second launch, 50 ms after the first one's exit (from receipt) */
  second: Pct & { raw: number[] };
  /** phase -> percentiles (µs) of the first launches */
  phases: Record<string, Pct>;
  /** SetConfig's answer → StartTask sent, ms (Nomad's own gap is larger) */
  gapMs: number;
}

/** Phases of a launch in order; the first six add up to time to exec (report of bench/run.ts pluginPhases). */
export const PHASES = ['plan', 'handoff', 'cgroup', 'prepare', 'setup', 'clone→exec', 'confirm', 'finish', 'reply'] as const;
const TO_EXEC = 6;
const PHASE_TEXT: Record<string, string> = {
  plan: 'main thread: StartTask handler, task config decode, sandbox plan, request built',
  handoff: 'request handed to the pool → a worker thread starts it (structured clone, thread wake-up)',
  cgroup: 'worker: task cgroup made/limits written (v1: own cpuacct/pids dirs)',
  prepare: 'worker: user check, FIFO opens + chown, status dir, cgroup.procs and netns opens',
  setup: 'addon: LaunchSpec parsed, clone arguments, up to clone3',
  'clone→exec': 'clone3 → the task\'s first instruction: init (namespaces, mounts, cgroup joins, keyring, caps, Landlock, user) and execve',
  confirm: 'task running → the worker sees the exec confirmed (error pipe EOF)',
  finish: 'worker: start time read, hand-off record, reply built',
  reply: 'reply returned by the worker → received by the main thread',
};
const PHASE_COLORS: Record<string, string> = {
  plan: '#1f78b4', handoff: '#a6cee3', cgroup: '#33a02c', prepare: '#b2df8a', setup: '#fb9a99', 'clone→exec': '#e31a1c', confirm: '#fdbf6f', finish: '#ff7f00', reply: '#cab2d6',
};

const DESCRIPTIONS: Record<string, string> = {
  grpc: 'StartTask to the real plugin, timed from its receipt in the plugin (worker, cgroup limits + join, pid/ipc/mnt ns, /proc, dynamic user, Landlock, FIFOs)',
  'grpc+rpc': 'the same launches timed from the client\'s StartTask call: adds gRPC transport both ways (what the Nomad agent waits)',
  native: 'baseline 1: the addon\'s launch() called directly, same LaunchSpec, no gRPC, no worker (our floor)',
  'unshare-cg': 'diagnostic (v1/hybrid): the unshare chain with the C shim joining the task\'s cgroups (cgroup.procs, the same cgroups and limits the driver\'s task joins) before it starts the task: what exec2\'s chain would pay on a v1 host; unshare-cg - unshare = the join\'s wait',
  unshare: 'baseline 2, exec2\'s chain, best case: unshare --ipc --pid --mount-proc --fork --kill-child --setuid/--setgid -> C shim (bench/shim.c) -> task (no Go start-up: faster than the real chain)',
  'unshare-go': 'baseline 2g, exec2 chain (Go shim, faithful): the same unshare -> `go-shim exec2-shim` (one Go binary linking gRPC, go-plugin, hclog, protobuf, HCL, msgpack, re-executed as the shim like exec2; bench/goshim/) -> task',
  spawn: 'baseline 3: Node child_process.spawn of the target, no isolation',
  bwrap: 'baseline 4: bwrap --unshare-user/pid/ipc --ro-bind / / --proc /proc --dev /dev (no Landlock, no cgroup)',
  'native-nocg': 'diagnostic: baseline 1 without joining the task cgroup (shows what the cgroup join costs)',
  'grpc-B': 'grpc, for the plugin given with --ab-bin (another build), launched in the same round robin: grpc / grpc-B = this tree against that build',
  'native-primed': 'diagnostic (v1/hybrid): baseline 1, with a cgroup.procs write of a pid that cannot exist (ESRCH, moves nothing) issued 2 ms before launch(): it starts the RCU grace period the join waits for; native minus native-primed = what overlapping the wait with the plan, hand-off and prepare would save',
  inline: 'diagnostic: the worker\'s launch function on the bench thread (limits, FIFOs, status dir + launcher); grpc - inline = gRPC receipt, main thread and pool hop',
};

const METRIC_TEXT = { exec: 'time to exec (target\'s main())', reply: 'time to StartTask reply', exit: 'time to exit of /bin/true (WaitTask answered)' };

export function report(r: Results, dir: string, stamp: string, log: (s: string) => void): void {
  const lat = r.latency;
  const get = (variant: string, metric: SeriesKey['metric'], mode: SeriesKey['mode']) => lat[`${variant}|${metric}|${mode}`];
  const f = (x: number | undefined, w = 8): string => (x === undefined || Number.isNaN(x) ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1)).padStart(w);

  if (r.variants) {
    log('');
    log(`Latency, µs. n=${get('grpc', 'exec', 'idle')?.n ?? 0} per row, all variants interleaved round robin in one run.`);
    log(`  idle: ${String(r.meta.idleGapMs)} ms quiet before each launch (a cgroup v1 join then waits for an RCU grace period, as for a lone StartTask)`);
    log('  warm: a cgroup migration right before each launch (the v1 join is then fast, as inside a burst)');
    log('  xb1 / xb2 / xb2g: this p50 divided by the p50 of baseline 1 (native) / baseline 2 (unshare: exec2\'s chain, best case) / baseline 2g (unshare-go: exec2 chain, Go shim, faithful) for the same metric and mode');
    const gs = r.meta.goShim as { available: boolean; reason?: string; bytes?: number; goVersion?: string } | undefined;
    if (gs && !gs.available) log(`  SKIP unshare-go (exec2 chain, Go shim, faithful): ${gs.reason ?? ''}`);
    if (gs?.available) log(`  unshare-go: build/bench/go-shim, ${((gs.bytes ?? 0) / 2 ** 20).toFixed(1)} MiB, ${gs.goVersion ?? ''}`);
    log('');
    log(`${'metric'.padEnd(6)} ${'mode'.padEnd(5)} ${'variant'.padEnd(12)} ${'p50'.padStart(8)} ${'p90'.padStart(8)} ${'p99'.padStart(8)} ${'xb1'.padStart(7)} ${'xb2'.padStart(7)} ${'xb2g'.padStart(7)}`);
    for (const metric of ['exec', 'reply', 'exit'] as const) {
      for (const mode of ['idle', 'warm'] as const) {
        for (const v of r.variants) {
          const s = get(v, metric, mode);
          if (!s) continue;
          const b1 = get('native', metric, mode), b2 = get('unshare', metric, mode), b2g = get('unshare-go', metric, mode);
          log(`${metric.padEnd(6)} ${mode.padEnd(5)} ${v.padEnd(12)} ${f(s.p50)} ${f(s.p90)} ${f(s.p99)} ${f(b1 ? s.p50 / b1.p50 : undefined, 7)} ${f(b2 ? s.p50 / b2.p50 : undefined, 7)} ${f(b2g ? s.p50 / b2g.p50 : undefined, 7)}`);
        }
      }
      log('');
    }
    for (const v of r.variants) log(`  ${v.padEnd(12)} ${DESCRIPTIONS[v] ?? ''}`);
    for (const mode of ['idle', 'warm'] as const) {
      const a = get('grpc', 'exec', mode), b = get('grpc-B', 'exec', mode);
      if (a && b) log(`  [${mode}] grpc / grpc-B (this tree / --ab-bin build), time to exec p50: ${a.p50.toFixed(0)} / ${b.p50.toFixed(0)} µs = ${(a.p50 / b.p50).toFixed(2)}`);
    }
    if (r.phases && Object.keys(r.phases).length) {
      log('');
      log('Where a launch\'s time goes, µs, p50 of each phase (exec launches; the first six phases add up to time to exec, the sum of their p50s is printed next to the p50 of the total):');
      log(`${'mode'.padEnd(5)} ${'variant'.padEnd(8)} ${PHASES.map((p) => p.padStart(Math.max(7, p.length))).join(' ')} ${'Σ to exec'.padStart(10)} ${'p50 exec'.padStart(9)}`);
      for (const mode of ['idle', 'warm'] as const) {
        for (const v of ['grpc', 'grpc-B', 'native']) {
          const ph = r.phases[`${v}|${mode}`];
          if (!ph) continue;
          const cells = PHASES.map((p) => (ph[p] ? f(ph[p].p50, Math.max(7, p.length)) : '-'.padStart(Math.max(7, p.length))));
          const sum = PHASES.slice(0, TO_EXEC).reduce((a, p) => a + (ph[p]?.p50 ?? 0), 0);
          log(`${mode.padEnd(5)} ${v.padEnd(8)} ${cells.join(' ')} ${f(sum, 10)} ${f(get(v, 'exec', mode)?.p50, 9)}`);
        }
      }
      for (const p of PHASES) log(`  ${p.padEnd(11)} ${PHASE_TEXT[p]}`);
      log('  native: setup = launch() called → clone3 (the addon\'s own preparation), clone→exec as for grpc');
    }
  }

  if (r.first) {
    const fl = r.first;
    log(`First launch of a freshly started plugin (${fl.plugins} plugins, StartTask ${fl.gapMs.toFixed(0)} ms after SetConfig answered, as \`run\` does), µs:`);
    log(`  from receipt p50 ${f(fl.exec.p50)} (min ${f(Math.min(...fl.exec.raw))}, max ${f(fl.exec.max)}); from the client's call p50 ${f(fl.rpc.p50)}; the same plugin's second launch p50 ${f(fl.second.p50)}`);
    log(`  phases p50: ${PHASES.map((p) => `${p} ${fl.phases[p] ? fl.phases[p].p50.toFixed(0) : '-'}`).join(', ')}`);
    const b = r.firstB;
    if (b) {
      log(`  B = ${b.bin}: from receipt p50 ${f(b.exec.p50)} (min ${f(Math.min(...b.exec.raw))}, max ${f(b.exec.max)}); from the client's call p50 ${f(b.rpc.p50)}; second launch p50 ${f(b.second.p50)}`);
      log(`  this tree / B, p50: from receipt ${(fl.exec.p50 / b.exec.p50).toFixed(2)}, from the call ${(fl.rpc.p50 / b.rpc.p50).toFixed(2)}, second launch ${(fl.second.p50 / b.second.p50).toFixed(2)}`);
    }
    log('');
  }

  if (r.throughput.length) {
    log(`Throughput through gRPC: StartTask + WaitTask + DestroyTask, burst of ${r.throughput[0]!.launches} per row`);
    log(`${'conc'.padStart(5)} ${'command'.padEnd(16)} ${'launch/s'.padStart(9)} ${'failed'.padStart(7)} ${'plugin CPU'.padStart(11)} ${'bench CPU'.padStart(10)} ${'plugin CPU µs/launch'.padStart(21)} ${'plugin-bound/s'.padStart(15)}   plugin-side phase means, µs (plan/queue/cgroup/prepare/setup/spawn/exec_confirmed/reply)`);
    for (const t of r.throughput) {
      const ph = ['plan', 'queue', 'cgroup', 'prepare', 'setup', 'spawn', 'exec_confirmed', 'reply'].map((p) => (t.phasesUs[p] ?? NaN).toFixed(0)).join('/');
      log(`${String(t.concurrency).padStart(5)} ${t.command.padEnd(16)} ${t.perSecond.toFixed(0).padStart(9)} ${String(t.failures).padStart(7)} ${`${t.pluginCpuPct.toFixed(0)} %`.padStart(11)} ${`${t.benchCpuPct.toFixed(0)} %`.padStart(10)} ${t.pluginCpuUsPerLaunch.toFixed(0).padStart(21)} ${pluginBoundRate(t.pluginCpuUsPerLaunch).toFixed(0).padStart(15)}   ${ph}`);
    }
    log('  plugin-bound/s = 1 / plugin CPU per launch: the rate if the plugin had a core to itself (the bench client, grpc-js, shares the CPUs here; Nomad\'s Go client is not it)');
    const nc = r.nativeCpu;
    if (nc) {
      log(`  native launcher (baseline 1), c=${nc.concurrency} ${nc.command}, ${nc.launches} launches: ${nc.cpuUsPerLaunch.toFixed(0)} µs CPU per launch (bench process, all threads: launch() + wait + status file removed), ${nc.cpuPct.toFixed(0)} % of a core, ${nc.perSecond.toFixed(0)} launches/s${nc.failures ? `, ${nc.failures} failed: ${nc.firstError}` : ''}`);
      if (nc.sequentialLaunches) log(`    launch() blocks its thread until the exec is confirmed: the ${nc.concurrency} lanes' launch() calls run one after another on the bench's thread, up to ${nc.concurrency} tasks alive at once (their waits overlap)`);
    }
    log('');
  }

  if (r.stats) {
    const s = r.stats;
    log(`TaskStats: ${s.tasks} running tasks (sleep), one TaskStats stream each at 1 s, measured over ${s.windowS.toFixed(1)} s:`);
    log(`  plugin CPU ${s.pluginCpuPct.toFixed(1)} % of one core, plugin RSS ${s.pluginRssMb.toFixed(0)} MB (${s.pluginRssBeforeMb.toFixed(0)} MB just before the tasks, ${Number(r.meta.pluginRssAtStartMb).toFixed(0)} MB when the plugin had just started), ${s.statsPerSecond.toFixed(0)} stats messages/s received, ${s.streamErrors} stream errors`);
    log(`  plugin RSS with the tasks running and no stream open yet: ${s.pluginRssTasksMb.toFixed(0)} MB`);
    log(`  ${s.tasks} StartTasks took ${s.startSecs.toFixed(1)} s (concurrency 8); stopping all took ${s.stopSecs.toFixed(1)} s`);
    log('');
  }

  const targets = judgeTargets(targetInputs(r));
  log('Targets (issue 16; PASS/MISS judged, n/a = not measured in this run, info = not a target):');
  for (const t of targets) log(`  ${t.verdict.padEnd(4)}  ${t.what}`);
  r.targets = targets;
  if (r.profile) log(`\nProfile of the plugin (throughput c=8):\n${(r.profile as { text: string }).text}`);

  const json = path.join(dir, `${stamp}.json`), svgFile = path.join(dir, `${stamp}.svg`);
  writeFileSync(json, JSON.stringify(r, null, 1));
  writeFileSync(svgFile, svg(r));
  log(`\nraw numbers: ${path.relative(process.cwd(), json)}\nchart:       ${path.relative(process.cwd(), svgFile)}`);
}

/** What judgeTargets reads, from a run's results. */
export function targetInputs(r: Results): TargetInputs {
  const gs = r.meta.goShim as { available: boolean; reason?: string } | undefined;
  const uc = r.meta.unshareCg as { available: boolean; reason?: string } | undefined;
  const parts = (r.meta.parts as TargetInputs['parts'] | undefined) ?? { latency: Boolean(r.variants), first: Boolean(r.first), throughput: r.throughput.length > 0, stats: Boolean(r.stats) };
  return {
    latency: r.latency, first: r.first, throughput: r.throughput, nativeCpu: r.nativeCpu, stats: r.stats, parts,
    goShimReason: gs && !gs.available ? gs.reason : undefined,
    unshareCgReason: uc && !uc.available ? uc.reason : undefined,
  };
}

// ---------------------------------------------------------------------------- SVG

const COLORS: Record<string, string> = { 'grpc-B': '#9ecfc0', grpc: '#1b9e77', 'grpc+rpc': '#66a61e', native: '#7570b3', unshare: '#d95f02', 'unshare-cg': '#f4a460', 'unshare-go': '#b8860b', spawn: '#888888', bwrap: '#e7298a', 'native-nocg': '#a6a6d8', 'native-primed': '#4a4aa0', inline: '#a6761d' };
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Deterministic jitter so the chart does not change between renders. */
function jitter(i: number): number {
  const x = Math.sin(i * 12.9898) * 43758.5453;
  return x - Math.floor(x) - 0.5;
}

export function svg(r: Results): string {
  const variants = r.variants ?? [];
  const W = 1200, panelW = 560, labelW = 95, rowH = 30;
  const panels: Array<{ metric: SeriesKey['metric']; mode: SeriesKey['mode'] }> = [
    { metric: 'exec', mode: 'idle' }, { metric: 'exec', mode: 'warm' },
    { metric: 'exit', mode: 'idle' }, { metric: 'exit', mode: 'warm' },
  ];
  const parts: string[] = [];
  let y = 0;
  const title = `exec2 bench ${typeof r.meta.when === 'string' ? r.meta.when : ''}: kernel ${String(r.meta.kernel)}, ${String(r.meta.cpus)} CPUs, cgroups ${String(r.meta.cgroupMode)}${r.meta.quick ? ' (quick run)' : ''}`;
  parts.push(`<text x="20" y="24" font-size="16" font-weight="bold">${esc(title)}</text>`);
  y = 40;
  if (variants.length) {
    parts.push(`<text x="20" y="${y + 14}" font-size="12" fill="#444">Latency in µs, log scale. Box: p10-p90, thick line: median (value printed), whiskers: p1-p99, dots: every sample. idle = 50 ms quiet before each launch; warm = a cgroup migration just before it.</text>`);
    y += 26;
    const ph = variants.length * rowH + 60;
    // one log axis per metric, shared by both modes
    for (let p = 0; p < panels.length; p++) {
      const { metric, mode } = panels[p]!;
      const px = 20 + (p % 2) * (panelW + 40), py = y + Math.floor(p / 2) * (ph + 20);
      const all = variants.flatMap((v) => (['idle', 'warm'] as const).flatMap((m) => r.latency[`${v}|${metric}|${m}`]?.raw ?? []));
      if (!all.length) continue;
      const lo = Math.log10(Math.max(1, Math.min(...all) / 1.3)), hi = Math.log10(Math.max(...all) * 1.6);
      const x0 = px + labelW, xw = panelW - labelW - 60;
      const X = (v: number): number => x0 + ((Math.log10(Math.max(v, 1)) - lo) / Math.max(1e-9, hi - lo)) * xw;
      parts.push(`<rect x="${px}" y="${py}" width="${panelW}" height="${ph}" fill="#fafafa" stroke="#ccc"/>`);
      parts.push(`<text x="${px + 8}" y="${py + 18}" font-size="13" font-weight="bold">${esc(`${METRIC_TEXT[metric]}: ${mode}`)}</text>`);
      for (let d = Math.floor(lo); d <= Math.ceil(hi); d++) {
        for (const m of [1, 2, 5]) {
          const v = m * 10 ** d;
          if (v < 10 ** lo || v > 10 ** hi) continue;
          const gx = X(v).toFixed(1);
          parts.push(`<line x1="${gx}" y1="${py + 28}" x2="${gx}" y2="${py + ph - 22}" stroke="${m === 1 ? '#bbb' : '#e4e4e4'}"/>`);
          if (m === 1 || hi - lo <= 2.5) parts.push(`<text x="${gx}" y="${py + ph - 8}" font-size="11" text-anchor="middle">${v >= 1000 ? `${v / 1000} ms` : `${v} µs`}</text>`);
        }
      }
      variants.forEach((v, i) => {
        const s = r.latency[`${v}|${metric}|${mode}`];
        const cy = py + 34 + i * rowH + rowH / 2;
        parts.push(`<text x="${px + labelW - 6}" y="${cy + 4}" font-size="12" text-anchor="end">${esc(v)}</text>`);
        if (!s) return;
        const c = COLORS[v] ?? '#333';
        s.raw.forEach((val, k) => parts.push(`<circle cx="${X(val).toFixed(1)}" cy="${(cy + jitter(k) * (rowH - 10)).toFixed(1)}" r="1.6" fill="${c}" fill-opacity="0.35"/>`));
        parts.push(`<line x1="${X(s.p1).toFixed(1)}" y1="${cy}" x2="${X(s.p99).toFixed(1)}" y2="${cy}" stroke="#222" stroke-width="1"/>`);
        for (const w of [s.p1, s.p99]) parts.push(`<line x1="${X(w).toFixed(1)}" y1="${cy - 5}" x2="${X(w).toFixed(1)}" y2="${cy + 5}" stroke="#222"/>`);
        parts.push(`<rect x="${X(s.p10).toFixed(1)}" y="${cy - 8}" width="${Math.max(1, X(s.p90) - X(s.p10)).toFixed(1)}" height="16" fill="${c}" fill-opacity="0.45" stroke="${c}"/>`);
        parts.push(`<line x1="${X(s.p50).toFixed(1)}" y1="${cy - 10}" x2="${X(s.p50).toFixed(1)}" y2="${cy + 10}" stroke="#000" stroke-width="3"/>`);
        parts.push(`<text x="${Math.min(px + panelW - 4, X(s.p99) + 8).toFixed(1)}" y="${cy + 4}" font-size="11" ${X(s.p99) + 60 > px + panelW ? 'text-anchor="end"' : ''}>${s.p50.toFixed(0)}</text>`);
      });
    }
    y += 2 * (ph + 20) + 10;
    const gs = r.meta.goShim as { available: boolean; reason?: string } | undefined;
    const uc = r.meta.unshareCg as { available: boolean; reason?: string } | undefined;
    const legend = `unshare = exec2's chain, best case (C shim); unshare-go = exec2 chain (Go shim, faithful)${gs && !gs.available ? `: SKIPPED, ${gs.reason ?? ''}` : ''}; native = baseline 1 (our floor)${uc?.available ? '; unshare-cg = the C-shim chain joining the task cgroups (v1 join cost)' : ''}`;
    parts.push(`<text x="20" y="${y + 4}" font-size="12" fill="#444">${esc(legend)}</text>`);
    y += 18;
  }
  const stacks = (['idle', 'warm'] as const).flatMap((mode) => ['grpc', 'native'].map((v) => ({ label: `${v} ${mode}`, ph: r.phases?.[`${v}|${mode}`] }))).filter((x) => x.ph);
  if (r.first) stacks.push({ label: 'grpc first', ph: r.first.phases });
  if (stacks.length) {
    const px = 20, labelW = 95, barH = 18, py = y;
    const totals = stacks.map((s) => PHASES.reduce((a, p) => a + (s.ph![p]?.p50 ?? 0), 0));
    const max = Math.max(...totals, 1);
    const xw = W - 40 - labelW - 90;
    const X = (v: number): number => px + labelW + (v / max) * xw;
    const h = 50 + stacks.length * (barH + 10) + 40;
    parts.push(`<rect x="${px}" y="${py}" width="${W - 40}" height="${h}" fill="#fafafa" stroke="#ccc"/>`);
    parts.push(`<text x="${px + 8}" y="${py + 18}" font-size="13" font-weight="bold">Where a launch's time goes: p50 of each phase, µs, stacked (linear); the bar's mark is the task's first instruction</text>`);
    stacks.forEach((s, i) => {
      const cy = py + 34 + i * (barH + 10);
      parts.push(`<text x="${px + labelW - 6}" y="${cy + barH - 5}" font-size="12" text-anchor="end">${esc(s.label)}</text>`);
      let acc = 0;
      PHASES.forEach((p, k) => {
        const v = s.ph![p]?.p50;
        if (v === undefined) return;
        const w = Math.max(0, X(acc + Math.max(0, v)) - X(acc));
        parts.push(`<rect x="${X(acc).toFixed(1)}" y="${cy}" width="${w.toFixed(1)}" height="${barH}" fill="${PHASE_COLORS[p]}"><title>${esc(`${p}: ${v.toFixed(0)} µs`)}</title></rect>`);
        acc += Math.max(0, v);
        if (k === TO_EXEC - 1) parts.push(`<line x1="${X(acc).toFixed(1)}" y1="${cy - 3}" x2="${X(acc).toFixed(1)}" y2="${cy + barH + 3}" stroke="#000" stroke-width="2"/>`);
      });
      parts.push(`<text x="${(X(acc) + 6).toFixed(1)}" y="${cy + barH - 5}" font-size="11">${acc.toFixed(0)}</text>`);
    });
    let lx = px + labelW;
    const ly = py + h - 14;
    for (const p of PHASES) {
      parts.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${PHASE_COLORS[p]}"/><text x="${lx + 16}" y="${ly}" font-size="11">${esc(p)}</text>`);
      lx += 28 + p.length * 7;
    }
    y += h + 10;
  }
  if (r.throughput.length) {
    const bh = 220, px = 20, py = y, bw = 80, gap = 40, half = bw / 2 - 2;
    // two bars per row: measured launches/s, and plugin-bound launches/s (1 / plugin CPU per launch), which the target is read on
    const bound = r.throughput.map((t) => Math.min(pluginBoundRate(t.pluginCpuUsPerLaunch), 1e6));
    const max = Math.max(TARGETS.pluginBoundRate * 1.1, ...r.throughput.map((t) => t.perSecond), ...bound);
    const Y = (v: number): number => py + 30 + bh - (v / max) * bh;
    parts.push(`<rect x="${px}" y="${py}" width="${W - 40}" height="${bh + 70}" fill="#fafafa" stroke="#ccc"/>`);
    parts.push(`<text x="${px + 8}" y="${py + 18}" font-size="13" font-weight="bold">Launches/s through gRPC (Start + Wait + Destroy) by concurrency: measured (solid), plugin-bound = 1 / plugin CPU per launch (light)</text>`);
    parts.push(`<line x1="${px + 60}" y1="${Y(TARGETS.pluginBoundRate)}" x2="${px + 60 + r.throughput.length * (bw + gap)}" y2="${Y(TARGETS.pluginBoundRate)}" stroke="#c00" stroke-dasharray="6 4"/><text x="${px + 64}" y="${Y(TARGETS.pluginBoundRate) - 4}" font-size="11" fill="#c00">target: plugin-bound ${TARGETS.pluginBoundRate.toLocaleString('en-US')}/s at c=${TARGET_CONCURRENCY}, ${TARGET_COMMAND}</text>`);
    r.throughput.forEach((t, i) => {
      const bx = px + 80 + i * (bw + gap), b = bound[i]!;
      parts.push(`<rect x="${bx}" y="${Y(t.perSecond).toFixed(1)}" width="${half}" height="${(py + 30 + bh - Y(t.perSecond)).toFixed(1)}" fill="${COLORS.grpc}"/>`);
      parts.push(`<text x="${bx + half / 2}" y="${(Y(t.perSecond) - 5).toFixed(1)}" font-size="11" text-anchor="middle">${t.perSecond.toFixed(0)}</text>`);
      parts.push(`<rect x="${bx + half + 4}" y="${Y(b).toFixed(1)}" width="${half}" height="${(py + 30 + bh - Y(b)).toFixed(1)}" fill="${COLORS.grpc}" fill-opacity="0.35" stroke="${COLORS.grpc}"/>`);
      parts.push(`<text x="${bx + half + 4 + half / 2}" y="${(Y(b) - 5).toFixed(1)}" font-size="11" text-anchor="middle">${b.toFixed(0)}</text>`);
      parts.push(`<text x="${bx + bw / 2}" y="${py + bh + 48}" font-size="12" text-anchor="middle">c=${t.concurrency}${t.command === '/bin/true' ? '' : ' static'}</text>`);
      parts.push(`<text x="${bx + bw / 2}" y="${py + bh + 62}" font-size="10" text-anchor="middle" fill="#555">CPU ${t.pluginCpuUsPerLaunch.toFixed(0)} µs/launch</text>`);
    });
    const tx = px + 80 + r.throughput.length * (bw + gap) + 20;
    const c8 = r.throughput.find((t) => t.concurrency === TARGET_CONCURRENCY && t.command === TARGET_COMMAND);
    if (r.nativeCpu && c8) {
      const nc = r.nativeCpu;
      parts.push(`<text x="${tx}" y="${py + 150}" font-size="13" font-weight="bold">CPU per launch, c=${nc.concurrency} ${esc(nc.command)}</text>`);
      parts.push(`<text x="${tx}" y="${py + 168}" font-size="12">native launcher ${nc.cpuUsPerLaunch.toFixed(0)} µs, plugin ${c8.pluginCpuUsPerLaunch.toFixed(0)} µs</text>`);
      parts.push(`<text x="${tx}" y="${py + 186}" font-size="12">= ${(c8.pluginCpuUsPerLaunch / nc.cpuUsPerLaunch).toFixed(2)}x (target &lt;= ${TARGETS.cpuVsNative}x)</text>`);
    }
    if (r.stats) {
      const s = r.stats;
      parts.push(`<text x="${tx}" y="${py + 60}" font-size="13" font-weight="bold">TaskStats cost</text>`);
      parts.push(`<text x="${tx}" y="${py + 80}" font-size="12">${s.tasks} running tasks, a stream each at 1 s</text>`);
      parts.push(`<text x="${tx}" y="${py + 98}" font-size="12">plugin CPU ${s.pluginCpuPct.toFixed(1)} % of a core (target &lt;= ${TARGETS.statsCpuPct} %)</text>`);
      parts.push(`<text x="${tx}" y="${py + 116}" font-size="12">plugin RSS ${s.pluginRssMb.toFixed(0)} MB (target &lt;= ${TARGETS.statsRssMb} MB)</text>`);
    }
    y += bh + 80;
  }
  if (r.targets?.length) {
    parts.push(`<text x="20" y="${y + 16}" font-size="13" font-weight="bold">Targets (issue 16; n/a = not measured in this run, info = not a target)</text>`);
    const fill: Record<string, string> = { PASS: '#080', MISS: '#b00', 'n/a': '#555', info: '#555' };
    r.targets.forEach((t, i) => parts.push(`<text x="20" y="${y + 34 + i * 17}" font-size="10.5" fill="${fill[t.verdict] ?? '#555'}"${t.verdict === 'info' ? ' font-style="italic"' : ''}>${esc(`${t.verdict.padEnd(4)}  ${t.what}`)}</text>`));
    y += 40 + r.targets.length * 17;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 10}" viewBox="0 0 ${W} ${y + 10}" font-family="DejaVu Sans, Arial, sans-serif">\n<rect width="${W}" height="${y + 10}" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}
