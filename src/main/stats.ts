/**
 * TaskStats from the task's cgroup files: memory as the kernel accounts it,
 * CPU percentages from usage deltas over real elapsed time.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import * as path from 'node:path';
import { CPUUsage_Fields as CpuField, MemoryUsage_Fields as MemField, type TaskStats } from '../gen/hashicorp/nomad/plugins/drivers/driver';
import type { TaskCgroup } from './cgroups/task-cgroup';
import { procStat } from './tasks/proc';
import type { TaskRecord } from './tasks/task-manager';
import { toTimestamp } from './time';

export interface CpuCounters {
  usageUs: number;
  userUs: number;
  systemUs: number;
  periods: number;
  throttledPeriods: number;
  throttledNs: number;
}

export interface MemCounters {
  usage: number | null;
  rss: number | null;
  cache: number | null;
  swap: number | null;
  maxUsage: number | null;
  kernel: number | null;
}

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function num(text: string | null): number | null {
  if (text === null) return null;
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : null;
}

export function parseKeyed(text: string | null): Map<string, number> {
  const m = new Map<string, number>();
  if (!text) return m;
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

/** USER_HZ for cpuacct.stat; 100 on every Linux ABI Nomad runs on. */
const USER_HZ = 100;

export function readCpu(cg: TaskCgroup): CpuCounters {
  if (cg.mode === 'v2') {
    const s = parseKeyed(read(path.join(cg.dir, 'cpu.stat')));
    return {
      usageUs: s.get('usage_usec') ?? 0,
      userUs: s.get('user_usec') ?? 0,
      systemUs: s.get('system_usec') ?? 0,
      periods: s.get('nr_periods') ?? 0,
      throttledPeriods: s.get('nr_throttled') ?? 0,
      throttledNs: (s.get('throttled_usec') ?? 0) * 1000,
    };
  }
  const acct = cg.dirs.cpuacct;
  const usageNs = acct ? num(read(path.join(acct, 'cpuacct.usage'))) ?? 0 : 0;
  const st = acct ? parseKeyed(read(path.join(acct, 'cpuacct.stat'))) : new Map<string, number>();
  const cpuStat = cg.dirs.cpu ? parseKeyed(read(path.join(cg.dirs.cpu, 'cpu.stat'))) : new Map<string, number>();
  return {
    usageUs: usageNs / 1000,
    userUs: ((st.get('user') ?? 0) * 1e6) / USER_HZ,
    systemUs: ((st.get('system') ?? 0) * 1e6) / USER_HZ,
    periods: cpuStat.get('nr_periods') ?? 0,
    throttledPeriods: cpuStat.get('nr_throttled') ?? 0,
    throttledNs: cpuStat.get('throttled_time') ?? 0,
  };
}

export function readMemory(cg: TaskCgroup): MemCounters {
  if (cg.mode === 'v2') {
    const stat = parseKeyed(read(path.join(cg.dir, 'memory.stat')));
    return {
      usage: num(read(path.join(cg.dir, 'memory.current'))),
      rss: stat.get('anon') ?? null,
      cache: stat.get('file') ?? null,
      swap: num(read(path.join(cg.dir, 'memory.swap.current'))),
      maxUsage: num(read(path.join(cg.dir, 'memory.peak'))),
      kernel: stat.get('kernel') ?? null,
    };
  }
  const dir = cg.dirs.memory;
  if (!dir) return { usage: null, rss: null, cache: null, swap: null, maxUsage: null, kernel: null };
  const stat = parseKeyed(read(path.join(dir, 'memory.stat')));
  return {
    usage: num(read(path.join(dir, 'memory.usage_in_bytes'))),
    rss: stat.get('total_rss') ?? stat.get('rss') ?? null,
    cache: stat.get('total_cache') ?? stat.get('cache') ?? null,
    swap: stat.get('total_swap') ?? stat.get('swap') ?? null,
    maxUsage: num(read(path.join(dir, 'memory.max_usage_in_bytes'))),
    kernel: num(read(path.join(dir, 'memory.kmem.usage_in_bytes'))),
  };
}

export interface StatsSample {
  stats: TaskStats;
  cpu: CpuCounters;
  /** per pid: utime+stime, user, system (µs) at atMs */
  pids: Map<number, { userUs: number; systemUs: number }>;
  atMs: number;
}

/**
 * /proc/<pid>/stat counts RSS in pages, and pages are not 4 KiB everywhere
 * (arm64 kernels with 16 or 64 KiB pages). The first mapping in our own
 * smaps states the kernel's page size; read it once.
 */
let pageSize: number | undefined;
export function kernelPageSize(): number {
  if (pageSize === undefined) {
    pageSize = 4096;
    try {
      const fd = openSync('/proc/self/smaps', 'r');
      try {
        const buf = Buffer.alloc(4096);
        const n = readSync(fd, buf, 0, buf.length, null);
        const m = /^KernelPageSize:\s+(\d+) kB$/m.exec(buf.toString('latin1', 0, n));
        if (m) pageSize = Number(m[1]) * 1024;
      } finally {
        closeSync(fd);
      }
    } catch {
      // keep 4 KiB: the size on every x86_64 kernel
    }
  }
  return pageSize;
}

