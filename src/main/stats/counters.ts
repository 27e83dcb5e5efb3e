/**
 * Cgroup accounting counters read by path (the Prometheus metrics, per
 * scrape) and the kernel's page size. TaskStats streams read through
 * stats/collector.ts instead (kept fds, only the values a sample needs).
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import * as path from 'node:path';
import type { TaskCgroup } from '../../shared/cgroups/task-cgroup';

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
