/**
 * npm run bench [-- --quick] [-- --profile] [-- --only=latency,first,throughput,stats] [-- --ab-bin=<other tree>/bin/nomad-driver-exec2] [-- --vm]
 *
 * Launch latency, throughput and TaskStats cost of the driver, through the
 * real plugin executable over gRPC as Nomad drives it, side by side with
 * baselines run interleaved (round robin) in the same invocation. See
 * bench/README.md for what each number means.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants as C, existsSync, fchownSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmdirSync, rmSync, write } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchInVms } from './vm';
import { NomadLikeClient, type PreparedTask } from '../src/client/nomad-client';
import type { TaskConfig } from '../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { freePort, httpGet } from '../src/client/net-util';
import { detectCgroupLayout } from '../src/shared/cgroups/detect';
import { killAll, prepareTaskCgroup, readProcs, removeOwnCgroups, resolveTaskCgroup, v1ProcsFiles, writeLimits, type TaskCgroup } from '../src/shared/cgroups/task-cgroup';
import launchInWorker from '../src/workers/launch-worker';
import type { LaunchRequest } from '../src/shared/messages';
import { cpuQuotaUs } from '../src/shared/topology';
import { DEFAULT_PIDS_MAX, DEFAULT_PLUGIN_CONFIG } from '../src/main/config/config';
import { buildUnveilRules, planUnveil } from '../src/shared/unveil';
import { INIT_HELPER_PATH, loadNative, type LaunchSpec, type WaitStatus } from '../src/native/binding';
import { messageOf } from '../src/shared/errors';
import { closeSlot, makeSlots, nextLine, taskConfig, taskEnv, MHZ_PER_CORE, type Slot } from './fixtures';
import { summariseProfiles } from './profile';
import { report, type FirstLaunch, type NativeCpuRow, type Results, type SeriesKey } from './report';
import { buildGoShim, buildTool, TARGET_CFLAGS, cpuTicks, now, percentiles, pool, sleep, Spawner, usSince, vmRssMb, BENCH_BUILD, type GoShimBuild } from './tools';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const PROFILE = args.includes('--profile');
/** --profile alone profiles the throughput bursts; with --only it profiles the parts named (e.g. --only=stats) */
const ONLY_GIVEN = args.some((a) => a.startsWith('--only='));
const ONLY = (args.find((a) => a.startsWith('--only='))?.slice(7).split(',') ?? ['latency', 'first', 'throughput', 'stats']).filter(Boolean);
const ROUNDS = QUICK ? 15 : 150;
const BURST = QUICK ? 200 : 2000;
const CONCURRENCY = PROFILE ? [8] : [1, 2, 8, 32];
const STATS_TASKS = QUICK ? 100 : 1000;
const STATS_WINDOW_MS = QUICK ? 3000 : 10_000;
/** Longer than an RCU grace period here (~10-20 ms), so no launch rides on the previous one's. */
const IDLE_GAP_MS = 50;
/** Freshly started plugins for the first-launch row, one launch (and a second one) each. */
const FIRST_PLUGINS = QUICK ? 3 : 10;
/**
 * --ab-bin=<path to another tree's bin/nomad-driver-exec2>: the first-launch
 * row also starts that plugin, interleaved with this tree's, for a
 * side-by-side before/after on a loaded machine.
 */
const AB_BIN = args.find((a) => a.startsWith('--ab-bin='))?.slice(9) ?? null;
/**
 * --bin=<path to another tree's bin/nomad-driver-exec2>: the long-running
 * plugin of every row is that build (e.g. `--only=throughput` of an older
 * tree, run alternately with this one's, for rows --ab-bin does not cover).
 */
const MAIN_BIN = args.find((a) => a.startsWith('--bin='))?.slice(6) ?? null;
const TRUE = '/bin/true';
/** The throughput row baseline 1's CPU per launch is measured next to (issue 16: c=8, /bin/true). */
const NATIVE_CPU_CONCURRENCY = 8;
const UNSHARE_CG_V2_REASON = 'pure cgroup v2: exec2 clones its chain straight into the task cgroup (CLONE_INTO_CGROUP, no RCU wait), which a cgroup.procs write would not model; the `unshare` row is that chain minus the clone flag';

export type Mode = 'idle' | 'warm';
export type Kind = 'exec' | 'exit';
interface Sample {
  execUs?: number;
  /** exec launches: where the time to exec went, µs per phase (see PHASES in report.ts) */
  phases?: Record<string, number>;
  replyUs?: number;
  exitUs?: number;
  /** grpc only: the same launch timed from the client's StartTask call */
  rpc?: Sample;
}

/** Name of the series that times grpc launches from the client's call. */
const RPC_SERIES = 'grpc+rpc';

/** The plugin's phase timings of one launch (src/shared/messages.ts LaunchTimings), ns. */
type PluginTimings = Record<string, number>;

/**
 * CLOCK_MONOTONIC ns at which the plugin received this task's StartTask and
 * its phase timings, from its debug log line "task started" (process.hrtime,
 * the clock the target reads).
 */
async function startedLine(n: NomadLikeClient, taskId: string): Promise<{ received: bigint; timings: PluginTimings | null }> {
  for (let waited = 0; waited < 2000; waited++) {
    const logs = n.plugin.logs;
    for (let i = logs.length - 1; i >= Math.max(0, logs.length - 200); i--) {
      const j = logs[i]!.json;
      if (j && j['@message'] === 'task started' && j.task_id === taskId && typeof j.received_monotonic_ns === 'string') {
        const t = j.timings_ns;
        return { received: BigInt(j.received_monotonic_ns), timings: t && typeof t === 'object' ? (t as PluginTimings) : null };
      }
    }
    await sleep(1);
  }
  throw new Error(`no "task started" log line with received_monotonic_ns for ${taskId}`);
}

/**
 * A plugin launch split into consecutive phases, µs: the first six add up to
 * StartTask received → the task's first instruction (`probe`, the target's
 * own CLOCK_MONOTONIC stamp); the last three follow it, up to the reply on
 * the plugin's main thread.
 */
