/**
 * One task's TaskStats source: the task's cgroup stat files (and its
 * processes' /proc/<pid>/stat), read cheaply because this runs for every
 * streamed task on every tick on the main thread.
 *
 * - One shared read buffer, one read(2) per file, latin1 decode: no
 *   per-read allocation or fstat as readFileSync does.
 * - With keepOpen, each file is opened once and re-read at offset 0 with
 *   pread(2) (cgroup and proc stat files regenerate on a read at offset 0),
 *   so a sample is one syscall per file instead of open+fstat+read+read+close.
 * - The previous counters live here, so CPU percentages are deltas between
 *   this collector's own samples.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import {
  CPUUsage_Fields as CpuField,
  MemoryUsage_Fields as MemField,
  type TaskResourceUsage,
  type TaskStats,
  TaskStatsResponse,
} from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import type { TaskCgroup } from '../../shared/cgroups/task-cgroup';
import { parsePids, parsePidStat, parseUintBytes, pickKeyedBytes } from './parse';
import { kernelPageSize, type CpuCounters } from './counters';
import { toTimestamp } from '../rpc/time';
import { systemErrorCode } from '../../native/errno';

/** USER_HZ for cpuacct.stat and /proc/<pid>/stat; 100 on every Linux ABI Nomad runs on. */
const USER_HZ = 100;

/** Shared by every read on the main thread; grown when a file fills it. */
let buf = Buffer.allocUnsafe(16 * 1024);

/** Soft RLIMIT_NOFILE from /proc/self/limits at start; null if unreadable or unlimited. */
function softNofile(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Kept fds may use at most half the fd limit (less 256 for everything else
 * at low limits): launches, FIFOs and gRPC sockets must never hit EMFILE
 * because stats are streamed. Past the budget a file is opened per read.
 */
export const KEEP_FD_BUDGET = Math.max(0, Math.floor((softNofile() ?? 1024) / 2) - 256);
let keptFds = 0;

/** Kept stat fds open now (tests, metrics). */
export function keptStatFds(): number {
  return keptFds;
}

/** A cgroup or proc file re-read from offset 0; kept open when asked. */
class StatFile {
  private fd = -1;
  /** open failed: the kernel does not provide this file here (e.g. memory.swap.current without swap accounting) */
  private absent = false;

  /**
   * `dir` is the task cgroup's own string (shared with its TaskCgroup), so a
   * kept file costs no path string of its own: with 1,000 streamed tasks and
   * eight files each, the joined paths were ~1 MB of heap.
   */
  constructor(private readonly dir: string, private readonly name: string, private readonly keepOpen: boolean) {}

  get file(): string {
    return `${this.dir}/${this.name}`;
  }

  /** The file's text, or null if it cannot be read (gone, absent, not permitted). */
  read(): string | null {
    const n = this.readBytes();
    return n < 0 ? null : buf.toString('latin1', 0, n);
  }

  /** A single-number file's value; null if unreadable or not a number ("max"). */
  number(): number | null {
    const n = this.readBytes();
    return n < 0 ? null : parseUintBytes(buf, 0, n);
  }

  /** `keys` of a "key value" file, parsed from the bytes; {} if unreadable. */
  keyed<K extends string>(keys: readonly K[]): Partial<Record<K, number>> {
    const n = this.readBytes();
    return n < 0 ? {} : pickKeyedBytes(buf, n, keys);
  }

  /** Read the file into the shared buffer: its length, or -1 if it cannot be read. */
  private readBytes(): number {
    if (this.absent) return -1;
    let fd = this.fd;
    if (fd < 0) {
      try {
        fd = openSync(this.file, 'r');
      } catch (err) {
        // a kept reader remembers a missing file (cgroup files do not appear
        // later); any other failure (EMFILE, EACCES) is retried next time
        if (this.keepOpen && systemErrorCode(err) === 'ENOENT') this.absent = true;
        return -1;
      }
      if (this.keepOpen && keptFds < KEEP_FD_BUDGET) {
        this.fd = fd;
        keptFds++;
      }
    }
    const kept = this.fd === fd;
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, 0);
        if (n < buf.length) return n;
        buf = Buffer.allocUnsafe(buf.length * 2);
      }
    } catch {
      this.close();
      return -1;
    } finally {
      if (!kept && fd >= 0) closeSync(fd);
    }
  }

  close(): void {
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      keptFds--;
      try {
        closeSync(fd);
      } catch {
        // already closed: nothing to release
      }
    }
  }
}

