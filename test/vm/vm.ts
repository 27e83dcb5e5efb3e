/**
 * Runs a command inside a throwaway qemu guest with a PURE cgroup v2
 * hierarchy: what the driver meets on a real Nomad client, which this hybrid
 * (cgroup v1) development machine cannot show.
 *
 * The guest boots a Debian kernel (the distribution's 6.1, or the
 * bookworm-backports 6.12 that test/vm/setup.sh fetches) with a tiny busybox
 * initramfs built here (test/vm/guest-init.sh is its /init). Its root is the
 * host's / over virtio-9p, read-only, under an overlay with a tmpfs upper
 * layer: node, python3 and the rest of the host are there, and nothing the
 * guest does reaches the host, except in the shares: host directories mounted
 * read-write at the same path (the checkout, so dist/ and build/Release are
 * the ones built on the host). The command runs as root in the root cgroup,
 * with fresh tmpfs on /run and /tmp.
 *
 * Host side: the control directory (9p tag exec2ctl) carries the command and
 * gets its exit status back; its stdout and stderr come through two
 * virtio-serial ports connected to unix sockets we listen on; the serial
 * console goes to a log file whose text is returned (the runner prints it on failure).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const GUEST_INIT = path.resolve(__dirname, '../../../test/vm/guest-init.sh');
export const SETUP_COMMAND = 'test/vm/setup.sh';

/** Exit status of runInVm when the VM itself failed (no status from the guest). */
export const VM_FAILED = 125;
/** Exit status of runInVm when the timeout killed the VM. */
export const VM_TIMEOUT = 124;

export type KernelName = 'default' | 'bpo';

export interface VmKernel {
  name: KernelName;
  /** e.g. 6.1.0-50-amd64 */
  release: string;
  /** bzImage */
  image: string;
  /** /lib/modules/<release> of that kernel */
  modules: string;
  /** what the suite expects of it */
  landlockAbi: number;
}

export function cacheDir(): string {
  const want = process.env.EXEC2_VM_CACHE ?? '/var/cache/exec2-vm';
  try {
    mkdirSync(want, { recursive: true });
    accessSync(want, constants.W_OK);
    return want;
  } catch {
    const fallback = path.join(os.tmpdir(), `exec2-vm-cache-${process.getuid?.() ?? 0}`);
    mkdirSync(fallback, { recursive: true });
    return fallback;
  }
}

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir || '.', cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[^0-9]+/).filter(Boolean).map(Number);
  const pb = b.split(/[^0-9]+/).filter(Boolean).map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d) return d;
  }
  return 0;
}

/**
 * The kernel to boot, or why there is none. `default` is the one
 * linux-image-amd64 depends on (else the newest /boot/vmlinuz-6.1*), `bpo` the
 * one test/vm/setup.sh unpacked into the cache (kernels/bpo.env).
 */
