/**
 * Time from exec of the plugin executable to its go-plugin handshake line,
 * as Nomad pays it (twice per agent start, just to read the plugin's info).
 * `node dist/tools/release/handshake-time.js [--runs N] EXECUTABLE`
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from '../../src/main/rpc/go-plugin';
import { procStat } from '../../src/shared/proc';

/** USER_HZ: /proc/<pid>/stat counts CPU time in these ticks on Linux. */
const TICK_MS = 10;

export interface HandshakeSample {
  /** exec to the handshake line on stdout (wall time: includes waiting for a CPU on a loaded host) */
  wallMs: number;
  /** CPU the plugin process had used by then (10 ms resolution) */
  cpuMs: number;
}

export function timeToHandshake(bin: string, env: NodeJS.ProcessEnv = process.env): Promise<HandshakeSample> {
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
        const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
        const st = procStat(child.pid ?? -1);
        const cpuMs = st ? (st.utimeTicks + st.stimeTicks) * TICK_MS : NaN;
        child.kill('SIGKILL');
        child.once('close', () => resolve({ wallMs, cpuMs }));
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
  const samples: HandshakeSample[] = [];
  for (let i = 0; i < runs; i++) samples.push(await timeToHandshake(bin));
  const ms = samples.map((s) => s.wallMs).sort((a, b) => a - b);
  const cpu = samples.map((s) => s.cpuMs).sort((a, b) => a - b);
  const mean = cpu.reduce((a, b) => a + b, 0) / cpu.length;
  process.stdout.write(`${bin}: ${runs} runs, time to handshake min ${ms[0]!.toFixed(1)} ms, p50 ${quantile(ms, 0.5).toFixed(1)} ms, p90 ${quantile(ms, 0.9).toFixed(1)} ms, max ${ms[ms.length - 1]!.toFixed(1)} ms; CPU used by then: mean ${mean.toFixed(0)} ms, p50 ${quantile(cpu, 0.5)} ms\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
