/**
 * Skips that say why. Under CI=true a core suite may not skip: a missing host
 * feature there is a failure of the CI machine's set-up, not a pass.
 */
import type { Context } from 'mocha';
import type { NomadLikeClient, PluginConfigInput } from '../../src/client/nomad-client';
import { testClient } from './client';

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

/**
 * The usual `before` of an integration suite: root and usable cgroups or a
 * SKIP that says why, then a Nomad-like client with a configured plugin.
 */
export async function startNomadOrSkip(ctx: Context, config: PluginConfigInput = {}, opts: { baseDir?: string } = {}): Promise<NomadLikeClient> {
  skipUnless(ctx, isRoot(), 'integration tests need root (namespaces, cgroups, setuid)');
  const nomad = testClient(opts);
  const reason = nomad.cgroups.skipReason;
  if (reason !== null) await nomad.cleanup();
  skipUnless(ctx, reason === null, reason ?? '');
  await nomad.startPlugin(config);
  return nomad;
}
