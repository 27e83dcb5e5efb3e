/**
 * npm run bench [-- --quick]: launch latency and throughput of the driver,
 * through the real plugin over gRPC as Nomad drives it, side by side with
 * baselines run interleaved in the same invocation (this machine is noisy:
 * read the medians and the ratios, not single numbers).
 *
 * Variants (same static target, which prints CLOCK_MONOTONIC at main()):
 *   grpc     StartTask over gRPC to the plugin: worker pool, cgroup + limits,
 *            pid/ipc/mnt namespaces, /proc, dynamic user, Landlock, FIFOs
 *   native   baseline 1: the project's native launcher called directly, same
 *            isolation, no gRPC, no worker (our floor)
 *   unshare  baseline 2: the official driver's chain (unshare → shim → task)
 *            with a C shim (see shim.c: conservative, no Go start-up cost)
 *   spawn    baseline 3: child_process.spawn of the target, no isolation
 *   bwrap    baseline 4: bubblewrap with pid/ipc namespaces and /proc, if installed
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants as C, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NomadLikeClient, type PreparedTask } from '../src/client/nomad-client';
import { buildUnveilRules } from '../src/main/unveil';
import { INIT_HELPER_PATH, loadNative, PROJECT_ROOT } from '../src/native/binding';

const QUICK = process.argv.includes('--quick');
const LATENCY_N = QUICK ? 30 : 200;
const BURST_N = QUICK ? 200 : 2000;
const CONCURRENCY = [1, 2, 8, 32];
const STATS_TASKS = QUICK ? 100 : 1000;
const UID = 80999;

const now = (): bigint => process.hrtime.bigint();
const us = (ns: bigint | number): number => Number(ns) / 1000;

function buildTool(name: string): string {
  const out = path.join(PROJECT_ROOT, 'build', 'bench', name);
  const src = path.join(__dirname, '..', '..', 'bench', `${name}.c`);
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(path.dirname(out), { recursive: true });
    execFileSync('cc', ['-O2', '-static', '-o', out, src]);
  }
  return out;
}

function stats(xs: number[]): { p50: number; p90: number; p99: number; n: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), n: s.length };
}

interface Sample {
  toExecUs: number;
  replyUs?: number;
  toExitUs?: number;
}

type Variant = { name: string; once(): Promise<Sample> };

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root');
  const target = buildTool('target');
  const shim = buildTool('shim');
  const work = mkdtempSync(path.join(os.tmpdir(), 'exec2-bench-'));
  const nomad = new NomadLikeClient();
  const results: Record<string, unknown> = { quick: QUICK, kernel: os.release(), cpus: os.availableParallelism(), when: new Date().toISOString() };
  try {
    await nomad.startPlugin({ unveil_paths: [`rx:${path.dirname(target)}`] });
    const native = loadNative();
    const rules = buildUnveilRules({
      unveilDefaults: true,
      pluginPaths: [`rx:${path.dirname(target)}`],
      taskPaths: [],
      dirs: { taskDir: work, allocDir: work, secretsDir: work, stdoutPath: '/dev/null', stderrPath: '/dev/null' },
    });
    const statusDir = mkdtempSync('/run/exec2-bench-');
    // Baseline 1 runs in a task cgroup made like the plugin's (one reused, as Nomad reuses them across restarts).
    const cg = nomad.cgroups.createTask('bench', 'native');
    const cgDirs = Object.entries(cg.dirs).filter(([c]) => ['cpu', 'memory', 'freezer', 'cpuset', 'cpuacct', 'unified'].includes(c)).map(([, d]) => d);
    for (const d of cgDirs) mkdirSync(d, { recursive: true });

    const variants: Variant[] = [
      {
        name: 'grpc',
        async once() {
          const t: PreparedTask = nomad.prepareTask({ command: target, cpuMhz: 2500 });
          const t0 = now();
          await nomad.startTask(t);
          const t1 = now();
          await nomad.wait(t.config.id);
          const t2 = now();
          const text = await t.stdout!.waitFor(/^\d+\n/);
          await nomad.destroy(t.config.id);
          nomad.releaseTask(t);
          return { toExecUs: us(BigInt(text.trim()) - t0), replyUs: us(t1 - t0), toExitUs: us(t2 - t0) };
        },
      },
      {
        name: 'native',
        async once() {
          const out = path.join(work, 'native.out');
          const fd = openSync(out, C.O_WRONLY | C.O_CREAT | C.O_TRUNC, 0o666);
          const sd = openSync(statusDir, C.O_RDONLY | C.O_DIRECTORY);
          const v2 = nomad.cgroups.layout.mode === 'v2';
          const cgFd = v2 ? openSync(cgDirs[0]!, C.O_RDONLY | C.O_DIRECTORY) : -1;
          const procs = v2 ? [] : cgDirs.map((d) => openSync(path.join(d, 'cgroup.procs'), C.O_WRONLY));
          const t0 = now();
          const r = native.launch({
            initPath: INIT_HELPER_PATH, cgroupFd: cgFd, cgroupProcsFds: procs, stdoutFd: fd, stderrFd: fd, statusDirFd: sd, netnsFd: -1,
            argv: [target], env: ['PATH=/usr/bin:/bin'], uid: UID, gid: UID, groups: [], cwd: '/', unveil: rules, oomScoreAdj: null,
          });
          for (const x of [fd, sd, ...procs, ...(cgFd >= 0 ? [cgFd] : [])]) closeSync(x);
          await new Promise<void>((res) => native.watchExit(r.pidfd, () => res()));
          const t2 = now();
          return { toExecUs: us(BigInt(readFileSync(out, 'utf8').trim()) - t0), toExitUs: us(t2 - t0) };
        },
      },
      {
        name: 'unshare',
        once: () => timedSpawn('unshare', ['--ipc', '--pid', '--mount-proc', '--fork', '--kill-child=SIGKILL', `--setuid=${UID}`, `--setgid=${UID}`, '--',
          shim, path.join(work, 'status'), ...rules.map((r) => `${r.mode}:${r.path}`), `rwc:${work}`, '--', target]),
      },
      { name: 'spawn', once: () => timedSpawn(target, []) },
    ];
    if (existsSync('/usr/bin/bwrap')) {
      variants.push({ name: 'bwrap', once: () => timedSpawn('bwrap', ['--unshare-pid', '--unshare-ipc', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--uid', String(UID), '--gid', String(UID), '--die-with-parent', target]) });
    }
    chmodWork(work);

    // Latency: round robin so drift and noise hit every variant alike.
    const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
    for (const v of variants) await v.once(); // warm-up
    for (let i = 0; i < LATENCY_N; i++) for (const v of variants) samples.get(v.name)!.push(await v.once());
    const latency: Record<string, unknown> = {};
    for (const [name, xs] of samples) {
      latency[name] = {
        toExec: stats(xs.map((x) => x.toExecUs)),
        ...(xs[0]?.replyUs !== undefined ? { reply: stats(xs.map((x) => x.replyUs!)) } : {}),
        ...(xs[0]?.toExitUs !== undefined ? { toExit: stats(xs.map((x) => x.toExitUs!)) } : {}),
        raw: xs.map((x) => x.toExecUs),
      };
    }
    results.latency = latency;

    // Throughput through gRPC: Nomad's prestart work (dirs, FIFOs, cgroups) happens before StartTask.
    const throughput: Record<string, number> = {};
    for (const conc of CONCURRENCY) {
      const tasks = Array.from({ length: BURST_N }, () => nomad.prepareTask({ command: '/bin/true', cpuMhz: 2500, logsDisabled: false }));
      let next = 0;
      const t0 = now();
      await Promise.all(Array.from({ length: conc }, async () => {
        while (next < tasks.length) {
          const t = tasks[next++]!;
          await nomad.startTask(t);
          await nomad.wait(t.config.id);
          await nomad.destroy(t.config.id);
        }
      }));
      const secs = Number(now() - t0) / 1e9;
      throughput[String(conc)] = BURST_N / secs;
      for (const t of tasks) nomad.releaseTask(t);
      process.stdout.write(`throughput c=${conc}: ${(BURST_N / secs).toFixed(0)} launches/s\n`);
    }
    results.throughput = throughput;

    // TaskStats cost and plugin RSS with many running tasks.
    const running: PreparedTask[] = [];
    for (let i = 0; i < STATS_TASKS; i++) {
      const t = nomad.prepareTask({ command: 'sleep', args: ['1000'] });
      await nomad.startTask(t);
      running.push(t);
    }
    const streams = running.map((t) => nomad.openStats(t.config.id, 1000));
    for (const s of streams) s.on('data', () => undefined).on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 2000));
    const cpu0 = pluginCpuTicks(nomad.plugin.pid);
    const w0 = Date.now();
    await new Promise((r) => setTimeout(r, QUICK ? 3000 : 10_000));
    const cpuPct = (((pluginCpuTicks(nomad.plugin.pid) - cpu0) / 100) / ((Date.now() - w0) / 1000)) * 100;
    const rssMb = pluginRssMb(nomad.plugin.pid);
    for (const s of streams) s.cancel();
    await Promise.all(running.map((t) => nomad.stop(t.config.id, 2000)));
    for (const t of running) {
      await nomad.wait(t.config.id);
      await nomad.destroy(t.config.id);
      nomad.releaseTask(t);
    }
    results.stats = { tasks: STATS_TASKS, pluginCpuPercent: cpuPct, pluginRssMb: rssMb };

    report(results, variants.map((v) => v.name));
    rmSync(statusDir, { recursive: true, force: true });
    nomad.cgroups.removeTask(cg);
  } finally {
    const leftovers = await nomad.cleanup();
    for (const l of leftovers) process.stdout.write(`cleanup: ${l}\n`);
    rmSync(work, { recursive: true, force: true });
  }
}

function chmodWork(dir: string): void {
  execFileSync('chmod', ['0777', dir]);
}

function timedSpawn(cmd: string, args: string[]): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const t2 = now();
      if (code !== 0 || !/^\d+\n$/.test(out)) return reject(new Error(`${cmd} failed (exit ${code}): ${out}`));
      resolve({ toExecUs: us(BigInt(out.trim()) - t0), toExitUs: us(t2 - t0) });
    });
  });
}

function pluginCpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(x[11]) + Number(x[12]);
}

function pluginRssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function report(r: Record<string, unknown>, names: string[]): void {
  const lat = r.latency as Record<string, { toExec: ReturnType<typeof stats>; reply?: ReturnType<typeof stats>; toExit?: ReturnType<typeof stats> }>;
  const base1 = lat.native!.toExec.p50;
  const base2 = lat.unshare!.toExec.p50;
  const lines: string[] = [];
  const f = (n: number): string => n.toFixed(0).padStart(7);
  lines.push(`\ntime to exec (launch requested -> target's main()), µs, n=${lat.native!.toExec.n} each, interleaved`);
  lines.push(`variant       p50     p90     p99   x native  x unshare   reply p50  exit p50`);
  for (const n of names) {
    const l = lat[n]!;
    lines.push(`${n.padEnd(9)} ${f(l.toExec.p50)} ${f(l.toExec.p90)} ${f(l.toExec.p99)}   ${(l.toExec.p50 / base1).toFixed(2).padStart(6)}   ${(l.toExec.p50 / base2).toFixed(2).padStart(7)}   ${l.reply ? f(l.reply.p50) : '      -'}   ${l.toExit ? f(l.toExit.p50) : '      -'}`);
  }
  const tp = r.throughput as Record<string, number>;
  lines.push(`\nthroughput through gRPC (StartTask+WaitTask+DestroyTask of /bin/true, burst ${BURST_N}): ${CONCURRENCY.map((c) => `c=${c} ${tp[String(c)]!.toFixed(0)}/s`).join(', ')}`);
  const st = r.stats as { tasks: number; pluginCpuPercent: number; pluginRssMb: number };
  lines.push(`TaskStats at 1 s for ${st.tasks} running tasks: plugin CPU ${st.pluginCpuPercent.toFixed(1)} %, plugin RSS ${st.pluginRssMb.toFixed(0)} MB`);
  const grpc = lat.grpc!.toExec.p50;
  const target = (ok: boolean, what: string): string => `${ok ? 'PASS' : 'MISS'}  ${what}`;
  lines.push('\ntargets:');
  lines.push(target(grpc <= 2 * base1, `time-to-exec p50 ${grpc.toFixed(0)} µs <= 2 x baseline 1 (${(2 * base1).toFixed(0)} µs)`));
  lines.push(target(base2 / grpc >= 5, `time-to-exec p50 >= 5x faster than baseline 2 (${(base2 / grpc).toFixed(2)}x)`));
  lines.push(target(tp['8']! >= 1000, `>= 1000 launches/s through gRPC at concurrency 8 (${tp['8']!.toFixed(0)}/s)`));
  if (st.tasks >= 1000) lines.push(target(st.pluginRssMb <= 150, `plugin RSS <= 150 MB with 1000 running tasks (${st.pluginRssMb.toFixed(0)} MB)`));
  process.stdout.write(lines.join('\n') + '\n');
  const dir = path.join(__dirname, '..', '..', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify(r, null, 1));
  writeFileSync(path.join(dir, `${stamp}.svg`), svg(lat, tp, names));
  process.stdout.write(`\nraw numbers: bench/results/${stamp}.json, chart: bench/results/${stamp}.svg\n`);
}

/** Box plots of time to exec (log scale) and a throughput bar chart, hand-written SVG. */
function svg(lat: Record<string, { toExec: ReturnType<typeof stats> } & { raw?: number[] }>, tp: Record<string, number>, names: string[]): string {
  const W = 900, H = 420, left = 90, top = 40, plotW = 520, plotH = 300;
  const all = names.flatMap((n) => [lat[n]!.toExec.p50, lat[n]!.toExec.p99]);
  const lo = Math.log10(Math.max(1, Math.min(...all) / 2)), hi = Math.log10(Math.max(...all) * 2);
  const x = (v: number): number => left + ((Math.log10(Math.max(v, 1)) - lo) / (hi - lo)) * plotW;
  const rowH = plotH / names.length;
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14">time to exec, µs (log scale): box p50-p90, whisker to p99</text>`];
  for (let d = Math.ceil(lo); d <= Math.floor(hi); d++) {
    const v = 10 ** d;
    parts.push(`<line x1="${x(v)}" y1="${top}" x2="${x(v)}" y2="${top + plotH}" stroke="#ddd"/><text x="${x(v)}" y="${top + plotH + 15}" text-anchor="middle">${v}</text>`);
  }
  names.forEach((n, i) => {
    const s = lat[n]!.toExec, y = top + i * rowH + rowH / 2;
    parts.push(`<text x="${left - 8}" y="${y + 4}" text-anchor="end">${n}</text>`);
    parts.push(`<line x1="${x(s.p50)}" y1="${y}" x2="${x(s.p99)}" y2="${y}" stroke="#555"/>`);
    parts.push(`<rect x="${x(s.p50)}" y="${y - 10}" width="${Math.max(2, x(s.p90) - x(s.p50))}" height="20" fill="${n === 'grpc' ? '#3a7' : '#69c'}"/>`);
    parts.push(`<text x="${x(s.p99) + 6}" y="${y + 4}">${s.p50.toFixed(0)}</text>`);
  });
  const bx = left + plotW + 60, bw = 40, max = Math.max(...Object.values(tp));
  parts.push(`<text x="${bx}" y="20" font-size="14">launches/s via gRPC</text>`);
  CONCURRENCY.forEach((c, i) => {
    const v = tp[String(c)]!, h = (v / max) * plotH;
    parts.push(`<rect x="${bx + i * (bw + 12)}" y="${top + plotH - h}" width="${bw}" height="${h}" fill="#3a7"/><text x="${bx + i * (bw + 12) + bw / 2}" y="${top + plotH + 15}" text-anchor="middle">c=${c}</text><text x="${bx + i * (bw + 12) + bw / 2}" y="${top + plotH - h - 4}" text-anchor="middle">${v.toFixed(0)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
