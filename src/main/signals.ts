/**
 * Signal names from jobs and operators (`SIGHUP`, `hup`, `SigUsr1`, `SIGRTMIN+3`)
 * to Linux signal numbers. Accepts every standard signal, not just exec2's list.
 */
import { constants } from 'node:os';
import { invalidArgument } from '../shared/errors';

const SIGNALS: Readonly<Record<string, number>> = constants.signals;

/** glibc's SIGRTMIN/SIGRTMAX as seen by programs (the kernel's 32 and 33 are reserved by glibc). */
export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

export function parseSignal(name: string): number {
  const raw = name.trim();
  if (raw === '') throw invalidArgument('signal must not be empty');
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    if (n >= 1 && n <= SIGRTMAX) return n;
    throw invalidArgument(`signal ${raw} is out of range (1-${SIGRTMAX})`);
  }
  let upper = raw.toUpperCase();
  if (!upper.startsWith('SIG')) upper = `SIG${upper}`;
  const rt = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(upper);
  if (rt) {
    const base = rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX;
    const off = rt[3] === undefined ? 0 : Number(rt[3]) * (rt[2] === '-' ? -1 : 1);
    const n = base + off;
    if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
    throw invalidArgument(`signal "${name}" is out of the real-time range`);
  }
  const n = SIGNALS[upper];
  if (n === undefined) throw invalidArgument(`unknown signal "${name}"`);
  return n;
}

export function signalName(n: number): string {
  for (const [k, v] of Object.entries(SIGNALS)) if (v === n) return k;
  if (n >= SIGRTMIN && n <= SIGRTMAX) return n === SIGRTMIN ? 'SIGRTMIN' : `SIGRTMIN+${n - SIGRTMIN}`;
  return `signal ${n}`;
}
