/**
 * node dist/bench/grpc-baseline.js [streams=1000]
 *
 * What grpc-js itself costs per held call, as a floor for the plugin's
 * per-task memory: a minimal grpc-js server (no driver code) in a node
 * started with bin/nomad-driver-exec2's V8 flags, on a unix socket, holding
 * N pending unary calls (as Nomad holds a WaitTask per task) and then N
 * server streams that each get a ~250-byte message per second (as a
 * TaskStats stream at 1 s). The server reports RSS and its GC'd heap per
 * phase; the differences per call are grpc-js's and http2's own bytes.
 * It also reports the server's CPU while it sends one message per stream
 * per second: the floor under the plugin's TaskStats CPU that is not ours.
 */
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';

const identity = {
  serialize: (b: Buffer): Buffer => b,
  deserialize: (b: Buffer): Buffer => b,
};
const service: grpc.ServiceDefinition = {
  hold: { path: '/baseline.B/Hold', requestStream: false, responseStream: false, requestSerialize: identity.serialize, requestDeserialize: identity.deserialize, responseSerialize: identity.serialize, responseDeserialize: identity.deserialize },
  stream: { path: '/baseline.B/Stream', requestStream: false, responseStream: true, requestSerialize: identity.serialize, requestDeserialize: identity.deserialize, responseSerialize: identity.serialize, responseDeserialize: identity.deserialize },
};

/** Same flags as bin/nomad-driver-exec2, plus --expose-gc to measure live memory. */
const FLAGS = ['--max-semi-space-size=2', '--optimize-for-size', '--expose-gc'];
const SAMPLE = Buffer.alloc(250, 1);

function serve(socket: string): void {
  const server = new grpc.Server();
  let held = 0;
  const streams = new Set<grpc.ServerWritableStream<Buffer, Buffer>>();
  server.addService(service, {
    hold: () => void held++, // never answered while the test runs
    stream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      streams.add(call);
      call.write(SAMPLE);
      call.on('cancelled', () => streams.delete(call));
    },
  });
  setInterval(() => {
    for (const s of streams) s.write(SAMPLE);
  }, 1000);
  server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) throw err;
    process.stdout.write('ready\n');
  });
  readline.createInterface({ input: process.stdin }).on('line', () => {
    const gc = (globalThis as unknown as { gc: () => void }).gc;
    gc();
    gc();
    const m = process.memoryUsage();
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
    process.stdout.write(`${JSON.stringify({ rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, held, streams: streams.size })}\n`);
  });
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 1000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'grpc-baseline-'));
  const socket = path.join(dir, 's');
  const child = spawn(process.execPath, [...FLAGS, __filename, '--serve', socket], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout });
  const next = (): Promise<string> => new Promise((resolve) => lines.once('line', resolve));
  await next();
  const Client = grpc.makeGenericClientConstructor(service, 'B');
  const client = new Client(`unix:${socket}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...a: unknown[]) => grpc.ClientReadableStream<Buffer>>;
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const measure = async (): Promise<{ rss: number; heapTotal: number; heapUsed: number; external: number }> => {
    const p = next();
    child.stdin.write('m\n');
    return JSON.parse(await p) as { rss: number; heapTotal: number; heapUsed: number; external: number };
  };
  // one call first, so the connection and the server's code paths exist in every phase
  client.hold!(Buffer.alloc(10), () => undefined);
  client.stream!(Buffer.alloc(10)).on('data', () => undefined).on('error', () => undefined);
  await sleep(1500);
  const m0 = await measure();
  for (let i = 0; i < n; i++) client.hold!(Buffer.alloc(10), () => undefined);
  await sleep(2000);
  const m1 = await measure();
  const streams = Array.from({ length: n }, () => client.stream!(Buffer.alloc(10)).on('data', () => undefined).on('error', () => undefined));
  await sleep(3000);
  // the server's CPU (all threads) while it sends one message per stream per second
  const ticks = (): number => {
    const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]);
  };
  const c0 = ticks(), w0 = Date.now();
  await sleep(10_000);
  const cpuPct = ((ticks() - c0) / 100 / ((Date.now() - w0) / 1000)) * 100;
  const m2 = await measure();
  const per = (a: typeof m0, b: typeof m0): string =>
    `RSS ${((b.rss - a.rss) / n).toFixed(0)} B, heap used ${((b.heapUsed - a.heapUsed) / n).toFixed(0)} B, heap total ${((b.heapTotal - a.heapTotal) / n).toFixed(0)} B, external ${((b.external - a.external) / n).toFixed(0)} B`;
  process.stdout.write(`minimal grpc-js server (node ${process.version}, ${FLAGS.join(' ')}), unix socket, ${n} calls each:\n`);
  process.stdout.write(`  at start: RSS ${(m0.rss / 1048576).toFixed(1)} MB, heap used ${(m0.heapUsed / 1048576).toFixed(1)} MB\n`);
  process.stdout.write(`  per pending unary call (WaitTask-like):   ${per(m0, m1)}\n`);
  process.stdout.write(`  per server stream, 250 B/s (TaskStats-like): ${per(m1, m2)}\n`);
  process.stdout.write(`  server CPU sending ${n} messages/s (one per stream): ${cpuPct.toFixed(1)} % of one core (load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')})\n`);
  for (const s of streams) s.cancel();
  client.close();
  child.kill();
  rmSync(dir, { recursive: true, force: true });
}

if (process.argv[2] === '--serve') serve(process.argv[3]!);
else main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