export function pluginPhases(t: PluginTimings, received: bigint, probe: bigint): Record<string, number> {
  const us = (ns: number): number => ns / 1000;
  const toProbe = Number(probe - received);
  return {
    plan: us(t.planNs ?? 0),
    handoff: us((t.queueNs ?? 0) - (t.planNs ?? 0)),
    cgroup: us(t.cgroupNs ?? 0),
    prepare: us(t.prepareNs ?? 0),
    setup: us(t.setupNs ?? 0),
    'clone→exec': us(toProbe - (t.cloneAtNs ?? 0)),
    confirm: us((t.totalToExecNs ?? 0) - toProbe),
    finish: us(t.finishNs ?? 0),
    reply: us(t.replyNs ?? 0),
  };
}
interface Variant {
  name: string;
  /** Untimed preparation; returns the timed part. */
  prepare(kind: Kind): () => Promise<Sample>;
}

const log = (s: string): void => void process.stdout.write(`${s}\n`);

/** A task's unveil roots as the plugin resolves them (anchored beneath the task's dirs). */
const rootsFor = (s: Slot) => [s.taskRoot, path.dirname(s.sharedDir)];
/** The unveil rules the plugin builds for a slot's task (defaults plus the bench's build dir). */
const rulesFor = (s: Slot) => planUnveil(buildUnveilRules({
  unveilDefaults: true,
  pluginPaths: [`rx:${BENCH_BUILD}`],
  taskPaths: [],
  dirs: { taskDir: s.taskDir, allocDir: s.sharedDir, secretsDir: s.secretsDir, stdoutPath: s.stdoutPath, stderrPath: s.stderrPath },
}), rootsFor(s)).rules;
/** The limits every bench-made task cgroup gets (the slots' 2,500 MHz and 300 MB). */
const SLOT_LIMITS = { cpuQuotaUs: cpuQuotaUs(2500, MHZ_PER_CORE), cpuShares: 2500, cpusetCpus: '', memoryMax: 300 * 2 ** 20, memoryLow: 0, pidsMax: DEFAULT_PIDS_MAX };

/**
 * Baseline 1's own CPU per launch (issue 16: plugin CPU per launch <= 2x
 * it): the bench's thread calls the addon's launch() with the LaunchSpec the
 * worker would build, as the `native` variant does, then waits for the exit
 * (watchExit reaps pid 1 and closes the pidfd) and removes what the launch
 * made (the status file in the lane's status dir), `launches` times over
 * `lanes` slots. launch() blocks its thread until the exec is confirmed, so
 * the launches themselves run one after another; up to `lanes` tasks are
 * alive at once and their waits overlap, as the plugin row's are. The slots'
 * task cgroups are prepared (made, limits written) before the clock starts,
 * as for `native`. CPU = process.cpuUsage() of the whole bench process (all
 * threads, no children) over the burst: the same accounting as the
 * plugin's utime+stime.
 */
async function nativeCpuBurst(slots: Slot[], launches: number, command: string): Promise<NativeCpuRow> {
  const layout = detectCgroupLayout();
  const native = loadNative();
  const lanes = slots.map((slot) => {
    const cg: TaskCgroup = prepareTaskCgroup(resolveTaskCgroup(layout, slot.cgroup.cpusetCgroup, slot.allocId, slot.name));
    if (cg.mode === 'v1') ownCgroupDirs.push(...cg.created);
    writeLimits(cg, SLOT_LIMITS);
    const statusDir = mkdtempSync('/run/exec2-bench-ncpu-');
    extraDirs.push(statusDir);
    return { slot, cg, statusDir, rules: rulesFor(slot), env: taskEnv(slot) };
  });
  let next = 0, failures = 0, firstError = '';
  await sleep(200);
  const c0 = process.cpuUsage(), w0 = now();
  await Promise.all(lanes.map(async ({ slot, cg, statusDir, rules, env }) => {
    while (next < launches && !aborting) {
      next++;
      const fds: number[] = [];
      const open = (p: string, flags: number): number => {
        const fd = openSync(p, flags);
        fds.push(fd);
        return fd;
      };
      try {
        const out = open(slot.stdoutPath, C.O_WRONLY | C.O_NONBLOCK | C.O_NOFOLLOW | C.O_NOCTTY);
        const err = open(slot.stderrPath, C.O_WRONLY | C.O_NONBLOCK | C.O_NOFOLLOW | C.O_NOCTTY);
        for (const fd of [out, err]) fchownSync(fd, slot.uid, slot.uid);
        const r = native.launch({
          initPath: INIT_HELPER_PATH,
          cgroupFd: cg.mode === 'v2' ? open(cg.dir, 0o10000000 | C.O_DIRECTORY) : -1,
          cgroupProcsFds: v1ProcsFiles(cg).map((f) => open(f, C.O_WRONLY)),
          stdoutFd: out, stderrFd: err,
          statusDirFd: open(statusDir, C.O_RDONLY | C.O_DIRECTORY),
          netnsFd: -1, argv: [command], env, uid: slot.uid, gid: slot.uid, groups: [], cwd: slot.taskRoot, unveil: rules,
          oomScoreAdj: null, capBounding: [], capAmbient: [], scopeAbstractUnixSockets: true,
        });
        for (const fd of fds.splice(0)) closeSync(fd);
        const st = await new Promise<WaitStatus | null>((res) => native.watchExit(r.pidfd, res));
        rmSync(path.join(statusDir, 'status'), { force: true });
        if (!st || st.exitCode !== 0) throw new Error(`native: exit ${st ? st.exitCode : 'unknown'}`);
      } catch (e) {
        failures++;
        firstError ||= messageOf(e);
      } finally {
        for (const fd of fds) closeSync(fd);
      }
    }
  }));
  const seconds = Number(now() - w0) / 1e9;
  const c = process.cpuUsage(c0);
  return {
    concurrency: lanes.length, command, launches, failures, firstError, seconds, perSecond: (launches - failures) / seconds,
    cpuPct: ((c.user + c.system) / 1e6 / seconds) * 100, cpuUsPerLaunch: (c.user + c.system) / launches, sequentialLaunches: true,
  };
}