export function findKernel(name: KernelName): { kernel: VmKernel } | { problem: string } {
  if (name === 'bpo') {
    const manifest = path.join(process.env.EXEC2_VM_CACHE ?? '/var/cache/exec2-vm', 'kernels', 'bpo.env');
    if (!existsSync(manifest)) return { problem: `the bookworm-backports kernel has not been fetched (no ${manifest})` };
    const env = new Map(readFileSync(manifest, 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]));
    const image = env.get('KERNEL') ?? '';
    const modules = env.get('MODULES') ?? '';
    if (!existsSync(image) || !existsSync(path.join(modules, 'modules.dep'))) return { problem: `${manifest} names a kernel that is not there (${image})` };
    return { kernel: { name, release: env.get('RELEASE') ?? path.basename(modules), image, modules, landlockAbi: 6 } };
  }
  let release = '';
  try {
    const deps = execFileSync('dpkg-query', ['-W', '-f=${Depends}', 'linux-image-amd64'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    release = /linux-image-(\d[^\s,(]*)/.exec(deps)?.[1] ?? '';
  } catch {
    // not installed through the meta package: look in /boot
  }
  if (!release || !existsSync(`/boot/vmlinuz-${release}`)) {
    const found = existsSync('/boot') ? readdirSync('/boot').filter((f) => /^vmlinuz-6\.1\.\d+-\d+-amd64$/.test(f)) : [];
    found.sort((a, b) => compareVersions(a, b));
    release = found.length ? found[found.length - 1]!.slice('vmlinuz-'.length) : '';
  }
  if (!release) return { problem: 'no Debian 6.1 kernel in /boot (linux-image-amd64 is not installed)' };
  const modules = `/lib/modules/${release}`;
  if (!existsSync(path.join(modules, 'modules.dep'))) return { problem: `no ${modules}/modules.dep` };
  return { kernel: { name, release, image: `/boot/vmlinuz-${release}`, modules, landlockAbi: 2 } };
}

/** What is missing on this host to boot a VM at all (empty: nothing). */
export function missingTools(): string[] {
  const missing: string[] = [];
  if (!which('qemu-system-x86_64')) missing.push('qemu-system-x86_64 (package qemu-system-x86)');
  if (!existsSync('/bin/busybox') && !which('busybox')) missing.push('busybox (package busybox-static)');
  if (!which('xz')) missing.push('xz (package xz-utils)');
  return missing;
}

// ---------------------------------------------------------------------------
// initramfs: busybox, guest-init.sh and the modules the root needs, in newc
// cpio form (written here, no cpio(1) needed), cached by content.

/** Modules for 9p, overlay and the virtio transports; `?`: fine if absent. */
const GUEST_MODULES = ['virtio_pci', 'virtio_console', '9pnet_virtio', '9p', 'overlay', 'virtio_rng?'];

class Cpio {
  private chunks: Buffer[] = [];
  private ino = 1;

  private entry(name: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0]): void {
    const fields = [this.ino++, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], Buffer.byteLength(name) + 1, 0];
    const header = '070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
    const pad = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);
    const head = Buffer.from(`${header}${name}\0`);
    this.chunks.push(head, pad(head.length), data, pad(data.length));
  }

  dir(name: string): void {
    this.entry(name, 0o040755, Buffer.alloc(0));
  }

  file(name: string, data: Buffer, perm = 0o644): void {
    this.entry(name, 0o100000 | perm, data);
  }

  symlink(name: string, target: string): void {
    this.entry(name, 0o120777, Buffer.from(target));
  }

  chardev(name: string, major: number, minor: number): void {
    this.entry(name, 0o020600, Buffer.alloc(0), [major, minor]);
  }

  finish(): Buffer {
    this.entry('TRAILER!!!', 0, Buffer.alloc(0));
    return Buffer.concat(this.chunks);
  }
}

function readModule(file: string): Buffer {
  if (file.endsWith('.ko')) return readFileSync(file);
  const tool = file.endsWith('.xz') ? ['xz', '-dc'] : file.endsWith('.zst') ? ['zstd', '-qdc'] : file.endsWith('.gz') ? ['gzip', '-dc'] : null;
  if (!tool) throw new Error(`unknown module compression: ${file}`);
  return execFileSync(tool[0]!, [...tool.slice(1), file], { maxBuffer: 256 << 20 });
}

/** Module files (relative to moduleDir) in load order, dependencies first. */
function resolveModules(moduleDir: string): string[] {
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of readFileSync(path.join(moduleDir, 'modules.dep'), 'utf8').split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const file = line.slice(0, colon);
    deps.set(file, line.slice(colon + 1).trim().split(/\s+/).filter(Boolean));
    byName.set(path.basename(file).replace(/\.ko(\.\w+)?$/, '').replace(/-/g, '_'), file);
  }
  const builtin = existsSync(path.join(moduleDir, 'modules.builtin'))
    ? new Set(readFileSync(path.join(moduleDir, 'modules.builtin'), 'utf8').split('\n').map((f) => path.basename(f).replace(/\.ko$/, '').replace(/-/g, '_')))
    : new Set<string>();
  const order: string[] = [];
  const visit = (file: string): void => {
    if (order.includes(file)) return;
    for (const d of deps.get(file) ?? []) visit(d);
    order.push(file);
  };
  for (const want of GUEST_MODULES) {
    const optional = want.endsWith('?');
    const name = want.replace(/\?$/, '');
    const file = byName.get(name);
    if (file) visit(file);
    else if (!builtin.has(name) && !optional) throw new Error(`kernel module ${name} is neither in ${moduleDir}/modules.dep nor built in`);
  }
  return order;
}

function busyboxPath(): string {
  const p = which('busybox') ?? '/bin/busybox';
  // a dynamically linked busybox would need the host's libc in the initramfs
  const elf = readFileSync(p).subarray(0, 4096);
  if (elf.includes(Buffer.from('ld-linux'))) throw new Error(`${p} is not static (apt-get install busybox-static)`);
  return p;
}

function fileKey(p: string): string {
  const s = statSync(p);
  return `${p}:${s.size}:${s.mtimeMs}`;
}

