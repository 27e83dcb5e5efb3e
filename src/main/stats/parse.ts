/**
 * Pure parsing of the kernel's stat texts for TaskStats. These run for every
 * task on every tick, so they pick out the few values a sample needs instead
 * of building a map of every line.
 */

/**
 * Values of `keys` in a "key value\n" text (cgroup cpu.stat, memory.stat,
 * cpuacct.stat); a key the text lacks is absent from the result. A key
 * matches only a whole first word at the start of a line, so "rss" does not
 * match "total_rss" or "rss_huge".
 */
export function pickKeyed<K extends string>(text: string, keys: readonly K[]): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (const key of keys) {
    let from = 0;
    for (;;) {
      const at = text.indexOf(key, from);
      if (at < 0) break;
      const end = at + key.length;
      if ((at === 0 || text.charCodeAt(at - 1) === 10) && text.charCodeAt(end) === 32) {
        const nl = text.indexOf('\n', end);
        const v = Number(text.slice(end + 1, nl < 0 ? text.length : nl));
        if (Number.isFinite(v)) out[key] = v;
        break;
      }
      from = end;
    }
  }
  return out;
}

/** A single number file (memory.current, cpuacct.usage); null when empty or not a number ("max"). */
export function parseNumber(text: string | null): number | null {
  if (text === null) return null;
  const t = text.trim();
  if (t === '') return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

/** cgroup.procs: one pid per line; anything that is not a positive integer is skipped. */
export function parsePids(text: string | null): number[] {
  if (!text) return [];
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const n = Number(line);
    if (Number.isSafeInteger(n) && n > 0) out.push(n);
  }
  return out;
}

export interface PidStatFields {
  utimeTicks: number;
  stimeTicks: number;
  rssPages: number;
}

/**
 * utime, stime (fields 14, 15) and rss (field 24) of a /proc/<pid>/stat
 * line; null if the text is not one. comm (field 2) may hold spaces and
 * parentheses, so fields are counted after the last ')'.
 */
export function parsePidStat(text: string): PidStatFields | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  // fields after ") ": index 0 is field 3 (state)
  const f = text.slice(close + 2).split(' ', 22);
  if (f.length < 22) return null;
  const utimeTicks = Number(f[11]);
  const stimeTicks = Number(f[12]);
  const rssPages = Number(f[21]);
  if (!Number.isFinite(utimeTicks) || !Number.isFinite(stimeTicks) || !Number.isFinite(rssPages)) return null;
  return { utimeTicks, stimeTicks, rssPages };
}

/**
 * pickKeyed over the bytes of a read, without making a string of them (one
 * sample per task per tick: the strings were most of the garbage).
 * `keys` are the same names, ASCII; values are unsigned decimal integers as
 * the kernel prints them in these files.
 */
export function pickKeyedBytes<K extends string>(buf: Uint8Array, len: number, keys: readonly K[]): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  let line = 0;
  while (line < len) {
    let sp = line;
    while (sp < len && buf[sp] !== 32 && buf[sp] !== 10) sp++;
    let end = sp;
    while (end < len && buf[end] !== 10) end++;
    if (sp < len && buf[sp] === 32) {
      for (const key of keys) {
        if (key.length !== sp - line || out[key] !== undefined) continue;
        let same = true;
        for (let i = 0; i < key.length; i++) {
          if (key.charCodeAt(i) !== buf[line + i]) { same = false; break; }
        }
        if (same) {
          const v = parseUintBytes(buf, sp + 1, end);
          if (v !== null) out[key] = v;
          break;
        }
      }
    }
    line = end + 1;
  }
  return out;
}

/** An unsigned decimal integer in buf[from, to), surrounding whitespace allowed; null otherwise ("max", empty). */
export function parseUintBytes(buf: Uint8Array, from: number, to: number): number | null {
  let i = from;
  while (i < to && (buf[i] === 32 || buf[i] === 10 || buf[i] === 9)) i++;
  let j = to;
  while (j > i && (buf[j - 1] === 32 || buf[j - 1] === 10 || buf[j - 1] === 9)) j--;
  if (i === j) return null;
  let v = 0;
  for (let k = i; k < j; k++) {
    const c = buf[k]! - 48;
    if (c < 0 || c > 9) return null;
    v = v * 10 + c;
  }
  return v;
}