// ------------------------------------------------------------------ state shared with cleanup

let nomad: NomadLikeClient | null = null;
/** the first-launch row's plugin of the moment, with its slot */
let fresh: { client: NomadLikeClient; slot: Slot | null } | null = null;
/** --ab-bin: the other build's long-running plugin (latency row grpc-B) and its slot */
let abClient: NomadLikeClient | null = null;
let abSlot: Slot | null = null;
let spawner: Spawner | null = null;
const live = new Set<string>();
const allSlots: Slot[] = [];
const extraDirs: string[] = [];
const ownCgroupDirs: string[] = [];
let cleaning: Promise<void> | null = null;
let aborting = false;

async function cleanup(): Promise<void> {
  if (cleaning) return cleaning;
  cleaning = (async () => {
    const n = nomad;
    const leftovers: string[] = [];
    if (abClient) {
      if (abSlot) closeSlot(abSlot);
      leftovers.push(...(await abClient.cleanup().catch((e: Error) => [e.message])));
      abClient = null;
    }
    if (fresh) {
      if (fresh.slot) closeSlot(fresh.slot);
      leftovers.push(...(await fresh.client.cleanup().catch((e: Error) => [e.message])));
      fresh = null;
    }
    if (n?.plugin && !n.plugin.exited && live.size) {
      await pool([...live], 16, async (id) => {
        await n.stop(id, 0).catch(() => undefined);
        await n.destroy(id, true).catch(() => undefined);
      });
    }
    const layout = detectCgroupLayout();
    for (const s of allSlots) {
      try {
        const cg = resolveTaskCgroup(layout, s.cgroup.cpusetCgroup, s.allocId, s.name);
        killAll(cg);
        if (cg.mode === 'v1' && cg.dirs.cpuacct && existsSync(cg.dirs.cpuacct)) ownCgroupDirs.push(cg.dirs.cpuacct);
      } catch {
        // fixture never finished
      }
      closeSlot(s);
    }
    spawner?.kill();
    await spawner?.close();
    for (const d of ownCgroupDirs.reverse()) {
      for (let i = 0; i < 50 && existsSync(d); i++) {
        for (const pid of readProcs(d)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        try { rmdirSync(d); } catch { await sleep(20); }
      }
      if (existsSync(d)) leftovers.push(`${d}: still busy`);
    }
    for (const d of extraDirs) rmSync(d, { recursive: true, force: true });
    if (n) leftovers.push(...(await n.cleanup()));
    for (const l of leftovers) log(`cleanup: could not remove ${l}`);
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (aborting) return;
    aborting = true;
    log(`\n${sig}: stopping tasks, removing fixtures and the plugin...`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (cgroups, namespaces, task users)');
  const target = buildTool('target', true, TARGET_CFLAGS);
  const shim = buildTool('shim');
  const spawnerBin = buildTool('spawner', false);
  // Baseline 2g, only for the latency rows: the Go shim (installs Debian's Go packages when missing).
  const goShim: GoShimBuild = ONLY.includes('latency') && !PROFILE ? buildGoShim({ install: true, log }) : { ok: false, reason: 'latency rows not run' };
  if (!goShim.ok && ONLY.includes('latency') && !PROFILE) log(`SKIP: exec2 chain (Go shim, faithful): ${goShim.reason}`);
  const bwrap = ['/usr/bin/bwrap', '/bin/bwrap'].find((p) => existsSync(p)) ?? null;
  const layout = detectCgroupLayout();
  const native = loadNative();
  const metricsPort = await freePort();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(path.dirname(BENCH_BUILD), '..', 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const profDir = path.join(resultsDir, `prof-${stamp}`);

  nomad = new NomadLikeClient();
  const results: Results = {
    meta: {
      when: new Date().toISOString(), quick: QUICK, profile: PROFILE, kernel: os.release(), cpus: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model ?? '', node: process.version, cgroupMode: layout.mode, landlockAbi: native.landlockAbi().abi,
      rounds: ROUNDS, burst: BURST, idleGapMs: IDLE_GAP_MS, bwrap: bwrap !== null,
      spawnMethod: 'unshare, unshare-go and bwrap: posix_spawn from bench/spawner.c (Node is not forked); spawn: child_process.spawn (libuv forks Node)',
      goShim: goShim.ok ? { available: true, bytes: goShim.bytes, goVersion: goShim.goVersion } : { available: false, reason: goShim.reason },
      // which parts run (a target of a part not run is printed n/a with that reason)
      parts: {
        latency: ONLY.includes('latency') && (!PROFILE || ONLY_GIVEN), first: ONLY.includes('first') && !PROFILE,
        throughput: ONLY.includes('throughput') || (PROFILE && !ONLY_GIVEN), stats: ONLY.includes('stats') && (!PROFILE || ONLY_GIVEN),
      },
    },
    latency: {},
    throughput: [],
    stats: null,
  };

  // --cpu-prof is refused in NODE_OPTIONS; bin/nomad-driver-exec2 passes EXEC2_NODE_FLAGS to node.
  const pluginEnv: NodeJS.ProcessEnv = PROFILE ? { EXEC2_NODE_FLAGS: `--cpu-prof --cpu-prof-dir=${profDir}` } : {};
  await nomad.startPlugin({ unveil_paths: [`rx:${BENCH_BUILD}`], metrics_address: `127.0.0.1:${metricsPort}` }, MAIN_BIN ? { env: pluginEnv, bin: MAIN_BIN } : { env: pluginEnv });
  if (MAIN_BIN) log(`plugin build: ${MAIN_BIN}`);
  const pluginPid = nomad.plugin.pid;
  await sleep(500);
  results.meta.pluginRssAtStartMb = vmRssMb(pluginPid);
  log(`plugin pid ${pluginPid}, cgroups ${layout.mode}, Landlock ABI ${String(results.meta.landlockAbi)}, ${os.availableParallelism()} CPUs${PROFILE ? `, profiling into ${profDir}` : ''}`);

  // Warm cgroups for the "warm" mode: two bench-made v1 memory cgroups the
  // helper moves itself between (nested below our own memory cgroup).
  let warmFiles: [string, string] | null = null;
  if ((layout.mode === 'v1' || layout.mode === 'hybrid') && layout.v1.get('memory')) {
    const base = path.join(layout.v1.get('memory')!, nomad.cgroups.parent);
    const a = path.join(base, 'bench-warm-a'), b = path.join(base, 'bench-warm-b');
    for (const d of [a, b]) {
      mkdirSync(d);
      ownCgroupDirs.push(d);
    }
    warmFiles = [path.join(a, 'cgroup.procs'), path.join(b, 'cgroup.procs')];
  }
  spawner = new Spawner(spawnerBin, warmFiles);
  const n = nomad;
  const sp = spawner;
  /** StartTask with a TaskConfig made by the fixtures (the client only reads .config). */
  const start = (cfg: TaskConfig) => n.startTask({ config: cfg } as PreparedTask);

  if (ONLY.includes('latency') && (!PROFILE || ONLY_GIVEN)) {
    // ---------------------------------------------------------------- variants
    const [gSlot, nSlot, ncSlot, uSlot, iSlot, ugSlot, npSlot, ucSlot] = makeSlots(n, 8, 'lat', { fifoOwner: 'task' });
    allSlots.push(gSlot!, nSlot!, ncSlot!, uSlot!, iSlot!, ugSlot!, npSlot!, ucSlot!);
    const statusDir = mkdtempSync('/run/exec2-bench-status-');
    extraDirs.push(statusDir);

    /** StartTask through a plugin over gRPC; `withRpc`: also the same launch timed from the client's call (grpc+rpc). */
    const grpcVariant = (name: string, client: NomadLikeClient, slot: Slot, withRpc: boolean): Variant => ({
      name,
      prepare(kind) {
        const cfg = taskConfig(slot, kind === 'exec' ? target : TRUE);
        return async () => {
          live.add(cfg.id);
          const t0 = now();
          await client.startTask({ config: cfg } as PreparedTask);
          const t1 = now();
          await client.wait(cfg.id);
          const t2 = now();
          const line = kind === 'exec' ? await nextLine(slot) : '';
          const { received, timings } = await startedLine(client, cfg.id);
          await client.destroy(cfg.id);
          live.delete(cfg.id);
          // grpc: from the plugin's receipt of StartTask, like every other variant's
          // t0 (its launcher has the request in hand); grpc+rpc: from the client's call.
          const viaPlugin: Sample = { exitUs: usSince(received, t2) };
          const viaRpc: Sample = { replyUs: usSince(t0, t1), exitUs: usSince(t0, t2) };
          if (kind === 'exec') {
            viaPlugin.execUs = usSince(received, BigInt(line));
            viaRpc.execUs = usSince(t0, BigInt(line));
            if (timings) viaPlugin.phases = pluginPhases(timings, received, BigInt(line));
          }
          return withRpc ? { ...viaPlugin, rpc: viaRpc } : viaPlugin;
        };
      },
    });
    const grpc = grpcVariant('grpc', n, gSlot!, true);
    // --ab-bin: the other build's plugin, launched in the same round robin ("grpc-B")
    let grpcB: Variant | null = null;
    if (AB_BIN) {
      abClient = new NomadLikeClient();
      await abClient.startPlugin({ unveil_paths: [`rx:${BENCH_BUILD}`] }, { bin: AB_BIN });
      const [bSlot] = makeSlots(abClient, 1, 'latB', { fifoOwner: 'task' });
      abSlot = bSlot!;
      grpcB = grpcVariant('grpc-B', abClient, bSlot!, false);
    }

    /**
     * v1/hybrid diagnostic "native-primed": a cgroup.procs write of a pid
     * that cannot exist (above the largest pid_max) takes the same global
     * lock as a join, so it starts the RCU grace period a lone join waits
     * for, then fails with ESRCH having moved nothing. Issued from libuv's
     * thread pool PRIME_LEAD_MS before launch() (standing for the plan,
     * hand-off and worker preparation a real launch does first), it shows
     * what overlapping the wait with that work would save.
     */
    const PRIME_LEAD_MS = 2;
    const ownMemory = (() => {
      const mount = layout.v1.get('memory');
      const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes('memory'));
      return mount && line ? path.join(mount, line.split(':')[2] ?? '', 'cgroup.procs') : null;
    })();
    const primeFd = ownMemory && (layout.mode === 'v1' || layout.mode === 'hybrid') ? openSync(ownMemory, C.O_WRONLY) : -1;
    const prime = (): void => write(primeFd, '4194305', () => undefined);
    /** Baseline 1: the addon's launch() on this thread, with what the worker would hand it. */
    const nativeVariant = (name: string, slot: Slot, joinCgroup: boolean, primed = false): Variant => {
      const cg: TaskCgroup = prepareTaskCgroup(resolveTaskCgroup(layout, slot.cgroup.cpusetCgroup, slot.allocId, slot.name));
      if (cg.mode === 'v1') ownCgroupDirs.push(...cg.created);
      writeLimits(cg, SLOT_LIMITS);
      const rules = rulesFor(slot);
      const env = taskEnv(slot);
      return {
        name,
        prepare(kind) {
          const fds: number[] = [];
          const open = (p: string, flags: number): number => {
            const fd = openSync(p, flags);
            fds.push(fd);
            return fd;
          };
          const out = open(slot.stdoutPath, C.O_WRONLY | C.O_NONBLOCK | C.O_NOFOLLOW | C.O_NOCTTY);
          const err = open(slot.stderrPath, C.O_WRONLY | C.O_NONBLOCK | C.O_NOFOLLOW | C.O_NOCTTY);
          for (const fd of [out, err]) fchownSync(fd, slot.uid, slot.uid);
          const spec: LaunchSpec = {
            initPath: INIT_HELPER_PATH,
            cgroupFd: joinCgroup && cg.mode === 'v2' ? open(cg.dir, 0o10000000 | C.O_DIRECTORY) : -1,
            cgroupProcsFds: joinCgroup ? v1ProcsFiles(cg).map((f) => open(f, C.O_WRONLY)) : [],
            stdoutFd: out,
            stderrFd: err,
            statusDirFd: open(statusDir, C.O_RDONLY | C.O_DIRECTORY),
            netnsFd: -1,
            argv: [kind === 'exec' ? target : TRUE],
            env,
            uid: slot.uid,
            gid: slot.uid,
            groups: [],
            cwd: slot.taskRoot,
            unveil: rules,
            oomScoreAdj: null,
            capBounding: [],
            capAmbient: [],
            scopeAbstractUnixSockets: true,
          };
          return async () => {
            if (primed) {
              prime();
              await sleep(PRIME_LEAD_MS);
            }
            const t0 = now();
            const r = native.launch(spec);
            for (const fd of fds) closeSync(fd);
            await new Promise<void>((res) => native.watchExit(r.pidfd, () => res()));
            const t2 = now();
            if (kind === 'exit') return { exitUs: usSince(t0, t2) };
            const probe = BigInt(await nextLine(slot));
            return { execUs: usSince(t0, probe), exitUs: usSince(t0, t2), phases: { setup: usSince(t0, r.tCloneNs), 'clone→exec': usSince(r.tCloneNs, probe) } };
          };
        },
      };
    };

    /**
     * Diagnostic: the worker's whole launch function (cgroup limits, FIFO
     * opens, status dir, the addon) called on this thread with the request
     * the plugin's main thread would send. grpc minus inline = gRPC, the
     * plugin's main thread and the hop to a pool thread.
     */
    const inline: Variant = {
      name: 'inline',
      prepare(kind) {
        const slot = iSlot!;
        const statusDirFor = path.join(statusDir, `inline-${Date.now()}-${Math.random().toString(36).slice(2)}`);
        const req: LaunchRequest = {
          kind: 'launch',
          taskId: 'inline',
          user: { name: `nomad-${slot.uid}`, resolved: { uid: slot.uid, gid: slot.uid, groups: [], home: '/nonexistent' } },
          cgroup: resolveTaskCgroup(layout, slot.cgroup.cpusetCgroup, slot.allocId, slot.name),
          limits: SLOT_LIMITS,
          stdoutPath: slot.stdoutPath,
          stderrPath: slot.stderrPath,
          chownFifos: true,
          statusDir: statusDirFor,
          netnsPath: null,
          // the host's /tmp and no masks: the bench's slots are not a Nomad client's layout
          tmp: null,
          masks: [],
          untrustedRoots: rootsFor(slot),
          volumes: [],
          taskRoot: slot.taskRoot,
          argv: [kind === 'exec' ? target : TRUE],
          env: { ...slot.env, TMPDIR: path.join(slot.taskRoot, 'tmp') },
          cwd: slot.taskRoot,
          cwdBeneath: -1,
          unveil: rulesFor(slot),
          oomScoreAdj: null,
          initPath: INIT_HELPER_PATH,
          caps: { root: { bounding: DEFAULT_PLUGIN_CONFIG.allowCaps, ambient: [] }, user: { bounding: [], ambient: [] } },
          scopeAbstractUnixSockets: true,
          dynamicUser: true,
          receivedNs: '0',
        };
        return async () => {
          const t0 = now();
          const reply = launchInWorker({ ...req, receivedNs: t0.toString() });
          if (!reply.ok) throw new Error(`inline launch failed: ${reply.message}`);
          await new Promise<void>((res) => native.watchExit(reply.pidfd, () => res()));
          const t2 = now();
          const line = kind === 'exec' ? await nextLine(slot) : '';
          removeOwnCgroups(reply.cgroup);
          rmSync(statusDirFor, { recursive: true, force: true });
          if (kind === 'exit') return { exitUs: usSince(t0, t2) };
          return { execUs: usSince(t0, BigInt(line)), exitUs: usSince(t0, t2) };
        };
      },
    };

    /**
     * Baseline 2 (C shim, "exec2's chain, best case") and 2g (Go shim,
     * "exec2 chain (Go shim, faithful)"): unshare -> shim -> task, spec
     * §7.4-7.5, posix_spawn'd by the helper. Both get the same rules; the
     * shim's own argv is [subcommand] true <fifos> <rules> -- <task>.
     * `joinProcs` (diagnostic `unshare-cg`): cgroup.procs files the helper
     * opens as root and hands down as fds 3, 4, ...; the C shim writes
     * itself to each (`--join-fd=N`) before it starts the task.
     */
    const unshareVariant = (name: string, slot: Slot, shimArgv: string[], joinProcs: string[] = []): Variant => {
      const rules = rulesFor(slot).filter((r) => existsSync(r.path)).map((r) => `${r.mode}:${r.path}`);
      const joins = joinProcs.map((_, k) => `--join-fd=${3 + k}`);
      return {
        name,
        prepare(kind) {
          const argv = ['/usr/bin/unshare', '--ipc', '--pid', '--mount-proc', '--fork', '--kill-child=SIGKILL', `--setuid=${slot.uid}`, `--setgid=${slot.uid}`, '--',
            ...shimArgv, ...joins, 'true', slot.stdoutPath, slot.stderrPath, ...rules, '--', kind === 'exec' ? target : TRUE];
          const env = taskEnv(slot);
          return async () => {
            const r = await sp.spawn(argv, { stdout: 'null', cwd: slot.taskRoot, env, openWrite: joinProcs });
            if (r.status !== 0) throw new Error(`${name} chain failed: wait status ${r.status}`);
            if (kind === 'exit') return { exitUs: usSince(r.t0, r.t2) };
            return { execUs: usSince(r.t0, BigInt(await nextLine(slot))), exitUs: usSince(r.t0, r.t2) };
          };
        },
      };
    };
    const unshare = unshareVariant('unshare', uSlot!, [shim]);
    /**
     * Diagnostic `unshare-cg` (v1/hybrid): the C-shim chain joining the same
     * cgroups the driver's task joins (the slot's task cgroup, made by the
     * bench below its own cgroup, with the driver's limits), i.e. what
     * exec2's chain would pay on a v1 host. On pure v2 it is left out: exec2
     * clones its chain straight into the cgroup there (CLONE_INTO_CGROUP, no
     * lock, no RCU wait), which a cgroup.procs write would not model.
     */
    let unshareCg: Variant | null = null;
    if (layout.mode === 'v1' || layout.mode === 'hybrid') {
      const cg: TaskCgroup = prepareTaskCgroup(resolveTaskCgroup(layout, ucSlot!.cgroup.cpusetCgroup, ucSlot!.allocId, ucSlot!.name));
      if (cg.mode === 'v1') ownCgroupDirs.push(...cg.created);
      writeLimits(cg, SLOT_LIMITS);
      unshareCg = unshareVariant('unshare-cg', ucSlot!, [shim], v1ProcsFiles(cg));
      results.meta.unshareCg = { available: true, joins: v1ProcsFiles(cg).length };
    } else {
      results.meta.unshareCg = { available: false, reason: UNSHARE_CG_V2_REASON };
      log(`SKIP: unshare-cg: ${UNSHARE_CG_V2_REASON}`);
    }

    const nodeSpawn: Variant = {
      name: 'spawn',
      prepare(kind) {
        return () => new Promise<Sample>((resolve, reject) => {
          const t0 = now();
          const child = spawn(kind === 'exec' ? target : TRUE, [], { stdio: ['ignore', kind === 'exec' ? 'pipe' : 'ignore', 'ignore'] });
          let out = '';
          child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
          child.on('error', reject);
          let t2 = 0n;
          child.on('exit', () => void (t2 = now()));
          // 'close' comes after both 'exit' and the end of stdout
          child.on('close', (code) => {
            if (code !== 0) return reject(new Error(`spawn: exit ${code}`));
            if (kind === 'exit') return resolve({ exitUs: usSince(t0, t2) });
            resolve({ execUs: usSince(t0, BigInt(out.trim())), exitUs: usSince(t0, t2) });
          });
        });
      },
    };

    const bwrapVariant: Variant = {
      name: 'bwrap',
      prepare(kind) {
        const argv = [bwrap!, '--unshare-user', '--uid', String(uSlot!.uid), '--gid', String(uSlot!.uid), '--unshare-pid', '--unshare-ipc',
          '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--die-with-parent', kind === 'exec' ? target : TRUE];
        return async () => {
          const r = await sp.spawn(argv, { stdout: 'pipe', env: ['PATH=/usr/bin:/bin'] });
          if (r.status !== 0) throw new Error(`bwrap failed: wait status ${r.status}`);
          return kind === 'exit' ? { exitUs: usSince(r.t0, r.t2) } : { execUs: usSince(r.t0, BigInt(r.output)), exitUs: usSince(r.t0, r.t2) };
        };
      },
    };

    const variants: Variant[] = [grpc, ...(grpcB ? [grpcB] : []), nativeVariant('native', nSlot!, true), unshare, ...(unshareCg ? [unshareCg] : [])];
    // The re-executed binary is the shim, as in exec2: `<binary> exec2-shim ...`.
    if (goShim.ok) variants.push(unshareVariant('unshare-go', ugSlot!, [goShim.path, 'exec2-shim']));
    variants.push(nodeSpawn);
    if (bwrap) variants.push(bwrapVariant);
    variants.push(nativeVariant('native-nocg', ncSlot!, false), inline);
    if (primeFd >= 0) variants.push(nativeVariant('native-primed', npSlot!, true, true));

    // ---------------------------------------------------------------- latency loop
    const series = new Map<string, number[]>();
    /** "variant|mode" -> phase -> samples (µs) */
    const phaseSeries = new Map<string, Map<string, number[]>>();
    const pushPhases = (variant: string, mode: Mode, ph: Record<string, number> | undefined): void => {
      if (!ph) return;
      const k = `${variant}|${mode}`;
      if (!phaseSeries.has(k)) phaseSeries.set(k, new Map());
      const m = phaseSeries.get(k)!;
      for (const [name, v] of Object.entries(ph)) {
        if (!m.has(name)) m.set(name, []);
        m.get(name)!.push(v);
      }
    };
    const push = (key: SeriesKey, v: number | undefined): void => {
      if (v === undefined) return;
      const k = `${key.variant}|${key.metric}|${key.mode}`;
      if (!series.has(k)) series.set(k, []);
      series.get(k)!.push(v);
    };
    const once = async (v: Variant, kind: Kind, mode: Mode): Promise<Sample> => {
      if (process.env.BENCH_DEBUG) log(`  ${v.name} ${kind} ${mode}`);
      const go = v.prepare(kind);
      if (mode === 'idle') await sleep(IDLE_GAP_MS);
      else await sp.warm();
      return go();
    };
    log(`latency: ${ROUNDS} rounds x ${variants.length} variants x {exec, exit} x {idle, warm}, round robin`);
    for (const v of variants) for (const k of ['exec', 'exit'] as const) await once(v, k, 'idle'); // warm-up, not recorded
    const t0 = Date.now();
    for (let i = 0; i < ROUNDS && !aborting; i++) {
      for (const v of variants) {
        for (const mode of ['idle', 'warm'] as const) {
          const e = await once(v, 'exec', mode);
          const x = await once(v, 'exit', mode);
          pushPhases(v.name, mode, e.phases);
          for (const [name, ex, ox] of [[v.name, e, x], [RPC_SERIES, e.rpc, x.rpc]] as const) {
            if (!ex || !ox) continue;
            push({ variant: name, metric: 'exec', mode }, ex.execUs);
            push({ variant: name, metric: 'reply', mode }, ex.replyUs);
            push({ variant: name, metric: 'exit', mode }, ox.exitUs);
          }
        }
      }
      if ((i + 1) % Math.max(1, Math.floor(ROUNDS / 5)) === 0) log(`  round ${i + 1}/${ROUNDS} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
    for (const [k, xs] of series) results.latency[k] = { ...percentiles(xs), raw: xs.map((x) => Math.round(x)) };
    results.phases = {};
    for (const [k, m] of phaseSeries) results.phases[k] = Object.fromEntries([...m].map(([name, xs]) => [name, percentiles(xs)]));
    results.variants = variants.flatMap((v) => (v === grpc ? [v.name, RPC_SERIES] : [v.name]));
  }

  if (ONLY.includes('first') && !PROFILE && !aborting) {
    // ---------------------------------------------------------------- first launch of a fresh plugin
    // What `run` prints and what the first task after an agent restart waits:
    // the plugin process is new, StartTask follows SetConfig at once (the
    // slot, Nomad's prestart work, is made before the plugin starts).
    log(`first launch: ${FIRST_PLUGINS} freshly started plugins${AB_BIN ? ` of this tree and as many of ${AB_BIN}, interleaved` : ''}, one StartTask each right after SetConfig`);
    const rows = [{ label: 'this tree', bin: undefined as string | undefined }, ...(AB_BIN ? [{ label: 'B', bin: AB_BIN }] : [])].map((r) => ({
      ...r, exec: [] as number[], rpc: [] as number[], second: [] as number[], gaps: [] as number[], phases: new Map<string, number[]>(),
    }));
    for (let i = 0; i < FIRST_PLUGINS && !aborting; i++) {
      for (const row of rows) {
        const client = new NomadLikeClient();
        fresh = { client, slot: null };
        const [slot] = makeSlots(client, 1, 'first', { fifoOwner: 'task' });
        fresh.slot = slot!;
        await client.startPlugin({ unveil_paths: [`rx:${BENCH_BUILD}`] }, row.bin ? { bin: row.bin } : {});
        const configured = now();
        const launchOnce = async (): Promise<{ exec: number; rpc: number; phases: Record<string, number> | null }> => {
          const cfg = taskConfig(slot!, target);
          const t0 = now();
          await client.startTask({ config: cfg } as PreparedTask);
          await client.wait(cfg.id);
          const probe = BigInt(await nextLine(slot!));
          const { received, timings } = await startedLine(client, cfg.id);
          await client.destroy(cfg.id);
          return { exec: usSince(received, probe), rpc: usSince(t0, probe), phases: timings ? pluginPhases(timings, received, probe) : null };
        };
        row.gaps.push(usSince(configured, now()) / 1000);
        const a = await launchOnce();
        row.exec.push(a.exec);
        row.rpc.push(a.rpc);
        for (const [k, v] of Object.entries(a.phases ?? {})) (row.phases.get(k) ?? row.phases.set(k, []).get(k)!).push(v);
        await sleep(IDLE_GAP_MS);
        row.second.push((await launchOnce()).exec);
        closeSlot(slot!);
        const left = await client.cleanup();
        fresh = null;
        for (const l of left) log(`cleanup: could not remove ${l}`);
      }
    }
    const withRaw = (xs: number[]) => ({ ...percentiles(xs), raw: xs.map((x) => Math.round(x)) });
    const firstOf = (row: (typeof rows)[number]): FirstLaunch => ({
      plugins: row.exec.length, exec: withRaw(row.exec), rpc: withRaw(row.rpc), second: withRaw(row.second),
      phases: Object.fromEntries([...row.phases].map(([k, xs]) => [k, percentiles(xs)])), gapMs: percentiles(row.gaps).p50,
    });
    if (rows[0]!.exec.length) results.first = firstOf(rows[0]!);
    if (rows[1]?.exec.length) results.firstB = { ...firstOf(rows[1]), bin: AB_BIN! };
  }

  if (ONLY.includes('throughput') || (PROFILE && !ONLY_GIVEN)) {
    // ---------------------------------------------------------------- throughput
    const maxC = Math.max(...CONCURRENCY);
    const slots = makeSlots(n, maxC, 'tp');
    allSlots.push(...slots);
    // baseline 1's CPU burst gets slots of its own: it prepares their task cgroups as `native` does
    const nativeCpuSlots = makeSlots(n, NATIVE_CPU_CONCURRENCY, 'ncpu');
    allSlots.push(...nativeCpuSlots);
    const scrape = async (): Promise<Record<string, { sum: number; count: number }>> => {
      const body = (await httpGet(`http://127.0.0.1:${metricsPort}/metrics`)).body;
      const out: Record<string, { sum: number; count: number }> = {};
      for (const m of body.matchAll(/^exec2_launch_duration_seconds_(sum|count)\{phase="(\w+)"\} (\S+)$/gm)) {
        const o = (out[m[2]!] ??= { sum: 0, count: 0 });
        o[m[1] as 'sum' | 'count'] = Number(m[3]);
      }
      return out;
    };
    // /bin/true at every concurrency, plus the static target at c=8: /bin/true's
    // dynamic start-up is the task's own cost and no launcher can remove it.
    const runs: Array<{ conc: number; command: string }> = [...CONCURRENCY.map((conc) => ({ conc, command: TRUE })), ...(PROFILE ? [] : [{ conc: 8, command: target }])];
    for (const { conc, command } of runs) {
      if (aborting) break;
      await sleep(200);
      const m0 = await scrape();
      const c0 = cpuTicks(pluginPid), b0 = process.cpuUsage(), w0 = now();
      let next = 0, failures = 0;
      let firstError = '';
      await Promise.all(slots.slice(0, conc).map(async (slot) => {
        while (next < BURST && !aborting) {
          next++;
          const cfg = taskConfig(slot, command);
          live.add(cfg.id);
          try {
            await start(cfg);
            const r = await n.wait(cfg.id);
            if (r.result.exitCode !== 0 || r.err) throw new Error(`exit ${r.result.exitCode} ${r.err}`);
          } catch (err) {
            failures++;
            firstError ||= (err as Error).message;
          }
          await n.destroy(cfg.id).catch(() => undefined);
          live.delete(cfg.id);
          if (command === target) slot.lines.length = 0;
        }
      }));
      const secs = Number(now() - w0) / 1e9;
      const pluginCpuS = (cpuTicks(pluginPid) - c0) / 100;
      const b = process.cpuUsage(b0);
      const m1 = await scrape();
      const phasesUs: Record<string, number> = {};
      for (const [ph, v] of Object.entries(m1)) {
        const dc = v.count - (m0[ph]?.count ?? 0);
        if (dc > 0) phasesUs[ph] = ((v.sum - (m0[ph]?.sum ?? 0)) / dc) * 1e6;
      }
      const row = {
        concurrency: conc, command: command === TRUE ? TRUE : 'target (static)', launches: BURST, failures, firstError, seconds: secs, perSecond: (BURST - failures) / secs,
        pluginCpuPct: (pluginCpuS / secs) * 100, benchCpuPct: ((b.user + b.system) / 1e6 / secs) * 100,
        pluginCpuUsPerLaunch: (pluginCpuS * 1e6) / BURST, phasesUs, pluginRssAfterMb: vmRssMb(pluginPid),
      };
      results.throughput.push(row);
      log(`throughput c=${conc} ${row.command}: ${row.perSecond.toFixed(0)} launches/s (${failures} failed${firstError ? `: ${firstError}` : ''}), plugin CPU ${row.pluginCpuPct.toFixed(0)} %, bench CPU ${row.benchCpuPct.toFixed(0)} %, plugin RSS after ${row.pluginRssAfterMb.toFixed(0)} MB`);
      if (conc === NATIVE_CPU_CONCURRENCY && command === TRUE && !aborting) {
        // Baseline 1's own CPU per launch, in the same run, right after the plugin row it is compared with.
        const nc = await nativeCpuBurst(nativeCpuSlots, BURST, TRUE);
        results.nativeCpu = nc;
        log(`native CPU c=${nc.concurrency} ${TRUE}: ${nc.cpuUsPerLaunch.toFixed(0)} µs CPU per launch (${nc.cpuPct.toFixed(0)} % of a core), ${nc.perSecond.toFixed(0)} launches/s (${nc.failures} failed${nc.firstError ? `: ${nc.firstError}` : ''}; launch() calls sequential on one thread)`);
      }
    }
  }

  if (ONLY.includes('stats') && (!PROFILE || ONLY_GIVEN) && !aborting) {
    // ---------------------------------------------------------------- TaskStats cost
    log(`stats: preparing ${STATS_TASKS} tasks`);
    const slots = makeSlots(n, STATS_TASKS, 'st');
    allSlots.push(...slots);
    const rssBefore = vmRssMb(pluginPid);
    const ids: string[] = [];
    const ts = now();
    await pool(slots, 8, async (slot) => {
      const cfg = taskConfig(slot, 'sleep', ['1000']);
      live.add(cfg.id);
      await start(cfg);
      ids.push(cfg.id);
    });
    const startSecs = Number(now() - ts) / 1e9;
    log(`stats: ${ids.length} tasks running (started in ${startSecs.toFixed(1)} s); a TaskStats stream each at 1 s`);
    const rssTasks = vmRssMb(pluginPid);
    // Nomad holds a WaitTask call for every running task (its handle's wait
    // loop), so the RSS judged includes them: grpc-js keeps each pending call's
    // http2 stream (~10 KB each, bench/grpc-baseline.ts).
    const waits = ids.map((id) => n.wait(id).catch(() => undefined));
    await sleep(1000);
    const rssWaits = vmRssMb(pluginPid);
    let messages = 0, streamErrors = 0;
    const streams = ids.map((id) => n.openStats(id, 1000).on('data', () => void messages++).on('error', () => void streamErrors++));
    await sleep(2000);
    const c0 = cpuTicks(pluginPid), m0 = messages, w0 = now();
    await sleep(STATS_WINDOW_MS);
    const secs = Number(now() - w0) / 1e9;
    const cpuPct = ((cpuTicks(pluginPid) - c0) / 100 / secs) * 100;
    const perSec = (messages - m0) / secs;
    const rss = vmRssMb(pluginPid);
    // VmRSS = anonymous memory (heaps, malloc) + file pages mapped from disk,
    // mostly /usr/bin/node's own text and data, shared with every other node process
    const rssSplit = /RssAnon:\s+(\d+) kB[\s\S]*RssFile:\s+(\d+) kB/.exec(readFileSync(`/proc/${pluginPid}/status`, 'utf8'));
    const rssAnonMb = Number(rssSplit?.[1] ?? NaN) / 1024, rssFileMb = Number(rssSplit?.[2] ?? NaN) / 1024;
    const errorsBeforeCancel = streamErrors;
    for (const s of streams) s.cancel();
    const tstop = now();
    await pool(ids, 16, async (id) => {
      await n.stop(id, 2000);
      await n.wait(id);
      await n.destroy(id);
      live.delete(id);
    });
    await Promise.all(waits);
    const stopSecs = Number(now() - tstop) / 1e9;
    // the extra RSS figures ride along in the JSON (report.ts prints the fields it knows)
    const statsRow = {
      tasks: ids.length, windowS: secs, pluginCpuPct: cpuPct, pluginRssMb: rss, pluginRssBeforeMb: rssBefore, pluginRssTasksMb: rssTasks,
      pluginRssWaitsMb: rssWaits, pluginRssAnonMb: rssAnonMb, pluginRssFileMb: rssFileMb, statsPerSecond: perSec, streamErrors: errorsBeforeCancel, startSecs, stopSecs,
    };
    results.stats = statsRow;
    log(`stats: plugin CPU ${cpuPct.toFixed(1)} %, RSS ${rss.toFixed(0)} MB (anon ${rssAnonMb.toFixed(0)} + file ${rssFileMb.toFixed(0)}; ${rssBefore.toFixed(0)} MB before the tasks, ${rssTasks.toFixed(0)} with them, ${rssWaits.toFixed(0)} with a WaitTask pending each), ${perSec.toFixed(0)} stats messages/s; all stopped in ${stopSecs.toFixed(1)} s`);
  }

  await cleanup();
  if (PROFILE) results.profile = summariseProfiles(profDir);
  report(results, resultsDir, stamp, log);
}

if (args.includes('--vm')) {
  // the same bench in the pure cgroup v2 VM, once per kernel (bench/vm.ts)
  void benchInVms(args.filter((a) => a !== '--vm')).then((code) => process.exit(code));
} else {
  main().catch(async (err: unknown) => {
    if (!aborting) process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    await cleanup().catch(() => undefined);
    process.exit(aborting ? 130 : 1);
  });
}

