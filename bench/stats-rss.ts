/**
 * node --experimental-websocket dist/bench/stats-rss.js [tasks=1000] [--snapshots] [--no-wait] [--stats-window=10]
 *
 * Where the plugin's memory goes per running task, phase by phase: after
 * start-up, with N `sleep` tasks running, with a WaitTask pending for each
 * (as Nomad always holds one), and with a TaskStats stream each at 1 s.
 * The plugin runs with --inspect on loopback (extra flags from
 * EXEC2_NODE_FLAGS are kept), so at each phase this tool forces a full GC in
 * every isolate and reads the main isolate's heap spaces, external and
 * ArrayBuffer memory, each worker isolate's heap, and the process's RSS
 * split (RssAnon/RssFile). With --snapshots it also takes a heap snapshot of
 * the main isolate per phase and prints the per-task bytes by constructor
 * between phases. For finding what a task costs; the bench's stats row
 * (npm run bench -- --only=stats) is the figure judged against the target.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { NomadLikeClient } from '../src/client/nomad-client';
import { freePort, httpGet } from '../src/client/net-util';
import { makeSlots, taskConfig, closeSlot, type Slot } from './fixtures';
import { pool, sleep, BENCH_BUILD } from './tools';

const args = process.argv.slice(2);
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 1000);
const SNAPSHOTS = args.includes('--snapshots');
const NO_WAIT = args.includes('--no-wait');
/** launches (StartTask + WaitTask + DestroyTask of /bin/true, half at concurrency 8, half at 32) before the tasks start, as the bench's throughput rows run before its stats row */
const BURST = Number(args.find((a) => a.startsWith('--burst='))?.slice(8) ?? 0);
/** at the end, ask glibc (through gdb) to return free heap pages: how much RSS is malloc's free memory */
const TRIM = args.includes('--trim');
const WINDOW_S = Number(args.find((a) => a.startsWith('--stats-window='))?.slice(15) ?? 10);

interface MinimalWs {
  onopen: (() => void) | null;
  onmessage: ((ev: { data: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(): void;
}

/** A Chrome DevTools Protocol session on the plugin's main isolate (and its workers through NodeWorker). */
class Cdp {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners: Array<(method: string, params: Record<string, unknown>) => void> = [];
  private constructor(private readonly ws: MinimalWs) {
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: Record<string, unknown> };
      if (m.id !== undefined) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) p?.reject(new Error(m.error.message));
        else p?.resolve(m.result);
      } else if (m.method) {
        for (const l of this.listeners) l(m.method, m.params ?? {});
      }
    };
  }

  static async connect(port: number): Promise<Cdp> {
    const list = JSON.parse((await httpGet(`http://127.0.0.1:${port}/json/list`)).body) as Array<{ webSocketDebuggerUrl: string }>;
    const Ws = (globalThis as unknown as { WebSocket?: new (url: string) => MinimalWs }).WebSocket;
    if (!Ws) throw new Error('run with node --experimental-websocket (Node 20)');
    const ws = new Ws(list[0]!.webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = (e) => reject(new Error(`inspector websocket: ${String(e)}`));
    });
    return new Cdp(ws);
  }

  on(fn: (method: string, params: Record<string, unknown>) => void): void {
    this.listeners.push(fn);
  }

  send<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject }));
  }

  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send<{ result: { value: T }; exceptionDetails?: unknown }>('Runtime.evaluate', { expression, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`evaluate failed: ${JSON.stringify(r.exceptionDetails)}`);
    return r.result.value;
  }

  /** A heap snapshot of the main isolate (it starts with a full GC). */
  async snapshot(): Promise<string> {
    const chunks: string[] = [];
    const on = (method: string, params: Record<string, unknown>): void => {
      if (method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(params.chunk as string);
    };
    this.listeners.push(on);
    await this.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    this.listeners.splice(this.listeners.indexOf(on), 1);
    return chunks.join('');
  }

  close(): void {
    this.ws.close();
  }
}

/** Per worker isolate: a sessionId and a promise-based request channel through NodeWorker. */
class Workers {
  private readonly sessions: string[] = [];
  private nextId = 1;
  private readonly pending = new Map<string, (v: unknown) => void>();
  private readonly chunks = new Map<string, string[]>();
  constructor(private readonly cdp: Cdp) {
    cdp.on((method, params) => {
      if (method === 'NodeWorker.attachedToWorker') this.sessions.push(params.sessionId as string);
      if (method === 'NodeWorker.receivedMessageFromWorker') {
        const m = JSON.parse(params.message as string) as { id?: number; result?: unknown; method?: string; params?: { chunk?: string } };
        if (m.method === 'HeapProfiler.addHeapSnapshotChunk') this.chunks.get(params.sessionId as string)?.push(m.params!.chunk!);
        if (m.id !== undefined) {
          const key = `${params.sessionId as string}/${m.id}`;
          this.pending.get(key)?.(m.result);
          this.pending.delete(key);
        }
      }
    });
  }