/** Atomically write a cache file (concurrent runners each write their own temp). */
function writeCacheFile(file: string, data: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

export function initramfs(kernel: VmKernel): string {
  const busybox = busyboxPath();
  const init = readFileSync(GUEST_INIT);
  const key = createHash('sha256')
    .update(['initramfs v1', GUEST_MODULES.join(','), fileKey(path.join(kernel.modules, 'modules.dep')), fileKey(busybox)].join('\n'))
    .update(init)
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(cacheDir(), 'initramfs');
  const file = path.join(dir, `${kernel.release}-${key}.cpio`);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  for (const old of readdirSync(dir)) if (old.startsWith(`${kernel.release}-`)) rmSync(path.join(dir, old), { force: true });

  const cpio = new Cpio();
  for (const d of ['bin', 'dev', 'proc', 'sys', 'ctl', 'lower', 'upper', 'root', 'modules']) cpio.dir(d);
  cpio.chardev('dev/console', 5, 1);
  cpio.file('bin/busybox', readFileSync(busybox), 0o755);
  cpio.symlink('bin/sh', 'busybox');
  cpio.file('init', init, 0o755);
  const order: string[] = [];
  for (const rel of resolveModules(kernel.modules)) {
    const name = path.basename(rel).replace(/\.ko(\.\w+)?$/, '.ko');
    cpio.file(`modules/${name}`, readModule(path.join(kernel.modules, rel)));
    order.push(name);
  }
  cpio.file('modules/order', Buffer.from(order.map((m) => `${m}\n`).join('')));
  writeCacheFile(file, cpio.finish());
  return file;
}

/**
 * The uncompressed ELF vmlinux inside a bzImage, cached: qemu boots it
 * through its PVH entry, which skips the in-guest decompression (seconds
 * under TCG). null when it cannot be extracted (then the bzImage is booted).
 */
export function vmlinux(kernel: VmKernel): string | null {
  const s = statSync(kernel.image);
  const dir = path.join(cacheDir(), 'vmlinux');
  const file = path.join(dir, `vmlinux-${kernel.release}-${s.size}-${Math.floor(s.mtimeMs)}`);
  if (existsSync(file)) return file;
  if (existsSync(`${file}.unusable`)) return null;
  mkdirSync(dir, { recursive: true });
  const image = readFileSync(kernel.image);
  const formats: Array<[Buffer, string[]]> = [
    [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), ['xz', '-dc']],
    [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), ['zstd', '-qdc']],
    [Buffer.from([0x1f, 0x8b, 0x08]), ['gzip', '-dc']],
  ];
  for (const [magic, tool] of formats) {
    if (!which(tool[0]!)) continue;
    for (let off = image.indexOf(magic), tries = 0; off >= 0 && tries < 3; off = image.indexOf(magic, off + 1), tries++) {
      let out: Buffer;
      try {
        // trailing data after the stream makes the tools complain: keep what they decoded
        out = execFileSync(tool[0]!, tool.slice(1), { input: image.subarray(off), maxBuffer: 512 << 20, stdio: ['pipe', 'pipe', 'ignore'] });
      } catch (err) {
        out = ((err as { stdout?: Buffer }).stdout) ?? Buffer.alloc(0);
      }
      if (out.length > 1 << 20 && out.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
        writeCacheFile(file, out);
        return file;
      }
    }
  }
  writeFileSync(`${file}.unusable`, '');
  return null;
}

// ---------------------------------------------------------------------------

export interface RunOptions {
  kernel: VmKernel;
  /** argv, run through the host's bash in the guest */
  command: string[];
  /** host directories mounted read-write at the same path */
  shares?: string[];
  /** guest working directory (default: the first share, else process.cwd()) */
  cwd?: string;
  env?: Record<string, string>;
  /** kill the VM after this long (exit status 124) */
  timeoutMs?: number;
  memMb?: number;
  cpus?: number;
  /** stream the guest's output as it comes (it is collected as well) */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** kernel log on the console, and the qemu command line, to stderr */
  verbose?: boolean;
}

export interface RunResult {
  /** the command's exit status; 124 timeout, 125 the VM failed */
  status: number;
  stdout: string;
  stderr: string;
  /** wall time from spawning qemu to its exit */
  wallMs: number;
  /** guest uptime when the command started: boot time, qemu start excluded */
  bootMs: number | null;
  accel: 'kvm' | 'tcg';
  /** the serial console (kernel log, init's messages) */
  console: string;
  /** set when status is 124 or 125: what went wrong */
  failure: string | null;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function pickAccel(): 'kvm' | 'tcg' {
  const want = process.env.EXEC2_VM_ACCEL ?? 'auto';
  if (want === 'kvm' || want === 'tcg') return want;
  // A PVM-only /dev/kvm (kvm_pvm) cannot run a stock kernel at a usable speed:
  // only hardware virtualisation counts.
  const hw = existsSync('/sys/module/kvm_intel') || existsSync('/sys/module/kvm_amd');
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return hw ? 'kvm' : 'tcg';
  } catch {
    return 'tcg';
  }
}

