/**
 * The fault-injection soak (issue 14): many launches of short and long tasks
 * through the REAL plugin process, driven the way Nomad drives it, with
 * faults injected at random points chosen by a seeded PRNG (the seed is
 * printed; `--seed N` replays a run):
 *
 * - SIGKILL of the plugin while StartTasks are in flight and while a
 *   StopTask/DestroyTask is in flight, then a new plugin, SetConfig and
 *   RecoverTask of every handle that was answered (as Nomad's client does
 *   after a plugin crash); StartTasks whose answer was lost are cleaned up
 *   the way Nomad's alloc runner would (the task cgroup is killed);
 * - a log reader that goes away mid-task (broken pipe), one that never
 *   opens the FIFO;
 * - malformed and truncated gRPC messages, malformed task and plugin
 *   configs, oversize args and env;
 * - task ids with "/", "..", NUL and 4 KiB lengths;
 * - StopTask and DestroyTask racing the task's own exit;
 * - fd pressure: a low RLIMIT_NOFILE on the plugin (prlimit on its pid).
 *
 * Afterwards: every answered StartTask's exit is exact; no task process,
 * zombie, cgroup, status dir, fd or socket is left; the plugin's RSS and fd
 * count are flat. `runSoak` returns the summary; test/soak.test.ts runs a
 * CI-sized variant, `npm run soak` the full one.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { StartTaskRequest, type ExitResult, type TaskHandle } from '../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { NomadLikeClient, encodePluginConfig, encodeTaskConfig, type PreparedTask } from '../src/client/nomad-client';
import { FifoReader } from '../src/client/log-reader';
import { call, PluginProcess } from '../src/client/plugin-process';
import { killAll, readProcs, type TaskCgroup } from '../src/shared/cgroups/task-cgroup';
import { procStat } from '../src/shared/proc';
import { statusDirFor, tasksRoot } from '../src/main/tasks/status-dir';
import { INIT_HELPER_PATH } from '../src/native/binding';

// ------------------------------------------------------------------ options, PRNG

export interface SoakOptions {
  launches: number;
  concurrency: number;
  seed: number;
  /** plugin SIGKILLs (alternating: during StartTask bursts, during stop/destroy) */
  crashes: number;
  /** fd pressure windows */
  fdPressureWindows: number;
  /** stop issuing launches after this long (the run then drains and checks) */
  timeBudgetMs: number;
  log?: (line: string) => void;
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SoakSummary {
  seed: number;
  launches: number;
  answered: number;
  /** answered StartTasks whose exit was checked and matched */
  exact: number;
  /** StartTasks that failed as they had to (by fault kind) */
  expectedFailures: Record<string, number>;
  faults: Record<string, number>;
  crashes: number;
  recoveries: number;
  /** StartTasks in flight at a crash: answer lost, task killed with its cgroup, status dir removed by the harness */
  orphaned: number;
  /** of those, how many had left a status dir (no one will ever DestroyTask their id: the harness removes it) */
  orphanStatusDirs: number;
  lost: string[];
  leaked: string[];
  violations: string[];
  rss: { before: number; after: number };
  fds: { before: number; after: number };
  durationMs: number;
}

// ------------------------------------------------------------------ small helpers

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Launches into a plugin instance's life after which its RSS and fds count as warmed up. */
const WARM_LAUNCHES = 200;
const TRANSPORT = new Set([grpc.status.UNAVAILABLE, grpc.status.CANCELLED]);

function isServiceError(e: unknown): e is grpc.ServiceError {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number';
}

function fdsOf(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed while we looked
    }
  }
  return out;
}