  async attach(): Promise<void> {
    await this.cdp.send('NodeWorker.enable', { waitForDebuggerOnStart: false });
    await sleep(300);
  }

  /**
   * `method` in every worker isolate; null for a worker that does not answer
   * within a second (piscina parks idle workers in Atomics.wait, where the
   * inspector's messages wait with them).
   */
  /** A heap snapshot of each worker isolate (null for a parked worker). */
  async snapshots(): Promise<Array<string | null>> {
    for (const id of this.sessions) this.chunks.set(id, []);
    const done = await this.each('HeapProfiler.takeHeapSnapshot', { reportProgress: false }, 60_000);
    const out = this.sessions.map((id, i) => (done[i] === null ? null : this.chunks.get(id)!.join('')));
    this.chunks.clear();
    return out;
  }

  async each<T>(method: string, params: Record<string, unknown> = {}, timeoutMs = 1000): Promise<Array<T | null>> {
    return Promise.all(this.sessions.map((sessionId) => {
      const id = this.nextId++;
      const p = new Promise<T | null>((resolve) => {
        const t = setTimeout(() => resolve(null), timeoutMs);
        this.pending.set(`${sessionId}/${id}`, (v) => {
          clearTimeout(t);
          resolve(v as T);
        });
      });
      void this.cdp.send('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id, method, params }) });
      return p;
    }));
  }
}

interface Phase {
  name: string;
  rssKb: number;
  rssAnonKb: number;
  rssFileKb: number;
  main: { heapUsed: number; heapTotal: number; external: number; arrayBuffers: number; spaces: Record<string, number> };
  workers: Array<{ usedSize: number; totalSize: number } | null>;
  fds: number;
  /** Rss kB per mapping (start address), with the mapping's name and size */
  maps: Map<string, { name: string; sizeKb: number; rssKb: number }>;
  snapshot?: Map<string, { count: number; bytes: number }>;
  workerSnapshot?: Map<string, { count: number; bytes: number }>;
}

function statusKb(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function smaps(pid: number): Phase['maps'] {
  const out: Phase['maps'] = new Map();
  let cur: { name: string; sizeKb: number; rssKb: number } | null = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { name: head[3] || '[anon]', sizeKb: (parseInt(head[2]!, 16) - parseInt(head[1]!, 16)) / 1024, rssKb: 0 };
      out.set(head[1]!, cur);
    } else if (cur && line.startsWith('Rss:')) {
      cur.rssKb = Number(/(\d+)/.exec(line)![1]);
    }
  }
  return out;
}

