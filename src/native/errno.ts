/** errno numbers ↔ names (ENOENT, ELOOP, ...) as Node's fs errors spell them. */
import { constants } from 'node:os';

const NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** "ENXIO" for 6; "errno <n>" for a number this platform has no name for. */
export function errnoName(n: number): string {
  return NAMES.get(n) ?? `errno ${n}`;
}

export const ELOOP: number = constants.errno.ELOOP;
export const E2BIG: number = constants.errno.E2BIG;

/**
 * The errno name of a Node system error (fs, net: `err.code`, e.g. 'ENOENT'),
 * or null for anything else: a typed look, not a cast, at what a catch got.
 */
export function systemErrorCode(err: unknown): string | null {
  if (!(err instanceof Error) || !('code' in err)) return null;
  const code = err.code;
  return typeof code === 'string' && Object.hasOwn(constants.errno, code) ? code : null;
}