function listen(sock: string, sink: Buffer[], forward?: (b: Buffer) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((c) => {
      c.on('data', (b: Buffer) => {
        sink.push(b);
        forward?.(b);
      });
      c.on('error', () => undefined);
    });
    server.once('error', reject);
    server.listen(sock, () => resolve(server));
  });
}

/** Wait for every accepted connection of `server` to end (qemu has exited). */
function drain(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      server.getConnections((_e, n) => (n ? setTimeout(check, 10) : resolve()));
    };
    server.close();
    check();
  });
}

export async function runInVm(opts: RunOptions): Promise<RunResult> {
  const shares = (opts.shares ?? []).map((s) => path.resolve(s));
  const cwd = opts.cwd ?? shares[0] ?? process.cwd();
  const accel = pickAccel();
  const base = (failure: string): RunResult => ({ status: VM_FAILED, stdout: '', stderr: '', wallMs: 0, bootMs: null, accel, console: '', failure });
  const missing = missingTools();
  if (missing.length) return base(`missing: ${missing.join(', ')}`);

  let initrd: string;
  let boot: string;
  try {
    initrd = initramfs(opts.kernel);
    boot = vmlinux(opts.kernel) ?? opts.kernel.image;
  } catch (err) {
    return base(`cannot prepare the boot files: ${(err as Error).message}`);
  }

  // sockets: short path (108-byte limit), private directory
  const run = mkdtempSync(path.join(os.tmpdir(), 'exec2-vm-'));
  const ctl = path.join(run, 'ctl');
  mkdirSync(ctl);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    USER: 'root',
    LOGNAME: 'root',
    LANG: process.env.LANG ?? 'C.UTF-8',
    TERM: 'dumb',
    EXEC2_VM: opts.kernel.name,
    EXEC2_VM_KERNEL: opts.kernel.release,
    EXEC2_VM_LANDLOCK_ABI: String(opts.kernel.landlockAbi),
    ...(process.env.CI ? { CI: process.env.CI } : {}),
    ...opts.env,
  };
  writeFileSync(
    path.join(ctl, 'cmd.sh'),
    [
      ...Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`),
      `cd ${shellQuote(cwd)} || { echo "exec2-vm: cannot cd to ${cwd.replace(/["$`\\]/g, '')}" >&2; exit 125; }`,
      `exec ${opts.command.map(shellQuote).join(' ')}`,
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(ctl, 'env'), `VM_SHARES=${shellQuote(shares.join(':'))}\nVM_DEBUG=${opts.verbose ? 1 : 0}\n`);

  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const outSock = path.join(run, 'out.sock');
  const errSock = path.join(run, 'err.sock');
  const servers = [await listen(outSock, out, opts.onStdout), await listen(errSock, err, opts.onStderr)];
  const consoleLog = path.join(run, 'console.log');

  const qboot = '/usr/share/qemu/qboot.rom'; // minimal firmware: ~0.5 s less than SeaBIOS under TCG
  const append = [
    'console=ttyS0', opts.verbose ? 'loglevel=7' : 'quiet loglevel=4', 'panic=-1', 'oops=panic', 'rdinit=/init',
    'cgroup_no_v1=all', 'cryptomgr.notests', '8250.nr_uarts=1', 'i8042.noaux', 'i8042.nokbd', 'i8042.nopnp', 'tsc=reliable', 'no_timer_check',
    `exec2vm.debug=${opts.verbose ? 1 : 0}`,
  ].join(' ');
  const args = [
    '-nodefaults', '-nographic', '-no-reboot', '-monitor', 'none', '-parallel', 'none',
    '-machine', 'pc', ...(existsSync(qboot) ? ['-bios', qboot] : []),
    // TCG emulates both vCPUs on one host thread unless EXEC2_VM_TCG_THREAD=multi:
    // with one thread per vCPU (MTTCG) the guests wedged now and then (a vCPU's
    // timer never fired: RCU stall and soft lockup on 6.1; an oops in a
    // live-patched instruction on 6.12) in two of five CI rehearsals, each
    // time right after the cgroup.kill test. Single-threaded, the 6.1 suite
    // took 131-133 s against ~120-130 s. The in-VM bench runs this way too.
    ...(accel === 'kvm' ? ['-enable-kvm', '-cpu', 'host'] : ['-accel', `tcg,thread=${process.env.EXEC2_VM_TCG_THREAD === 'multi' ? 'multi' : 'single'},tb-size=512`, '-cpu', 'max']),
    '-m', `${opts.memMb ?? 2048}`, '-smp', `${opts.cpus ?? 2}`,
    '-kernel', boot, '-initrd', initrd, '-append', append,
    '-chardev', `file,id=con,path=${consoleLog}`, '-serial', 'chardev:con',
    '-device', 'virtio-rng-pci',
    '-fsdev', `local,id=ctl,path=${ctl},security_model=none`, '-device', 'virtio-9p-pci,fsdev=ctl,mount_tag=exec2ctl',
    '-fsdev', 'local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap', '-device', 'virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot',
    ...shares.flatMap((s, i) => ['-fsdev', `local,id=share${i},path=${s},security_model=none,multidevs=remap`, '-device', `virtio-9p-pci,fsdev=share${i},mount_tag=share${i}`]),
    '-device', 'virtio-serial-pci,max_ports=4',
    '-chardev', `socket,id=out,path=${outSock}`, '-device', 'virtserialport,chardev=out,name=exec2.stdout',
    '-chardev', `socket,id=err,path=${errSock}`, '-device', 'virtserialport,chardev=err,name=exec2.stderr',
  ];
  if (opts.verbose) process.stderr.write(`exec2-vm: qemu-system-x86_64 ${args.map(shellQuote).join(' ')}\n`);

  const t0 = Date.now();
  const qemuOut: Buffer[] = [];
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  qemu.stdout.on('data', (b: Buffer) => qemuOut.push(b));
  qemu.stderr.on('data', (b: Buffer) => qemuOut.push(b));
  let timedOut = false;
  const timer = opts.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        qemu.kill('SIGKILL');
      }, opts.timeoutMs)
    : null;
  // -v: follow the console log
  let consolePos = 0;
  const follow = (): void => {
    try {
      const fd = openSync(consoleLog, 'r');
      const buf = Buffer.alloc(65536);
      for (let n; (n = readSync(fd, buf, 0, buf.length, consolePos)) > 0; consolePos += n) process.stderr.write(buf.subarray(0, n));
      closeSync(fd);
    } catch {
      // not there yet
    }
  };
  const tail = opts.verbose ? setInterval(follow, 200) : null;
  // Ctrl-C / SIGTERM of the runner: take the VM down with us.
  const onSignal = (sig: NodeJS.Signals): void => {
    qemu.kill('SIGKILL');
    rmSync(run, { recursive: true, force: true });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    qemu.once('error', (e) => resolve({ code: null, signal: null, error: e }));
    qemu.once('close', (code, signal) => resolve({ code, signal }));
  });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const wallMs = Date.now() - t0;
  if (timer) clearTimeout(timer);
  await Promise.all(servers.map(drain));
  if (tail) {
    clearInterval(tail);
    follow();
  }

  const consoleText = existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8') : '';
  const statusFile = path.join(ctl, 'status');
  const statusText = existsSync(statusFile) ? readFileSync(statusFile, 'utf8').trim() : '';
  const uptime = /exec2-vm: command starts at uptime ([\d.]+)/.exec(consoleText);
  rmSync(run, { recursive: true, force: true });

  let status: number;
  let failure: string | null = null;
  const qemuText = Buffer.concat(qemuOut).toString('utf8').trim();
  if (timedOut) {
    status = VM_TIMEOUT;
    failure = `timed out after ${opts.timeoutMs} ms`;
  } else if (/^\d+$/.test(statusText)) {
    status = Number(statusText);
    const fatal = /exec2-vm\[init\]: FATAL: (.*)/.exec(consoleText);
    if (fatal) failure = `guest init: ${fatal[1]}`;
  } else {
    status = VM_FAILED;
    failure = exit.error
      ? `cannot run qemu-system-x86_64: ${exit.error.message}`
      : `the VM stopped without an exit status (qemu ${exit.signal ?? `exit ${exit.code}`})${qemuText ? `: ${qemuText}` : ''}`;
  }
  return {
    status,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
    wallMs,
    bootMs: uptime ? Math.round(Number(uptime[1]) * 1000) : null,
    accel,
    console: consoleText,
    failure,
  };
}