/** self size and count per "type:name" of a V8 heap snapshot. */
function aggregate(json: string): Map<string, { count: number; bytes: number }> {
  const s = JSON.parse(json) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const f = s.snapshot.meta.node_fields;
  const width = f.length;
  const iType = f.indexOf('type'), iName = f.indexOf('name'), iSize = f.indexOf('self_size');
  const types = s.snapshot.meta.node_types[0];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!]!;
    let name = s.strings[s.nodes[i + iName]!]!;
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number') name = '';
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}:${name}`;
    const o = out.get(key) ?? { count: 0, bytes: 0 };
    o.count++;
    o.bytes += s.nodes[i + iSize]!;
    out.set(key, o);
  }
  return out;
}

async function measure(name: string, pid: number, cdp: Cdp, workers: Workers): Promise<Phase> {
  // a full GC everywhere, twice (weak callbacks free more on the second)
  for (let i = 0; i < 2; i++) {
    await cdp.send('HeapProfiler.collectGarbage');
    await workers.each('HeapProfiler.collectGarbage');
  }
  await sleep(200);
  const main = await cdp.evaluate<Phase['main']>(`(() => {
    const v8 = process.mainModule.require('v8');
    const m = process.memoryUsage();
    const spaces = {};
    for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = s.space_used_size;
    return { heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, spaces };
  })()`);
  const w = await workers.each<{ usedSize: number; totalSize: number }>('Runtime.getHeapUsage');
  const p: Phase = {
    name, rssKb: statusKb(pid, 'VmRSS'), rssAnonKb: statusKb(pid, 'RssAnon'), rssFileKb: statusKb(pid, 'RssFile'),
    main, workers: w, maps: smaps(pid), fds: Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/^FDSize:\s+(\d+)/m)?.[1] ?? NaN),
  };
  if (SNAPSHOTS) {
    const snap = await cdp.snapshot();
    const file = path.join(BENCH_BUILD, `stats-rss-${name}.heapsnapshot`);
    writeFileSync(file, snap);
    p.snapshot = aggregate(snap);
    const ws = (await workers.snapshots()).filter((x): x is string => x !== null);
    if (ws.length) {
      writeFileSync(path.join(BENCH_BUILD, `stats-rss-${name}.worker0.heapsnapshot`), ws[0]!);
      const sum = new Map<string, { count: number; bytes: number }>();
      for (const w of ws) for (const [k, v] of aggregate(w)) {
        const o = sum.get(k) ?? { count: 0, bytes: 0 };
        o.count += v.count;
        o.bytes += v.bytes;
        sum.set(k, o);
      }
      p.workerSnapshot = sum;
    }
    // the snapshot itself grows the heap: GC again so the next phase starts clean
    await cdp.send('HeapProfiler.collectGarbage');
  }
  const mb = (b: number): string => (b / 1048576).toFixed(1);
  process.stdout.write(`${name.padEnd(14)} RSS ${(p.rssKb / 1024).toFixed(1)} MB (anon ${(p.rssAnonKb / 1024).toFixed(1)}, file ${(p.rssFileKb / 1024).toFixed(1)}) | main heap used ${mb(main.heapUsed)} / total ${mb(main.heapTotal)}, external ${mb(main.external)} (arrayBuffers ${mb(main.arrayBuffers)}) | workers ${w.map((x) => (x ? `${mb(x.usedSize)}/${mb(x.totalSize)}` : 'parked')).join(' ')}\n`);
  return p;
}

function diff(a: Phase, b: Phase, n: number): void {
  const kb = (x: number): string => `${((x * 1024) / n).toFixed(0).padStart(7)} B/task`;
  process.stdout.write(`\n${a.name} → ${b.name}, per task (${n}):\n`);
  process.stdout.write(`  RSS ${kb(b.rssKb - a.rssKb)}  anon ${kb(b.rssAnonKb - a.rssAnonKb)}  file ${kb(b.rssFileKb - a.rssFileKb)}\n`);
  const bytes = (x: number): string => `${(x / n).toFixed(0).padStart(7)} B/task`;
  process.stdout.write(`  main heap used ${bytes(b.main.heapUsed - a.main.heapUsed)}  heap total ${bytes(b.main.heapTotal - a.main.heapTotal)}  external ${bytes(b.main.external - a.main.external)}  arrayBuffers ${bytes(b.main.arrayBuffers - a.main.arrayBuffers)}\n`);
  for (const sp of Object.keys(b.main.spaces)) {
    const d = (b.main.spaces[sp] ?? 0) - (a.main.spaces[sp] ?? 0);
    if (Math.abs(d) / n >= 16) process.stdout.write(`    ${sp.padEnd(24)} ${bytes(d)}\n`);
  }
  const wsum = (p: Phase): number => p.workers.reduce((s, w) => s + (w?.totalSize ?? 0), 0);
  process.stdout.write(`  worker heaps total ${bytes(wsum(b) - wsum(a))}\n`);
  const heaps = b.main.heapTotal - a.main.heapTotal + wsum(b) - wsum(a) + (b.main.arrayBuffers - a.main.arrayBuffers);
  process.stdout.write(`  RSS not in V8 heaps or ArrayBuffers (malloc: native, grpc/http2, libuv) ${bytes((b.rssKb - a.rssKb) * 1024 - heaps)}\n`);
  // the mappings whose RSS grew most (V8 pages are 256 KiB anonymous chunks; glibc thread arenas are 64 MiB reservations)
  const grown: Array<[string, string, number, number]> = [];
  const bySize = new Map<string, number>();
  for (const [addr, m] of b.maps) {
    const d = m.rssKb - (a.maps.get(addr)?.rssKb ?? 0);
    grown.push([addr, m.name, m.sizeKb, d]);
    const cls = m.name !== '[anon]' ? m.name : m.sizeKb >= 32768 ? 'anon >= 32 MiB (malloc arena)' : m.sizeKb === 256 ? 'anon 256 KiB (V8 page)' : 'anon other';
    bySize.set(cls, (bySize.get(cls) ?? 0) + d);
  }
  for (const [addr, m] of a.maps) if (!b.maps.has(addr)) {
    const cls = m.name !== '[anon]' ? m.name : m.sizeKb >= 32768 ? 'anon >= 32 MiB (malloc arena)' : m.sizeKb === 256 ? 'anon 256 KiB (V8 page)' : 'anon other';
    bySize.set(cls, (bySize.get(cls) ?? 0) - m.rssKb);
  }
  process.stdout.write('  RSS growth by mapping class:\n');
  for (const [cls, d] of [...bySize].sort((x, y) => y[1] - x[1]).slice(0, 8)) if (d !== 0) process.stdout.write(`    ${cls.slice(0, 60).padEnd(62)} ${kb(d)}\n`);
  grown.sort((x, y) => y[3] - x[3]);
  process.stdout.write('  largest single mappings grown:\n');
  for (const [addr, name, size, d] of grown.slice(0, 6)) process.stdout.write(`    ${addr} ${name.slice(0, 40).padEnd(42)} size ${String(size).padStart(7)} kB  ${kb(d)}\n`);
  for (const [label, sa, sb] of [['main', a.snapshot, b.snapshot], ['workers', a.workerSnapshot, b.workerSnapshot]] as const) {
    if (!sa || !sb) continue;
    const rows: Array<[string, number, number]> = [];
    for (const [k, v] of sb) {
      const o = sa.get(k) ?? { count: 0, bytes: 0 };
      rows.push([k, v.count - o.count, v.bytes - o.bytes]);
    }
    rows.sort((x, y) => y[2] - x[2]);
    process.stdout.write(`  ${label} heap snapshot, self size by constructor:\n`);
    for (const [k, c, by] of rows.slice(0, 30)) process.stdout.write(`    ${k.padEnd(64)} ${(c / n).toFixed(2).padStart(7)} objs/task ${(by / n).toFixed(0).padStart(7)} B/task\n`);
  }
}

async function main(): Promise<void> {
  const nomad = new NomadLikeClient();
  const inspectPort = await freePort();
  const metricsPort = await freePort();
  const flags = `${process.env.EXEC2_NODE_FLAGS ?? ''} --inspect=127.0.0.1:${inspectPort}`.trim();
  mkdirSync(BENCH_BUILD, { recursive: true });
  await nomad.startPlugin({ metrics_address: `127.0.0.1:${metricsPort}` }, { env: { EXEC2_NODE_FLAGS: flags } });
  const pid = nomad.plugin.pid;
  let slots: Slot[] = [];
  const ids: string[] = [];
  try {
    process.stdout.write(`plugin pid ${pid}, flags: ${flags}\n`);
    await sleep(1000);
    const cdp = await Cdp.connect(inspectPort);
    const workers = new Workers(cdp);
    await workers.attach();
    slots = makeSlots(nomad, Math.max(N, 32), 'rs');
    let p0 = await measure('started', pid, cdp, workers);
    if (BURST > 0) {
      let left = BURST;
      for (const conc of [8, 32]) {
        let mine = conc === 8 ? Math.floor(BURST / 2) : left;
        left -= mine;
        await pool(slots.slice(0, conc), conc, async (slot) => {
          while (mine > 0) {
            mine--;
            const cfg = taskConfig(slot, '/bin/true');
            await nomad.startTask({ config: cfg } as never);
            await nomad.wait(cfg.id);
            await nomad.destroy(cfg.id, true);
          }
        });
      }
      const pb = await measure(`after-${BURST}`, pid, cdp, workers);
      diff(p0, pb, BURST);
      p0 = pb;
    }
    await pool(slots.slice(0, N), 8, async (slot) => {
      const cfg = taskConfig(slot, 'sleep', ['1000']);
      await nomad.startTask({ config: cfg } as never);
      ids.push(cfg.id);
    });
    await sleep(1000);
    const p1 = await measure('tasks', pid, cdp, workers);
    diff(p0, p1, N);
    let last = p1;
    const waits: Array<Promise<unknown>> = [];
    if (!NO_WAIT) {
      for (const id of ids) waits.push(nomad.wait(id).catch(() => undefined));
      await sleep(2000);
      const p2 = await measure('tasks+wait', pid, cdp, workers);
      diff(p1, p2, N);
      last = p2;
    }
    const streams = ids.map((id) => nomad.openStats(id, 1000).on('data', () => undefined).on('error', () => undefined));
    await sleep(WINDOW_S * 1000);
    const p3 = await measure('+stats', pid, cdp, workers);
    diff(last, p3, N);
    diff(p0, p3, N);
    if (TRIM) {
      const before = statusKb(pid, 'VmRSS');
      execFileSync('gdb', ['-p', String(pid), '-batch', '-ex', 'call (int)malloc_trim(0)'], { stdio: 'ignore' });
      await sleep(200);
      process.stdout.write(`\nmalloc_trim(0): RSS ${(before / 1024).toFixed(1)} → ${(statusKb(pid, 'VmRSS') / 1024).toFixed(1)} MB\n`);
    }
    for (const s of streams) s.cancel();
    cdp.close();
    await pool(ids, 16, async (id) => {
      await nomad.stop(id, 2000).catch(() => undefined);
      await nomad.destroy(id, true).catch(() => undefined);
    });
    await Promise.all(waits);
  } finally {
    for (const s of slots) closeSlot(s);
    await nomad.cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
