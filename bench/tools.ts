/**
 * Small pieces of the benchmark: building the C programs, the posix_spawn
 * helper process, percentiles, /proc readings.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { procStat } from '../src/shared/proc';
import { PROJECT_ROOT } from '../src/native/binding';

export const BENCH_SRC = path.join(PROJECT_ROOT, 'bench');
export const BENCH_BUILD = path.join(PROJECT_ROOT, 'build', 'bench');

/**
 * cc -O2 [-static] bench/<name>.c -> build/bench/<name>, when missing or older
 * than the source. `extra`: more compiler flags (the target is built without libc).
 */
export function buildTool(name: string, isStatic = true, extra: string[] = []): string {
  const out = path.join(BENCH_BUILD, name);
  const src = path.join(BENCH_SRC, `${name}.c`);
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(BENCH_BUILD, { recursive: true });
    execFileSync('cc', ['-O2', '-Wall', ...(isStatic ? ['-static'] : []), ...extra, '-o', out, src], { stdio: 'inherit' });
  }
  return out;
}

// ------------------------------------------------------------------ the Go shim (bench/goshim/)

/**
 * Debian's packages the Go shim builds from (offline, GOPATH mode against
 * /usr/share/gocode): the compiler and the dependency kind the official
 * driver links (gRPC + protobuf, go-plugin, hclog, msgpack, HCL, version,
 * multierror, uuid; x/sys for the raw Landlock syscalls).
 */
export const GO_SHIM_PACKAGES = [
  'golang-go', 'golang-google-grpc-dev', 'golang-google-protobuf-dev', 'golang-github-hashicorp-go-plugin-dev',
  'golang-github-hashicorp-go-hclog-dev', 'golang-golang-x-sys-dev', 'golang-github-hashicorp-go-msgpack-dev',
  'golang-github-hashicorp-hcl-v2-dev', 'golang-github-hashicorp-go-version-dev', 'golang-github-hashicorp-go-multierror-dev',
  'golang-github-hashicorp-go-uuid-dev',
];
export const GO_SHIM_INSTALL = `apt-get update && apt-get install -y --no-install-recommends ${GO_SHIM_PACKAGES.join(' ')}`;
export const GO_SHIM_SRC = path.join(BENCH_SRC, 'goshim');
export const GO_SHIM_BIN = path.join(BENCH_BUILD, 'go-shim');

/** Which of GO_SHIM_PACKAGES dpkg does not have installed. */
export function missingGoPackages(): string[] {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\n', ...GO_SHIM_PACKAGES], { encoding: 'utf8' });
  if (r.error) return [...GO_SHIM_PACKAGES]; // no dpkg: nothing can be known installed
  const installed = new Set(r.stdout.split('\n').filter((l) => l.endsWith(' installed')).map((l) => l.split(' ')[0]));
  return GO_SHIM_PACKAGES.filter((p) => !installed.has(p));
}

