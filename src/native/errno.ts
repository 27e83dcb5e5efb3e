/** errno numbers ↔ names (ENOENT, ELOOP, ...) as Node's fs errors spell them. */
import { constants } from 'node:os';

const NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** "ENXIO" for 6; "errno <n>" for a number this platform has no name for. */
export function errnoName(n: number): string {
  return NAMES.get(n) ?? `errno ${n}`;
}

/** A name Node knows for an errno of this platform. */
export type ErrnoName = keyof typeof constants.errno;

/** pidfd_open / kill: no such process (a task's pid 1 has exited; TaskManager.recover) */
export const ESRCH: number = constants.errno.ESRCH;

/**
 * The errno name of a Node system error (fs, net: `err.code`, e.g. 'ENOENT'),
 * or null for anything else: a typed look, not a cast, at what a catch got.
 */
export function systemErrorCode(err: unknown): ErrnoName | null {
  if (!(err instanceof Error) || !('code' in err)) return null;
  const code = err.code;
  return typeof code === 'string' && isErrnoName(code) ? code : null;
}

function isErrnoName(name: string): name is ErrnoName {
  return Object.hasOwn(constants.errno, name);
}
