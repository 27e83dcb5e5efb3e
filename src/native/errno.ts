/** errno numbers ↔ names (ENOENT, ELOOP, ...) as Node's fs errors spell them. */
import { constants } from 'node:os';

const NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** "ENXIO" for 6; "errno <n>" for a number this platform has no name for. */
export function errnoName(n: number): string {
  return NAMES.get(n) ?? `errno ${n}`;
}

export const ELOOP: number = constants.errno.ELOOP;
export const E2BIG: number = constants.errno.E2BIG;