/** Processes of the task: its cgroup's members (v1: the memory controller's). */
function taskPids(cg: TaskCgroup): number[] {
  const dir = cg.mode === 'v2' ? cg.dir : cg.dirs.memory ?? cg.dirs.cpu;
  if (!dir) return [];
  const text = read(path.join(dir, 'cgroup.procs'));
  return text ? text.split('\n').filter(Boolean).map(Number) : [];
}

/** utime, stime (µs) and RSS (bytes) of one process. */
function readPid(pid: number): { userUs: number; systemUs: number; rss: number } | null {
  const s = procStat(pid);
  if (!s) return null;
  return { userUs: (s.utimeTicks * 1e6) / USER_HZ, systemUs: (s.stimeTicks * 1e6) / USER_HZ, rss: s.rssPages * kernelPageSize() };
}

const pct = (deltaUs: number, elapsedMs: number): number => (elapsedMs > 0 ? (deltaUs / 1000 / elapsedMs) * 100 : 0);

/**
 * One sample. CPU percentages come from the delta to `previous`; the first
 * sample of a stream uses the task's whole lifetime as its interval, so it is
 * an average rather than a bogus spike.
 */
export function sampleTaskStats(task: TaskRecord, mhzPerCore: number, previous?: StatsSample): StatsSample {
  const now = Date.now();
  const cg = task.state.cgroup;
  const cpu = readCpu(cg);
  const mem = readMemory(cg);
  const base = previous?.cpu ?? { usageUs: 0, userUs: 0, systemUs: 0, periods: 0, throttledPeriods: 0, throttledNs: 0 };
  const elapsed = now - (previous?.atMs ?? task.startedAt.getTime());
  const percent = pct(cpu.usageUs - base.usageUs, elapsed);
  const memFields: MemField[] = [];
  const memory = { rss: 0, cache: 0, maxUsage: 0, kernelUsage: 0, kernelMaxUsage: 0, usage: 0, swap: 0, measuredFields: memFields };
  if (mem.usage !== null) { memory.usage = mem.usage; memFields.push(MemField.USAGE); }
  if (mem.rss !== null) { memory.rss = mem.rss; memFields.push(MemField.RSS); }
  if (mem.cache !== null) { memory.cache = mem.cache; memFields.push(MemField.CACHE); }
  if (mem.swap !== null) { memory.swap = mem.swap; memFields.push(MemField.SWAP); }
  if (mem.maxUsage !== null) { memory.maxUsage = mem.maxUsage; memFields.push(MemField.MAX_USAGE); }
  if (mem.kernel !== null) { memory.kernelUsage = mem.kernel; memFields.push(MemField.KERNEL_USAGE); }
  const stats: TaskStats = {
    id: task.id,
    timestamp: toTimestamp(new Date(now)),
    aggResourceUsage: {
      cpu: {
        systemMode: pct(cpu.systemUs - base.systemUs, elapsed),
        userMode: pct(cpu.userUs - base.userUs, elapsed),
        totalTicks: (percent / 100) * mhzPerCore,
        throttledPeriods: cpu.throttledPeriods,
        throttledTime: cpu.throttledNs,
        percent,
        measuredFields: [CpuField.SYSTEM_MODE, CpuField.USER_MODE, CpuField.TOTAL_TICKS, CpuField.THROTTLED_PERIODS, CpuField.THROTTLED_TIME, CpuField.PERCENT],
      },
      memory,
    },
    resourceUsageByPid: {},
  };
  const pids = new Map<number, { userUs: number; systemUs: number }>();
  for (const pid of taskPids(cg)) {
    const p = readPid(pid);
    if (!p) continue;
    pids.set(pid, { userUs: p.userUs, systemUs: p.systemUs });
    const before = previous?.pids.get(pid);
    const since = before ? elapsed : now - task.startedAt.getTime();
    const user = pct(p.userUs - (before?.userUs ?? 0), since);
    const system = pct(p.systemUs - (before?.systemUs ?? 0), since);
    stats.resourceUsageByPid[String(pid)] = {
      cpu: {
        systemMode: system,
        userMode: user,
        totalTicks: ((user + system) / 100) * mhzPerCore,
        throttledPeriods: 0,
        throttledTime: 0,
        percent: user + system,
        measuredFields: [CpuField.SYSTEM_MODE, CpuField.USER_MODE, CpuField.TOTAL_TICKS, CpuField.PERCENT],
      },
      memory: { rss: p.rss, cache: 0, maxUsage: 0, kernelUsage: 0, kernelMaxUsage: 0, usage: 0, swap: 0, measuredFields: [MemField.RSS] },
    };
  }
  return { stats, cpu, pids, atMs: now };
}