function aptInstall(log: (s: string) => void): boolean {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): boolean => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...GO_SHIM_PACKAGES], { env, stdio: ['ignore', 'ignore', 'inherit'] }).status === 0;
  if (install()) return true;
  // A stale or missing package list is the usual reason: refresh it once.
  log('  apt-get install failed; apt-get update and one more try');
  if (spawnSync('apt-get', ['update'], { env, stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) return false;
  return install();
}

export type GoShimBuild = { ok: true; path: string; bytes: number; goVersion: string } | { ok: false; reason: string };

/**
 * The Go shim binary, built into build/bench/go-shim when missing or older
 * than a source file. With `install`, missing Debian packages are installed
 * first (the bench runs as root); otherwise, or when that fails, the reason
 * with the install command is returned, never a throw: the baseline is
 * optional, the rest of the bench goes on without it.
 */
export function buildGoShim(opts: { install: boolean; log: (s: string) => void }): GoShimBuild {
  let missing = missingGoPackages();
  if (missing.length && opts.install) {
    opts.log(`Go shim baseline: installing ${missing.join(' ')} (apt-get, once)`);
    if (aptInstall(opts.log)) missing = missingGoPackages();
  }
  if (missing.length) return { ok: false, reason: `Debian's Go packages missing (${missing.join(' ')}); install them with: ${GO_SHIM_INSTALL}` };
  const env = {
    ...process.env,
    // Offline, from Debian's sources only: GOPATH mode over /usr/share/gocode, no module proxy.
    GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOPROXY: 'off', GOFLAGS: '', GOTOOLCHAIN: 'local',
    // syscall.AllThreadsSyscall (Landlock on every thread) refuses to run in a cgo binary.
    CGO_ENABLED: '0',
    // Go's own cache (~/.cache/go-build) survives `node-gyp rebuild`, which deletes build/.
    ...(process.env.GOCACHE || process.env.XDG_CACHE_HOME || process.env.HOME ? {} : { GOCACHE: path.join(BENCH_BUILD, 'go-cache') }),
  };
  const goVersion = spawnSync('go', ['version'], { env, encoding: 'utf8' });
  if (goVersion.status !== 0) return { ok: false, reason: `\`go version\` failed (${goVersion.error?.message ?? goVersion.stderr.trim()}); install with: ${GO_SHIM_INSTALL}` };
  const newest = Math.max(...readdirSync(GO_SHIM_SRC).filter((f) => f.endsWith('.go')).map((f) => statSync(path.join(GO_SHIM_SRC, f)).mtimeMs));
  if (!existsSync(GO_SHIM_BIN) || statSync(GO_SHIM_BIN).mtimeMs < newest) {
    mkdirSync(BENCH_BUILD, { recursive: true });
    opts.log('Go shim baseline: building build/bench/go-shim (the first build takes about a minute)');
    const b = spawnSync('go', ['build', '-trimpath', '-o', GO_SHIM_BIN, '.'], { cwd: GO_SHIM_SRC, env, encoding: 'utf8' });
    if (b.status !== 0) return { ok: false, reason: `go build of bench/goshim failed: ${(b.stderr || b.error?.message || '').trim().split('\n').slice(0, 5).join(' | ')}` };
  }
  return { ok: true, path: GO_SHIM_BIN, bytes: statSync(GO_SHIM_BIN).size, goVersion: goVersion.stdout.trim() };
}

/** How the libc-free target is built (see bench/target.c). */
export const TARGET_CFLAGS = ['-nostdlib', '-fno-stack-protector', '-fno-asynchronous-unwind-tables'];

export interface SpawnReply {
  t0: bigint;
  t2: bigint;
  status: number;
  output: string;
}

/**
 * The posix_spawn helper (bench/spawner.c): one long-lived process, requests
 * over a pipe, so baselines are launched without forking Node.
 */
export class Spawner {
  private readonly child: ChildProcess;
  private readonly pending: Array<(line: string) => void> = [];
  private exited = false;

  constructor(bin: string, warmProcsFiles: [string, string] | null) {
    // detached: not in the terminal's process group, so a Ctrl-C reaches
    // only the bench, which then shuts everything down in order.
    this.child = spawn(bin, warmProcsFiles ?? ['', ''], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    this.child.on('exit', () => {
      this.exited = true;
      for (const p of this.pending.splice(0)) p('error helper exited');
    });
    readline.createInterface({ input: this.child.stdout! }).on('line', (l) => this.pending.shift()?.(l));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  private request(fields: string[]): Promise<string> {
    if (this.exited) return Promise.reject(new Error('spawn helper has exited'));
    for (const f of fields) if (/[\t\n]/.test(f)) throw new Error(`field with TAB or newline: ${JSON.stringify(f)}`);
    return new Promise((resolve, reject) => {
      this.pending.push((line) => (line.startsWith('error') ? reject(new Error(`spawner: ${line}`)) : resolve(line)));
      this.child.stdin!.write(`${fields.join('\t')}\n`);
    });
  }

  /**
   * posix_spawn argv; `openWrite`: paths the helper opens write-only (as
   * root, before t0) and hands to the program as fds 3, 4, ... in order.
   */
  async spawn(argv: string[], opts: { stdout: 'pipe' | 'null'; cwd?: string; env: string[]; openWrite?: string[] }): Promise<SpawnReply> {
    const open = opts.openWrite ?? [];
    const line = await this.request(['S', opts.stdout, opts.cwd ?? '', String(opts.env.length), ...opts.env, String(open.length), ...open, ...argv]);
    const m = /^(\d+) (\d+) (\d+) ?(.*)$/.exec(line);
    if (!m) throw new Error(`spawner: bad reply ${line}`);
    return { t0: BigInt(m[1]!), t2: BigInt(m[2]!), status: Number(m[3]), output: m[4]!.trim() };
  }

  /** One cgroup v1 migration of the helper itself (see spawner.c). */
  async warm(): Promise<number> {
    return Number(await this.request(['W']));
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(t);
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

export interface Pct {
  n: number;
  p1: number;
  p10: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles. */
export function percentiles(xs: number[]): Pct {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]! : NaN);
  return { n: s.length, p1: at(0.01), p10: at(0.1), p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s[s.length - 1] ?? NaN, mean: s.reduce((a, b) => a + b, 0) / (s.length || 1) };
}

/** utime + stime of a process (all threads, not children), in clock ticks (USER_HZ = 100). */
export function cpuTicks(pid: number): number {
  const s = procStat(pid);
  if (!s) throw new Error(`process ${pid} is gone`);
  return s.utimeTicks + s.stimeTicks;
}

/** VmRSS of a process, MB. */
export function vmRssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const now = (): bigint => process.hrtime.bigint();
export const usSince = (t0: bigint, t1: bigint): number => Number(t1 - t0) / 1000;

/** Run `fn` over items with at most `conc` in flight. */
export async function pool<T>(items: T[], conc: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(conc, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}
