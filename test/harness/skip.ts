/**
 * Skips that say why. Under CI=true a core suite may not skip: a missing host
 * feature there is a failure of the CI machine's set-up, not a pass.
 */
import type { Context } from 'mocha';

export const IN_CI = process.env.CI === 'true';

export function skipUnless(ctx: Context, ok: boolean, reason: string, opts: { core?: boolean } = {}): void {
  if (ok) return;
  if (IN_CI && opts.core !== false) throw new Error(`required under CI=true but unavailable: ${reason}`);
  console.log(`      SKIP: ${reason}`);
  ctx.skip();
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