interface CgroupFiles {
  mode: 'v1' | 'v2';
  cpuStat: StatFile | null;
  cpuacctUsage: StatFile | null;
  cpuacctStat: StatFile | null;
  memStat: StatFile | null;
  memUsage: StatFile | null;
  memSwap: StatFile | null;
  memMax: StatFile | null;
  memKernel: StatFile | null;
  procs: StatFile | null;
}

function cgroupFiles(cg: TaskCgroup, keepOpen: boolean): CgroupFiles {
  const f = (dir: string | undefined, name: string): StatFile | null => (dir ? new StatFile(dir, name, keepOpen) : null);
  if (cg.mode === 'v2') {
    return {
      mode: 'v2',
      cpuStat: f(cg.dir, 'cpu.stat'),
      cpuacctUsage: null,
      cpuacctStat: null,
      memStat: f(cg.dir, 'memory.stat'),
      memUsage: f(cg.dir, 'memory.current'),
      memSwap: f(cg.dir, 'memory.swap.current'),
      memMax: f(cg.dir, 'memory.peak'),
      memKernel: null,
      procs: f(cg.dir, 'cgroup.procs'),
    };
  }
  const { cpu, cpuacct, memory } = cg.dirs;
  return {
    mode: 'v1',
    cpuStat: f(cpu, 'cpu.stat'),
    cpuacctUsage: f(cpuacct, 'cpuacct.usage'),
    cpuacctStat: f(cpuacct, 'cpuacct.stat'),
    memStat: f(memory, 'memory.stat'),
    memUsage: f(memory, 'memory.usage_in_bytes'),
    memSwap: null,
    memMax: f(memory, 'memory.max_usage_in_bytes'),
    memKernel: f(memory, 'memory.kmem.usage_in_bytes'),
    // the task's processes: the memory controller's members (as before), else cpu's
    procs: f(memory ?? cpu, 'cgroup.procs'),
  };
}

const V2_CPU_KEYS = ['usage_usec', 'user_usec', 'system_usec', 'nr_periods', 'nr_throttled', 'throttled_usec'] as const;
const V1_CPU_KEYS = ['nr_periods', 'nr_throttled', 'throttled_time'] as const;
const V1_ACCT_KEYS = ['user', 'system'] as const;
const V2_MEM_KEYS = ['anon', 'file', 'kernel'] as const;
const V1_MEM_KEYS = ['total_rss', 'rss', 'total_cache', 'cache', 'total_swap', 'swap'] as const;

function readCpuCounters(f: CgroupFiles): CpuCounters {
  if (f.mode === 'v2') {
    const s = f.cpuStat?.keyed(V2_CPU_KEYS) ?? {};
    return {
      usageUs: s.usage_usec ?? 0,
      userUs: s.user_usec ?? 0,
      systemUs: s.system_usec ?? 0,
      periods: s.nr_periods ?? 0,
      throttledPeriods: s.nr_throttled ?? 0,
      throttledNs: (s.throttled_usec ?? 0) * 1000,
    };
  }
  const usageNs = f.cpuacctUsage?.number() ?? 0;
  const st = f.cpuacctStat?.keyed(V1_ACCT_KEYS) ?? {};
  const cs = f.cpuStat?.keyed(V1_CPU_KEYS) ?? {};
  return {
    usageUs: usageNs / 1000,
    userUs: ((st.user ?? 0) * 1e6) / USER_HZ,
    systemUs: ((st.system ?? 0) * 1e6) / USER_HZ,
    periods: cs.nr_periods ?? 0,
    throttledPeriods: cs.nr_throttled ?? 0,
    throttledNs: cs.throttled_time ?? 0,
  };
}

function readMemoryUsage(f: CgroupFiles): TaskResourceUsage['memory'] {
  const fields: MemField[] = [];
  const memory = { rss: 0, cache: 0, maxUsage: 0, kernelUsage: 0, kernelMaxUsage: 0, usage: 0, swap: 0, measuredFields: fields };
  if (!f.memStat) return memory; // v1 host without a memory controller for the task
  let usage: number | null, rss: number | null, cache: number | null, swap: number | null, kernel: number | null;
  if (f.mode === 'v2') {
    const s = f.memStat.keyed(V2_MEM_KEYS);
    usage = f.memUsage?.number() ?? null;
    rss = s.anon ?? null;
    cache = s.file ?? null;
    swap = f.memSwap?.number() ?? null;
    kernel = s.kernel ?? null;
  } else {
    const s = f.memStat.keyed(V1_MEM_KEYS);
    usage = f.memUsage?.number() ?? null;
    rss = s.total_rss ?? s.rss ?? null;
    cache = s.total_cache ?? s.cache ?? null;
    swap = s.total_swap ?? s.swap ?? null;
    kernel = f.memKernel?.number() ?? null;
  }
  const maxUsage = f.memMax?.number() ?? null;
  if (usage !== null) { memory.usage = usage; fields.push(MemField.USAGE); }
  if (rss !== null) { memory.rss = rss; fields.push(MemField.RSS); }
  if (cache !== null) { memory.cache = cache; fields.push(MemField.CACHE); }
  if (swap !== null) { memory.swap = swap; fields.push(MemField.SWAP); }
  if (maxUsage !== null) { memory.maxUsage = maxUsage; fields.push(MemField.MAX_USAGE); }
  if (kernel !== null) { memory.kernelUsage = kernel; fields.push(MemField.KERNEL_USAGE); }
  return memory;
}

