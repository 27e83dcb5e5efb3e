/**
 * Time from exec of the plugin executable to its go-plugin handshake line,
 * as Nomad pays it (twice per agent start, just to read the plugin's info).
 * `node dist/tools/release/handshake-time.js [--runs N] EXECUTABLE`
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from '../../src/main/go-plugin';

export function timeToHandshake(bin: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(bin, [], {
      env: { ...env, [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '2', PLUGIN_MIN_PORT: '10000', PLUGIN_MAX_PORT: '25000' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    let done = false;
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (!done && out.includes('\n')) {
        done = true;
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        child.kill('SIGKILL');
        child.once('close', () => resolve(ms));
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (!done) reject(new Error(`${bin} exited with ${code} before the handshake`));
    });
  });
}

export function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { runs: { type: 'string' } }, allowPositionals: true });
  const bin = positionals[0];
  if (!bin) throw new Error('usage: handshake-time [--runs N] EXECUTABLE');
  const runs = Number(values.runs ?? 20);
  await timeToHandshake(bin); // warm the page cache like a second agent start would
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) ms.push(await timeToHandshake(bin));
  ms.sort((a, b) => a - b);
  process.stdout.write(`${bin}: ${runs} runs, time to handshake min ${ms[0]!.toFixed(1)} ms, p50 ${quantile(ms, 0.5).toFixed(1)} ms, p90 ${quantile(ms, 0.9).toFixed(1)} ms, max ${ms[ms.length - 1]!.toFixed(1)} ms\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