/** RLIMIT_NOFILE of a process, from /proc/<pid>/limits. */
function nofileLimit(pid: number): { soft: string; hard: string } {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return { soft: m?.[1] ?? '1024', hard: m?.[2] ?? '1024' };
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Host processes running the init helper (every task's pid 1). */
function initProcesses(): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readlinkSync(`/proc/${e}/exe`) === INIT_HELPER_PATH) out.push(Number(e));
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

type Expect = { exit: number; signal: number } | { oneOf: Array<{ exit: number; signal: number }> };

const matches = (r: ExitResult, e: Expect): boolean =>
  ('oneOf' in e ? e.oneOf : [e]).some((x) => x.exit === r.exitCode && x.signal === r.signal);

const show = (e: Expect): string => ('oneOf' in e ? e.oneOf : [e]).map((x) => `${x.exit}/${x.signal}`).join(' or ');

// ------------------------------------------------------------------ the soak

type Kind =
  | 'short' | 'long-stop' | 'long-destroy' | 'race-stop' | 'race-destroy' | 'broken-pipe' | 'no-reader'
  | 'hostile-id' | 'oversize' | 'bad-task-config' | 'malformed-grpc' | 'bad-plugin-config';

const KINDS: Array<[Kind, number]> = [
  ['short', 40], ['long-stop', 10], ['long-destroy', 5], ['race-stop', 8], ['race-destroy', 6], ['broken-pipe', 6],
  ['no-reader', 0.4], ['hostile-id', 6], ['oversize', 3], ['bad-task-config', 3], ['malformed-grpc', 3], ['bad-plugin-config', 1],
];
const WEIGHT_TOTAL = KINDS.reduce((a, [, w]) => a + w, 0);

/** One allocation's task, reused by successive launches like a restarting Nomad task (its cgroup and FIFOs persist). */
interface Slot {
  prepared: PreparedTask;
  busy: boolean;
}

class CrashedError extends Error {}

export class Soak {
  private readonly rand: () => number;
  private readonly nomad = new NomadLikeClient();
  private readonly slots: Slot[] = [];
  private readonly summary: SoakSummary;
  /** answered handles not yet destroyed: what Nomad would recover */
  private readonly live = new Map<string, TaskHandle>();
  private readonly hostileInUse = new Set<string>();
  private epoch = 0;
  private ready: Promise<void> = Promise.resolve();
  private crashing = false;
  private issued = 0;
  private crashAt: number[] = [];
  private fdPressureAt: number[] = [];
  private fdPressureUntil = -1;
  private fdLimit = { soft: '1024', hard: '1024' };
  /** windows begun so far; a window's number is in pressureActiveAt (calls issued inside it were under pressure) */
  private pressureWindowsSeen = 0;
  private readonly pressureActiveAt = new Set<number>();
  private stopDestroyCrashArmed = false;
  private readonly plugins: PluginProcess[] = [];
  private instanceLaunches = 0;
  private nextProgress = 1000;
  private warmFds = -1;
  private warmRss = -1;
  private readonly began = Date.now();

  constructor(private readonly opts: SoakOptions) {
    this.rand = prng(opts.seed);
    this.summary = {
      seed: opts.seed, launches: 0, answered: 0, exact: 0, expectedFailures: {}, faults: {}, crashes: 0, recoveries: 0, orphaned: 0, orphanStatusDirs: 0,
      lost: [], leaked: [], violations: [], rss: { before: 0, after: 0 }, fds: { before: 0, after: 0 }, durationMs: 0,
    };
    const pick = (n: number): number[] => Array.from({ length: n }, () => Math.floor(opts.launches * (0.1 + 0.8 * this.rand()))).sort((a, b) => a - b);
    this.crashAt = pick(opts.crashes);
    this.fdPressureAt = pick(opts.fdPressureWindows);
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  private lose(line: string): void {
    this.summary.lost.push(line);
    this.log(`  LOST ${line}`);
  }

  private count(map: Record<string, number>, key: string): void {
    map[key] = (map[key] ?? 0) + 1;
  }

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }

  private get plugin(): PluginProcess {
    return this.nomad.plugin;
  }

  get skipReason(): string | null {
    return this.nomad.cgroups.skipReason;
  }

  // -------------------------------------------------------------- RPCs across crashes

  /**
   * Run an RPC; if it fails because the plugin was killed, wait for the new
   * plugin (recovered) and run it again. `retry: false` (StartTask): throw
   * CrashedError instead, Nomad never re-sends a StartTask whose answer it lost.
   */
  private async rpc<T>(what: string, fn: () => Promise<T>, retry = true): Promise<T> {
    for (;;) {
      await this.ready;
      const plugin = this.plugin;
      try {
        return await fn();
      } catch (err) {
        // The harness closed the killed plugin's channel before this call went out.
        const closedChannel = !isServiceError(err) && /Channel has been shut down/.test(String(err)) && (plugin !== this.plugin || this.crashing || plugin.exited !== null);
        if (!closedChannel && (!isServiceError(err) || !TRANSPORT.has(err.code))) throw err;
        const dead = plugin.exited !== null || this.crashing || (await plugin.waitForExit(3000));
        if (!dead) {
          this.summary.violations.push(`${what}: ${isServiceError(err) ? `${grpc.status[err.code]}: ${err.details}` : String(err)} from a live plugin`);
          throw err;
        }
        if (!retry) throw new CrashedError(`${what}: plugin killed`);
        await sleep(5);
      }
    }
  }

  private maybeCrash(phase: 'start' | 'stop-destroy'): void {
    if (this.crashing) return;
    if (phase === 'stop-destroy' && this.stopDestroyCrashArmed) {
      this.stopDestroyCrashArmed = false;
      void this.crash('during stop/destroy', this.int(0, 2));
      return;
    }
    if (phase === 'start' && this.crashAt.length > 0 && this.issued >= this.crashAt[0]!) {
      this.crashAt.shift();
      // alternate: this one during a StartTask burst, the next during a stop/destroy
      if (this.summary.crashes % 2 === 0) void this.crash('during StartTask burst', this.int(0, 3));
      else this.stopDestroyCrashArmed = true;
    }
  }

  private async crash(when: string, delayMs: number): Promise<void> {
    this.crashing = true;
    // RPCs issued meanwhile still go to the doomed plugin: they are in flight at the kill.
    await sleep(delayMs);
    let release!: () => void;
    this.ready = new Promise((r) => {
      release = r;
    });
    this.summary.crashes++;
    this.count(this.summary.faults, `plugin SIGKILL ${when}`);
    this.log(`  SIGKILL plugin pid ${this.plugin.pid} ${when} (launch ${this.issued}, ${this.live.size} answered tasks to recover)`);
    // a new plugin starts with the normal limit
    if (this.fdPressureUntil >= 0) this.pressureWindowsSeen++;
    this.fdPressureUntil = -1;
    await this.plugin.sigkill();
    this.epoch++;
    // Nomad: restart the plugin, SetConfig, RecoverTask of every stored handle.
    this.nomad.plugin = await PluginProcess.start();
    this.plugins.push(this.nomad.plugin);
    await this.nomad.configure();
    for (const [id, handle] of [...this.live]) {
      try {
        await this.nomad.recover(handle);
        this.summary.recoveries++;
      } catch (err) {
        this.lose(`${id.slice(0, 60)}: RecoverTask failed: ${(err as Error).message}`);
        this.live.delete(id);
      }
    }
    this.instanceLaunches = 0;
    this.warmFds = -1;
    this.warmRss = -1;
    this.crashing = false;
    release();
  }

  // -------------------------------------------------------------- fd pressure

  private fdPressure(): void {
    // one window at a time: the limit restored is the one from before the window
    if (this.fdPressureUntil < 0 && this.fdPressureAt.length > 0 && this.issued >= this.fdPressureAt[0]! && !this.crashing) {
      this.fdPressureAt.shift();
      const pid = this.plugin.pid;
      const open = fdsOf(pid).length;
      const limit = open + this.int(8, 40);
      try {
        this.fdLimit = nofileLimit(pid);
        // the soft limit only: lowering the hard one could not be undone without CAP_SYS_RESOURCE
        execFileSync('prlimit', [`--pid=${pid}`, `--nofile=${limit}:${this.fdLimit.hard}`]);
        this.fdPressureUntil = this.issued + this.int(50, 200);
        this.pressureWindowsSeen++;
        this.pressureActiveAt.add(this.pressureWindowsSeen);
        this.count(this.summary.faults, 'fd pressure window (RLIMIT_NOFILE)');
        this.log(`  RLIMIT_NOFILE of plugin ${pid} -> ${limit} (${open} open) until launch ${this.fdPressureUntil}`);
      } catch (err) {
        this.summary.violations.push(`prlimit failed: ${(err as Error).message}`);
      }
    } else if (this.fdPressureUntil >= 0 && this.issued >= this.fdPressureUntil) {
      this.fdPressureUntil = -1;
      this.restoreFdLimit();
      // calls issued from now on are not under pressure (the window number stays, inactive)
      this.pressureWindowsSeen++;
    }
  }

  private restoreFdLimit(): void {
    try {
      execFileSync('prlimit', [`--pid=${this.plugin.pid}`, `--nofile=${this.fdLimit.soft}:${this.fdLimit.hard}`]);
    } catch (err) {
      this.summary.violations.push(`cannot restore RLIMIT_NOFILE: ${(err as Error).message}`);
    }
  }

  /**
   * Whether a call issued when `pressureWindowsSeen` was `before` overlapped
   * an fd pressure window (one active at issue, begun since, or active now).
   */
  private overlapsFdPressure(before: number): boolean {
    return this.fdPressureUntil >= 0 || this.pressureWindowsSeen !== before || this.pressureActiveAt.has(before);
  }

  // -------------------------------------------------------------- one launch

  private pickKind(): Kind {
    let x = this.rand() * WEIGHT_TOTAL;
    for (const [k, w] of KINDS) {
      x -= w;
      if (x < 0) return k;
    }
    return 'short';
  }

  private hostileId(): string {
    const n = randomBytes(4).toString('hex');
    const choices = ['.', '..', `../${n}`, `a/../../${n}`, `/${n}/`, `nul\0${n}`, `${'x'.repeat(4096 - 9)}-${n}`, `${n}/../..`];
    const id = choices[this.int(0, choices.length - 1)]!;
    // "." and ".." are one id each: never two live tasks with the same id
    if (this.hostileInUse.has(id)) return `${id}${n}`;
    this.hostileInUse.add(id);
    return id;
  }

  /** The slot's TaskConfig for a new launch of `command` (a fresh id, like a Nomad restart). */
  private configFor(slot: Slot, command: string, args: string[], id?: string): PreparedTask['config'] {
    const base = slot.prepared.config;
    return {
      ...base,
      id: id ?? `${base.allocId}/${base.name}/${randomBytes(4).toString('hex')}`,
      msgpackDriverConfig: Buffer.from(encodeTaskConfig({ command, args })),
    };
  }

  /** Make sure logmon (our reader) has the slot's FIFOs open. */
  private ensureReaders(slot: Slot): void {
    const p = slot.prepared;
    if (!p.stdout) p.stdout = new FifoReader(p.config.stdoutPath, undefined, false);
    if (!p.stderr) p.stderr = new FifoReader(p.config.stderrPath, undefined, false);
  }

  private dropReaders(slot: Slot): void {
    slot.prepared.stdout?.close();
    slot.prepared.stderr?.close();
    slot.prepared.stdout = null;
    slot.prepared.stderr = null;
  }

  private async launch(slot: Slot): Promise<void> {
    const kind = this.pickKind();
    this.issued++;
    this.summary.launches++;
    this.fdPressure();
    this.ensureReaders(slot);
    const k = this.int(0, 120);
    switch (kind) {
      case 'oversize': {
        this.count(this.summary.faults, 'oversize args/env');
        const big = this.rand() < 0.5;
        const cfg = this.configFor(slot, 'true', big ? ['y'.repeat(140 * 1024)] : []);
        if (!big) cfg.env = { ...cfg.env, ...Object.fromEntries(Array.from({ length: 24 }, (_, i) => [`BIG_${i}`, 'e'.repeat(100 * 1024)])) };
        return this.expectStartFailure(slot, kind, cfg, grpc.status.INVALID_ARGUMENT, /Argument list too long|E2BIG/);
      }
      case 'bad-task-config': {
        this.count(this.summary.faults, 'malformed task config');
        const good = Buffer.from(encodeTaskConfig({ command: 'true' }));
        const bytes = this.rand() < 0.5 ? good.subarray(0, this.int(0, good.length - 1)) : randomBytes(this.int(1, 64));
        return this.expectStartFailure(slot, kind, { ...this.configFor(slot, 'true', []), msgpackDriverConfig: bytes }, grpc.status.INVALID_ARGUMENT, /./);
      }
      case 'bad-plugin-config':
        return this.badPluginConfig();
      case 'malformed-grpc':
        return this.malformedGrpc(slot);
      case 'no-reader': {
        this.count(this.summary.faults, 'log reader never opens the FIFO');
        this.dropReaders(slot);
        await this.expectStartFailure(slot, kind, this.configFor(slot, 'true', []), grpc.status.FAILED_PRECONDITION, /no reader on log FIFO/);
        this.ensureReaders(slot);
        return;
      }
      default:
        break;
    }

    let cfg: PreparedTask['config'];
    let expect: Expect;
    let ending: 'wait' | 'stop' | 'destroy' = 'wait';
    let endAfterMs = 0;
    switch (kind) {
      case 'short':
        cfg = this.configFor(slot, 'sh', ['-c', `exit ${k}`]);
        expect = { exit: k, signal: 0 };
        break;
      case 'hostile-id':
        this.count(this.summary.faults, 'hostile task id');
        cfg = this.configFor(slot, 'sh', ['-c', `exit ${k}`], this.hostileId());
        expect = { exit: k, signal: 0 };
        break;
      case 'long-stop':
        cfg = this.configFor(slot, 'sleep', ['1000']);
        expect = { exit: 143, signal: 15 };
        ending = 'stop';
        endAfterMs = this.int(0, 300);
        break;
      case 'long-destroy':
        cfg = this.configFor(slot, 'sleep', ['1000']);
        // DestroyTask(force) of a running task: SIGABRT first, SIGKILL if it is
        // not gone 100 ms later (a core dump can take longer)
        expect = { oneOf: [{ exit: 134, signal: 6 }, { exit: 137, signal: 9 }] };
        ending = 'destroy';
        endAfterMs = this.int(0, 300);
        break;
      case 'race-stop':
      case 'race-destroy': {
        this.count(this.summary.faults, kind === 'race-stop' ? 'StopTask racing the exit' : 'DestroyTask racing the exit');
        const ms = this.int(0, 40);
        cfg = this.configFor(slot, 'sh', ['-c', `sleep 0.0${String(ms).padStart(2, '0')}; exit ${k}`]);
        expect = { oneOf: [{ exit: k, signal: 0 }, ...(kind === 'race-stop' ? [{ exit: 143, signal: 15 }] : [{ exit: 134, signal: 6 }, { exit: 137, signal: 9 }])] };
        ending = kind === 'race-stop' ? 'stop' : 'destroy';
        endAfterMs = this.int(0, 60);
        break;
      }
      case 'broken-pipe': {
        this.count(this.summary.faults, 'log reader goes away (broken pipe)');
        // ignores SIGPIPE, so its writes fail with EPIPE and it still exits k
        cfg = this.configFor(slot, 'sh', ['-c', `trap '' PIPE; i=0; while [ $i -lt 400 ]; do echo line $i || :; echo err $i >&2 || :; i=$((i+1)); done; exit ${k}`]);
        expect = { exit: k, signal: 0 };
        break;
      }
      default:
        throw new Error(`unhandled kind ${String(kind)}`);
    }

    this.maybeCrash('start');
    const pressured = this.pressureWindowsSeen;
    let handle: TaskHandle;
    try {
      handle = await this.rpc('StartTask', () => call(this.plugin.driver, this.plugin.driver.startTask, { task: cfg }), false).then((r) => r.handle!);
    } catch (err) {
      if (kind === 'hostile-id') this.hostileInUse.delete(cfg.id);
      if (err instanceof CrashedError) return this.orphan(slot, cfg.id);
      if (this.overlapsFdPressure(pressured) && isServiceError(err) && !TRANSPORT.has(err.code)) {
        this.count(this.summary.expectedFailures, `StartTask under fd pressure: ${grpc.status[err.code]}`);
        return;
      }
      this.summary.violations.push(`${kind}: StartTask failed: ${(err as Error).message}`);
      return;
    }
    this.summary.answered++;
    this.live.set(cfg.id, handle);
    if (kind === 'broken-pipe') {
      // logmon goes away while the task writes
      await sleep(this.int(0, 10));
      this.dropReaders(slot);
    }

    const id = cfg.id;
    // Which plugin instance the WaitTask was last sent to: a DestroyTask
    // re-sent after a kill must reach the new plugin after the re-sent wait,
    // or the task is gone before anyone waits for it (Nomad, too, waits first).
    let waitSentTo = -1;
    let waitDone = false;
    let destroyAttempts = 0;
    const waitP = this.rpc('WaitTask', () => {
      waitSentTo = this.epoch;
      return this.nomad.wait(id);
    }).finally(() => {
      waitDone = true;
    });
    waitP.catch(() => undefined); // awaited below; a rejection meanwhile is not unhandled
    const afterWait = async (): Promise<void> => {
      while (!waitDone && waitSentTo !== this.epoch) await sleep(1);
      if (!waitDone) await sleep(2);
    };
    if (ending !== 'wait') await sleep(endAfterMs);
    if (ending === 'stop') {
      this.maybeCrash('stop-destroy');
      await this.rpc('StopTask', () => this.nomad.stop(id, 5000, 'SIGTERM'));
    } else if (ending === 'destroy') {
      this.maybeCrash('stop-destroy');
      await this.rpc('DestroyTask', async () => {
        destroyAttempts++;
        await afterWait();
        return this.nomad.destroy(id, true);
      });
    }
    let r: { result: ExitResult; err: string };
    try {
      r = await waitP;
    } catch (err) {
      this.lose(`${kind} ${id.slice(0, 60)}: WaitTask failed: ${(err as Error).message}`);
      this.live.delete(id);
      await this.rpc('DestroyTask', () => this.nomad.destroy(id, true)).catch(() => undefined);
      return;
    }
    if (matches(r.result, expect) && r.err === '') this.summary.exact++;
    else if (destroyAttempts > 1 && /status is missing/.test(r.err) && !existsSync(statusDirFor(this.nomad.stateDir, id))) {
      // The kill came after the old plugin's DestroyTask had removed the
      // task's state but before either answer arrived: its exit is gone with
      // the handle Nomad was destroying (Nomad itself destroys only after the
      // wait returned, so it never asks this).
      this.count(this.summary.expectedFailures, 'exit unknowable: DestroyTask done just before the kill, both answers lost');
    } else this.lose(`${kind} ${JSON.stringify(id.slice(0, 60))}: exit ${r.result.exitCode}/${r.result.signal} (${r.err}), expected ${show(expect)}`);
    this.maybeCrash('stop-destroy');
    await this.rpc('DestroyTask', () => this.nomad.destroy(id, true));
    this.live.delete(id);
    if (kind === 'hostile-id') this.hostileInUse.delete(id);
    if (kind === 'broken-pipe') this.ensureReaders(slot);
  }

  private async expectStartFailure(slot: Slot, kind: Kind, cfg: PreparedTask['config'], code: grpc.status, message: RegExp): Promise<void> {
    const pressured = this.pressureWindowsSeen;
    try {
      await this.rpc('StartTask', () => call(this.plugin.driver, this.plugin.driver.startTask, { task: cfg }), false);
      this.summary.violations.push(`${kind}: StartTask succeeded`);
      this.live.set(cfg.id, { version: 1, config: cfg, state: 0, driverState: Buffer.alloc(0) });
      await this.rpc('DestroyTask', () => this.nomad.destroy(cfg.id, true));
      this.live.delete(cfg.id);
    } catch (err) {
      if (err instanceof CrashedError) {
        // the worker may have made the status dir before the launch failed
        this.count(this.summary.expectedFailures, `${kind}: answer lost in a plugin kill`);
        await this.orphan(slot, cfg.id);
        return;
      }
      if (!isServiceError(err)) throw err;
      if (err.code === code && message.test(err.details)) this.count(this.summary.expectedFailures, `${kind}: ${grpc.status[code]}`);
      else if (this.overlapsFdPressure(pressured) && !TRANSPORT.has(err.code)) this.count(this.summary.expectedFailures, `StartTask under fd pressure: ${grpc.status[err.code]}`);
      else this.summary.violations.push(`${kind}: expected ${grpc.status[code]} ${message}, got ${grpc.status[err.code]}: ${err.details}`);
    }
  }

  /** Raw bytes on the wire: garbage and truncated requests to StartTask, WaitTask and SetConfig. */
  private async malformedGrpc(slot: Slot): Promise<void> {
    this.count(this.summary.faults, 'malformed/truncated gRPC message');
    const good = Buffer.from(StartTaskRequest.encode({ task: this.configFor(slot, 'true', []) }).finish());
    const paths = ['/hashicorp.nomad.plugins.drivers.proto.Driver/StartTask', '/hashicorp.nomad.plugins.drivers.proto.Driver/WaitTask', '/hashicorp.nomad.plugins.base.proto.BasePlugin/SetConfig'];
    const target = paths[this.int(0, paths.length - 1)]!;
    const bytes = this.rand() < 0.5 ? good.subarray(0, this.int(1, Math.min(good.length - 1, 200))) : randomBytes(this.int(1, 300));
    await this.rpc(`raw ${target}`, () => new Promise<void>((resolve, reject) => {
      const client = this.plugin.driver;
      client.makeUnaryRequest(target, (b: Buffer) => b, (b: Buffer) => b, bytes, new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (err) => {
        if (!err) {
          // A truncated StartTask can still decode to a launchable task: it is a real task then.
          if (target.endsWith('/StartTask')) this.summary.violations.push('a truncated StartTask started a task');
          resolve();
          return;
        }
        if (TRANSPORT.has(err.code)) reject(err);
        else resolve();
      });
    })).catch((err: Error) => {
      if (!(err instanceof CrashedError)) this.summary.violations.push(`raw ${target}: ${err.message}`);
    });
  }

  private async badPluginConfig(): Promise<void> {
    this.count(this.summary.faults, 'malformed plugin config (SetConfig)');
    const good = Buffer.from(encodePluginConfig({ state_dir: this.nomad.stateDir }));
    // never empty: an empty config is a valid one (all defaults)
    const bytes = this.rand() < 0.5 ? good.subarray(0, this.int(1, good.length - 1)) : randomBytes(this.int(1, 64));
    try {
      await this.rpc('SetConfig', () => call(this.plugin.base, this.plugin.base.setConfig, { msgpackConfig: bytes, nomadConfig: { driver: { ClientMaxPort: 14512, ClientMinPort: 14000 } }, pluginApiVersion: '0.1.0' }));
      this.summary.violations.push('SetConfig accepted a malformed config');
    } catch (err) {
      if (!isServiceError(err)) throw err;
      if (err.code === grpc.status.INVALID_ARGUMENT) this.count(this.summary.expectedFailures, 'bad-plugin-config: INVALID_ARGUMENT');
      else this.summary.violations.push(`SetConfig of a malformed config: ${grpc.status[err.code]} ${err.details}`);
    }
  }

  /** A StartTask whose answer the crash swallowed: Nomad's alloc runner kills the task cgroup; nobody will ever name the id again. */
  private async orphan(slot: Slot, id: string): Promise<void> {
    this.summary.orphaned++;
    const cg = slotCgroup(slot);
    for (let i = 0; i < 500; i++) {
      try {
        killAll(cg);
      } catch {
        // retried
      }
      if (cgroupProcs(slot).length === 0) break;
      await sleep(10);
    }
    const dir = statusDirFor(this.nomad.stateDir, id);
    if (existsSync(dir)) this.summary.orphanStatusDirs++;
    rmSync(dir, { recursive: true, force: true });
  }

  // -------------------------------------------------------------- run and check

  async run(): Promise<SoakSummary> {
    const o = this.opts;
    this.log(`soak: seed ${o.seed}, ${o.launches} launches at concurrency ${o.concurrency}, ${o.crashes} plugin kills, ${o.fdPressureWindows} fd pressure windows`);
    await this.nomad.startPlugin();
    this.plugins.push(this.nomad.plugin);
    for (let i = 0; i < o.concurrency; i++) this.slots.push({ prepared: this.nomad.prepareTask({ command: 'true', name: `soak${i}` }), busy: false });
    const deadline = this.began + o.timeBudgetMs;
    let next = 0;
    const worker = async (slot: Slot): Promise<void> => {
      while (next < o.launches && Date.now() < deadline) {
        next++;
        try {
          await this.launch(slot);
        } catch (err) {
          this.summary.violations.push(`launch threw: ${(err as Error).stack ?? String(err)}`);
        }
        // "before": each plugin instance once warm (WARM_LAUNCHES launches into its life); the last one's counts
        if (!this.crashing && this.instanceLaunches++ === WARM_LAUNCHES) {
          this.warmFds = fdsOf(this.plugin.pid).length;
          this.warmRss = rssBytes(this.plugin.pid);
        }
        if (this.summary.launches >= this.nextProgress) {
          this.nextProgress += 1000;
          this.log(`  ${this.summary.launches} launches, ${this.summary.exact} exact, ${this.summary.lost.length} lost, ${this.summary.violations.length} violations, ${Math.round((Date.now() - this.began) / 1000)} s`);
        }
      }
    };
    await Promise.all(this.slots.map(worker));
    await this.ready;
    if (this.fdPressureUntil >= 0) {
      this.fdPressureUntil = -1;
      this.restoreFdLimit();
    }
    this.check();
    this.summary.durationMs = Date.now() - this.began;
    return this.summary;
  }

  private check(): void {
    const s = this.summary;
    const pid = this.plugin.pid;
    for (const id of this.live.keys()) s.leaked.push(`task still tracked by the harness: ${id.slice(0, 60)}`);
    const fds = fdsOf(pid);
    if (this.warmFds < 0) s.violations.push(`the last plugin instance ran fewer than ${WARM_LAUNCHES} launches: no warm baseline`);
    s.fds = { before: this.warmFds, after: fds.length };
    s.rss = { before: this.warmRss, after: rssBytes(pid) };
    const pidfds = fds.filter((f) => f === 'anon_inode:[pidfd]').length;
    if (pidfds) s.leaked.push(`${pidfds} pidfds open in the plugin with no task left`);
    if (this.warmFds >= 0 && fds.length > this.warmFds + 8) s.leaked.push(`plugin fds grew ${this.warmFds} -> ${fds.length}: ${summariseFds(fds)}`);
    if (this.warmRss > 0 && s.rss.after > this.warmRss + 96 * 1024 * 1024) s.leaked.push(`plugin RSS grew ${mib(this.warmRss)} -> ${mib(s.rss.after)}`);
    const zombies = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map((e) => procStat(Number(e))).filter((st) => st && st.ppid === pid && st.state === 'Z');
    if (zombies.length) s.leaked.push(`${zombies.length} zombie children of the plugin`);
    const inits = initProcesses();
    if (inits.length) s.leaked.push(`${inits.length} task pid 1 processes still running: ${inits.join(' ')}`);
    for (const slot of this.slots) {
      const procs = cgroupProcs(slot);
      if (procs.length) s.leaked.push(`${procs.length} processes left in ${slot.prepared.config.name}'s cgroup`);
    }
    const root = tasksRoot(this.nomad.stateDir);
    const dirs = existsSync(root) ? readdirSync(root) : [];
    if (dirs.length) s.leaked.push(`${dirs.length} status dirs left: ${dirs.slice(0, 3).join(' ')}`);
    for (const p of this.plugins.slice(0, -1)) {
      if (p.exited === null) s.leaked.push(`plugin ${p.pid} still running`);
    }
  }

  /** Release the slots and the fixture; cgroup failures are leaks. Returns them. */
  async cleanup(): Promise<string[]> {
    for (const slot of this.slots) {
      this.dropReaders(slot);
      this.nomad.releaseTask(slot.prepared);
    }
    const socket = this.plugin?.handshake?.address;
    const failures = await this.nomad.cleanup();
    if (socket && existsSync(socket)) failures.push(`plugin socket ${socket} left behind`);
    for (const p of this.plugins) if (p.handshake && existsSync(p.handshake.address)) failures.push(`socket ${p.handshake.address} left behind`);
    return failures;
  }
}

function slotCgroup(slot: Slot): TaskCgroup {
  const dirs = Object.fromEntries(Object.entries(slot.prepared.cgroup.dirs).filter(([, d]) => path.basename(d) !== 'share' && existsSync(d)));
  if (dirs.unified) return { mode: 'v2', dir: dirs.unified };
  return { mode: 'v1', dirs, created: [] };
}

function cgroupProcs(slot: Slot): number[] {
  return Object.values(slot.prepared.cgroup.dirs).filter((d) => path.basename(d) !== 'share').flatMap(readProcs);
}

function summariseFds(fds: string[]): string {
  const kinds = new Map<string, number>();
  for (const f of fds) {
    const k = f.replace(/\d+/g, 'N');
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  return [...kinds].map(([k, n]) => `${n}x ${k}`).join(', ');
}

const mib = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB`;

/** The summary table printed by `npm run soak` (and the CI test). */
export function formatSummary(s: SoakSummary, leakedAtCleanup: string[]): string {
  const rows: Array<[string, string]> = [
    ['seed', String(s.seed)],
    ['duration', `${(s.durationMs / 1000).toFixed(1)} s`],
    ['launches (StartTask calls)', String(s.launches)],
    ['answered StartTasks', String(s.answered)],
    ['exits checked exact', String(s.exact)],
  ];
  for (const [k, n] of Object.entries(s.faults).sort()) rows.push([`fault: ${k}`, String(n)]);
  for (const [k, n] of Object.entries(s.expectedFailures).sort()) rows.push([`expected failure: ${k}`, String(n)]);
  rows.push(
    ['plugin kills', String(s.crashes)],
    ['RecoverTask calls', String(s.recoveries)],
    ['StartTasks in flight at a kill (answer lost, cgroup killed)', String(s.orphaned)],
    ['  of which left a status dir (removed by the harness)', String(s.orphanStatusDirs)],
    ['lost', String(s.lost.length)],
    ['leaked', String(s.leaked.length + leakedAtCleanup.length)],
    ['violations (wrong status, plugin died on its own, ...)', String(s.violations.length)],
    ['plugin RSS before / after', `${mib(s.rss.before)} / ${mib(s.rss.after)}`],
    ['plugin fds before / after', `${s.fds.before} / ${s.fds.after}`],
  );
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `| ${k.padEnd(w)} | ${v.padStart(12)} |`);
  const sep = `|${'-'.repeat(w + 2)}|${'-'.repeat(14)}|`;
  const details = [...s.lost.map((l) => `lost: ${l}`), ...s.leaked.map((l) => `leaked: ${l}`), ...leakedAtCleanup.map((l) => `leaked: ${l}`), ...s.violations.map((v) => `violation: ${v}`)];
  return [`| ${'soak'.padEnd(w)} | ${'value'.padStart(12)} |`, sep, ...lines, ...details.slice(0, 40)].join('\n');
}

export async function runSoak(opts: SoakOptions, soak = new Soak(opts)): Promise<{ summary: SoakSummary; cleanupLeaks: string[] }> {
  try {
    const summary = await soak.run();
    return { summary, cleanupLeaks: await soak.cleanup() };
  } catch (err) {
    await soak.cleanup().catch(() => undefined);
    throw err;
  }
}

export const FULL_SOAK: Omit<SoakOptions, 'seed'> = { launches: 10_000, concurrency: 16, crashes: 10, fdPressureWindows: 6, timeBudgetMs: 60 * 60_000 };
export const CI_SOAK: Omit<SoakOptions, 'seed'> = { launches: 3_000, concurrency: 16, crashes: 4, fdPressureWindows: 3, timeBudgetMs: 120_000 };

if (require.main === module) {
  const args = process.argv.slice(2);
  const arg = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const seed = Number(arg('--seed') ?? Math.floor(Math.random() * 2 ** 31));
  const opts: SoakOptions = {
    ...(args.includes('--ci') ? CI_SOAK : FULL_SOAK),
    seed,
    log: (l) => console.log(l),
  };
  if (arg('--launches')) opts.launches = Number(arg('--launches'));
  const soak = new Soak(opts);
  // Ctrl-C: leave no plugin, task, mount or cgroup behind.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`${sig}: cleaning up (seed ${seed})`);
      void soak.cleanup().finally(() => process.exit(130));
    });
  }
  runSoak(opts, soak).then(({ summary, cleanupLeaks }) => {
    console.log(formatSummary(summary, cleanupLeaks));
    const bad = summary.lost.length + summary.leaked.length + cleanupLeaks.length + summary.violations.length;
    console.log(bad === 0 ? `PASS (seed ${seed})` : `FAIL (seed ${seed}; replay with npm run soak -- --seed ${seed})`);
    process.exit(bad === 0 ? 0 : 1);
  }, (err: Error) => {
    console.error(err.stack ?? err.message);
    console.error(`FAIL (seed ${seed})`);
    process.exit(1);
  });
}
