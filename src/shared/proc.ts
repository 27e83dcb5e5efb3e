/** Facts about host processes from /proc/<pid>/stat. */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  pid: number;
  /** state letter (R, S, Z, ...) */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** fields 14, 15: CPU time in clock ticks (USER_HZ) */
  utimeTicks: number;
  stimeTicks: number;
  /** field 22: start time in clock ticks since boot, as the kernel prints it */
  startTime: string;
  /** field 24: resident set size in pages */
  rssPages: number;
}

/** /proc/<pid>/stat of one process, or null if it is gone. */
export function procStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state)
  return {
    pid,
    state: f[0] ?? '',
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    session: Number(f[3]),
    utimeTicks: Number(f[11]),
    stimeTicks: Number(f[12]),
    startTime: f[19] ?? '',
    rssPages: Number(f[21]),
  };
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or null if gone. */
export function pidStartTime(pid: number): string | null {
  return procStat(pid)?.startTime ?? null;
}

/** Every process /proc lists now; those that exit while we read are left out. */
export function allProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const s = procStat(Number(e));
    if (s) out.push(s);
  }
  return out;
}