const pct = (deltaUs: number, elapsedMs: number): number => (elapsedMs > 0 ? (deltaUs / 1000 / elapsedMs) * 100 : 0);

const AGG_CPU_FIELDS = [CpuField.SYSTEM_MODE, CpuField.USER_MODE, CpuField.TOTAL_TICKS, CpuField.THROTTLED_PERIODS, CpuField.THROTTLED_TIME, CpuField.PERCENT];
const PID_CPU_FIELDS = [CpuField.SYSTEM_MODE, CpuField.USER_MODE, CpuField.TOTAL_TICKS, CpuField.PERCENT];
const PID_MEM_FIELDS = [MemField.RSS];

/** Responses the scheduler hands to gRPC → their sample, so the serializer finds the bytes made once. */
const samplesByResponse = new WeakMap<TaskStatsResponse, StatsSample>();

/**
 * The Driver service's TaskStats response serializer: a sample's cached
 * encoding when the message is one of ours, else a plain encode (same bytes).
 */
export function serializeTaskStatsResponse(value: TaskStatsResponse): Buffer {
  const s = samplesByResponse.get(value);
  if (s) return s.encoded();
  const u8 = TaskStatsResponse.encode(value).finish();
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/** One sample: the message, and its wire encoding made at most once however many streams send it. */
export class StatsSample {
  private bytes: Buffer | undefined;
  readonly response: TaskStatsResponse;
  constructor(readonly stats: TaskStats) {
    this.response = { stats };
    samplesByResponse.set(this.response, this);
  }

  encoded(): Buffer {
    if (!this.bytes) {
      const u8 = TaskStatsResponse.encode(this.response).finish();
      this.bytes = Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
    }
    return this.bytes;
  }
}

export interface StatsSource {
  id: string;
  startedAt: Date;
  state: { cgroup: TaskCgroup };
}

export interface CollectorOptions {
  /** keep the cgroup stat files open between samples (pread at offset 0) */
  keepOpen: boolean;
  /** also keep /proc/<pid>/stat open (worth it only when per-pid entries are read every sample) */
  keepPidFds?: boolean;
}

/**
 * How often per-pid entries are read anew. Nomad only passes the per-pid map
 * through to its HTTP API (client/structs.TaskResourceUsage.Pids); its
 * metrics, UI graphs and scheduling use the aggregate. The map costs
 * cgroup.procs plus one /proc/<pid>/stat per process on every task, so it is
 * refreshed every 10 s (the official exec2 driver caches whole samples for
 * 10 s and has no per-pid entries at all) and repeated in between.
 */
export const PIDS_REFRESH_MS = 10_000;

/**
 * Whether sample number `index` (0-based) of a collector reads per-pid
 * entries: the first (it seeds the counters), the second (the first with
 * real per-pid rates, so a new stream shows them at once), then whenever the
 * last read is PIDS_REFRESH_MS old.
 */
export function pidsDue(index: number, nowMs: number, lastPidsMs: number | undefined, refreshMs = PIDS_REFRESH_MS): boolean {
  return index < 2 || lastPidsMs === undefined || nowMs - lastPidsMs >= refreshMs;
}

export class TaskStatsCollector {
  private readonly files: CgroupFiles;
  private readonly pidFiles = new Map<number, StatFile>();
  private prevCpu: CpuCounters | undefined;
  private prevAtMs: number | undefined;
  private prevPids = new Map<number, { userUs: number; systemUs: number }>();
  /** when the per-pid entries were last read; their CPU deltas are over this span */
  private prevPidsAtMs: number | undefined;
  private lastPidEntries: Record<string, TaskResourceUsage> = {};
  private samples = 0;

  private readonly keepPidFds: boolean;

  constructor(private readonly task: StatsSource, opts: CollectorOptions) {
    this.files = cgroupFiles(task.state.cgroup, opts.keepOpen);
    this.keepPidFds = opts.keepOpen && opts.keepPidFds === true;
  }

  /**
   * One sample at `now`. CPU percentages are the delta to this collector's
   * previous sample; the first one uses the task's whole lifetime as its
   * interval, so it is an average rather than a bogus spike. Per-pid entries
   * with `pids`: 'always' reads them on every sample, 'cadence' as pidsDue
   * says (the entries of the last read in between), 'never' leaves
   * resource_usage_by_pid empty (the spec allows that).
   */
  sample(mhzPerCore: number, pids: 'always' | 'cadence' | 'never', now = Date.now()): StatsSample {
    const startedMs = this.task.startedAt.getTime();
    const cpu = readCpuCounters(this.files);
    const memory = readMemoryUsage(this.files);
    const base = this.prevCpu ?? { usageUs: 0, userUs: 0, systemUs: 0, periods: 0, throttledPeriods: 0, throttledNs: 0 };
    const elapsed = now - (this.prevAtMs ?? startedMs);
    const percent = pct(cpu.usageUs - base.usageUs, elapsed);
    const stats: TaskStats = {
      id: this.task.id,
      timestamp: toTimestamp(new Date(now)),
      aggResourceUsage: {
        cpu: {
          systemMode: pct(cpu.systemUs - base.systemUs, elapsed),
          userMode: pct(cpu.userUs - base.userUs, elapsed),
          totalTicks: (percent / 100) * mhzPerCore,
          throttledPeriods: cpu.throttledPeriods,
          throttledTime: cpu.throttledNs,
          percent,
          measuredFields: AGG_CPU_FIELDS,
        },
        memory,
      },
      resourceUsageByPid: {},
    };
    if (pids === 'always' || (pids === 'cadence' && pidsDue(this.samples, now, this.prevPidsAtMs))) {
      this.lastPidEntries = this.readPids(mhzPerCore, now, startedMs);
    }
    if (pids !== 'never') stats.resourceUsageByPid = this.lastPidEntries;
    this.samples++;
    this.prevCpu = cpu;
    this.prevAtMs = now;
    return new StatsSample(stats);
  }

  private readPids(mhzPerCore: number, now: number, startedMs: number): Record<string, TaskResourceUsage> {
    const out: Record<string, TaskResourceUsage> = {};
    const listed = parsePids(this.files.procs?.read() ?? null);
    const seen = new Map<number, { userUs: number; systemUs: number }>();
    const page = kernelPageSize();
    for (const pid of listed) {
      const p = this.readPid(pid);
      if (!p) continue;
      const userUs = (p.utimeTicks * 1e6) / USER_HZ;
      const systemUs = (p.stimeTicks * 1e6) / USER_HZ;
      seen.set(pid, { userUs, systemUs });
      const before = this.prevPids.get(pid);
      const since = before && this.prevPidsAtMs !== undefined ? now - this.prevPidsAtMs : now - startedMs;
      const user = pct(userUs - (before?.userUs ?? 0), since);
      const system = pct(systemUs - (before?.systemUs ?? 0), since);
      out[String(pid)] = {
        cpu: { systemMode: system, userMode: user, totalTicks: ((user + system) / 100) * mhzPerCore, throttledPeriods: 0, throttledTime: 0, percent: user + system, measuredFields: PID_CPU_FIELDS },
        memory: { rss: p.rssPages * page, cache: 0, maxUsage: 0, kernelUsage: 0, kernelMaxUsage: 0, usage: 0, swap: 0, measuredFields: PID_MEM_FIELDS },
      };
    }
    // processes that left the cgroup: their kept fds go
    for (const [pid, f] of this.pidFiles) {
      if (!seen.has(pid)) {
        f.close();
        this.pidFiles.delete(pid);
      }
    }
    this.prevPids = seen;
    this.prevPidsAtMs = now;
    return out;
  }

  private readPid(pid: number): ReturnType<typeof parsePidStat> {
    let f = this.pidFiles.get(pid);
    let fresh = false;
    if (!f) {
      f = new StatFile(`/proc/${pid}`, 'stat', this.keepPidFds);
      fresh = true;
    }
    let text = f.read();
    if (text === null && !fresh) {
      // a kept fd follows the process it was opened for: that one exited and
      // the pid now names another member of the cgroup; open it anew
      f.close();
      f = new StatFile(`/proc/${pid}`, 'stat', this.keepPidFds);
      text = f.read();
    }
    if (text === null) {
      f.close();
      this.pidFiles.delete(pid);
      return null;
    }
    if (this.keepPidFds) this.pidFiles.set(pid, f);
    return parsePidStat(text);
  }

  /** Release every kept fd; the collector may be used again (it reopens). */
  close(): void {
    for (const f of Object.values(this.files)) if (f instanceof StatFile) f.close();
    for (const f of this.pidFiles.values()) f.close();
    this.pidFiles.clear();
  }
}
