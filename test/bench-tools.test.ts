/**
 * The benchmark's own programs still build and behave on this machine, so
 * `npm run bench` does not rot between runs (it is not part of `npm test`).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, constants as C, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { buildGoShim, buildTool, GO_SHIM_INSTALL, missingGoPackages, TARGET_CFLAGS } from '../bench/tools';
import { loadNative } from '../src/native/binding';
import { isRoot, skipUnless } from './harness/skip';

describe('benchmark programs', function () {
  this.timeout(60_000);

  before(function () {
    let cc = true;
    try {
      execFileSync('cc', ['--version'], { stdio: 'ignore' });
    } catch {
      cc = false;
    }
    skipUnless(this, cc, 'no C compiler (apt-get install build-essential)');
  });

  it('the libc-free target prints CLOCK_MONOTONIC ns as it starts and exits 0', () => {
    const target = buildTool('target', true, TARGET_CFLAGS);
    const before = process.hrtime.bigint();
    const r = spawnSync(target, [], { encoding: 'utf8' });
    const after = process.hrtime.bigint();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+\n$/);
    const t = BigInt(r.stdout.trim());
    assert.ok(t > before && t < after, `target clock ${t} outside [${before}, ${after}]`);
    // Static and without a program interpreter: nothing runs before _start.
    const headers = execFileSync('readelf', ['-lW', target], { encoding: 'utf8' });
    assert.doesNotMatch(headers, /INTERP/);
  });

  it('the target reports a failed write with exit status 1', () => {
    const target = buildTool('target', true, TARGET_CFLAGS);
    const r = spawnSync('/bin/sh', ['-c', `exec "${target}" >&-`]);
    assert.equal(r.status, 1);
  });
});

/** Everything a non-blocking FIFO reader fd holds now (the writer has exited). */
function drain(fd: number): string {
  const buf = Buffer.alloc(65536);
  let out = '';
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw err;
    }
    if (n === 0) break;
    out += buf.subarray(0, n).toString('utf8');
  }
  return out;
}

/**
 * Baseline 2g of the bench, "exec2 chain (Go shim, faithful)": bench/goshim
 * builds offline from Debian's Go packages and runs a task through
 * unshare -> go-shim exec2-shim -> task as the bench does. Not a core suite:
 * the bench's own setup installs the Go packages and CI need not, so this
 * may SKIP under CI=true (it says so).
 */
describe('benchmark Go shim (baseline 2g)', function () {
  this.timeout(300_000);
  let shim = '';
  const NOBODY = 65534;

  before(function () {
    const missing = missingGoPackages();
    skipUnless(this, missing.length === 0, `Debian's Go packages missing (${missing.join(' ')}); not a core suite, so it may SKIP under CI=true; install with: ${GO_SHIM_INSTALL}`, { core: false });
    const b = buildGoShim({ install: false, log: () => undefined });
    if (!b.ok) throw new Error(b.reason); // the packages are there: a failed build is a defect
    shim = b.path;
  });

  it('links the plugin stack: run without Nomad\'s handshake it answers as a go-plugin plugin (exit 1)', () => {
    const r = spawnSync(shim, [], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /This binary is a plugin/);
  });

  it('refuses a shim call without a command (exit 40) and an unopenable log FIFO (exit 41)', () => {
    assert.equal(spawnSync(shim, ['exec2-shim', 'true', '/nonexistent/a', '/nonexistent/b']).status, 40);
    assert.equal(spawnSync(shim, ['exec2-shim', 'true', '/nonexistent/a', '/nonexistent/b', '--', '/bin/true']).status, 41);
  });

  it('runs one task through unshare as a task user: FIFOs, Landlock enforced, exit code and status file', function () {
    skipUnless(this, isRoot(), 'needs root (unshare --setuid, pid namespace)', { core: false });
    skipUnless(this, loadNative().landlockAbi().abi >= 1, 'Landlock unavailable on this kernel (the shim is mandatory-mode)', { core: false });
    const dir = mkdtempSync('/tmp/exec2-goshim-');
    const fds: number[] = [];
    try {
      chmodSync(dir, 0o755);
      const taskDir = path.join(dir, 'local');
      mkdirSync(taskDir, { mode: 0o777 });
      chmodSync(taskDir, 0o777);
      const allowed = path.join(dir, 'allowed.txt'), secret = path.join(dir, 'secret.txt');
      writeFileSync(allowed, 'visible\n', { mode: 0o644 });
      writeFileSync(secret, 'hidden\n', { mode: 0o644 }); // readable by mode bits: only Landlock stops it
      const out = path.join(dir, 'out.fifo'), err = path.join(dir, 'err.fifo');
      for (const f of [out, err]) {
        execFileSync('mkfifo', ['-m', '0666', f]);
        fds.push(openSync(f, C.O_RDONLY | C.O_NONBLOCK));
      }
      const script = `cat ${allowed}; cat ${secret} || echo denied; echo made > ${taskDir}/made; exit 3`;
      const r = spawnSync('/usr/bin/unshare', ['--ipc', '--pid', '--mount-proc', '--fork', '--kill-child=SIGKILL', `--setuid=${NOBODY}`, `--setgid=${NOBODY}`, '--',
        shim, 'exec2-shim', 'true', out, err, `r:${allowed}`, `rwc:${taskDir}`, '--', '/bin/sh', '-c', script], {
        // stdio /dev/null as exec2's driver gives it: the default rules name /dev/stdin and
        // /dev/stdout, which Landlock cannot take when they are pipes (EBADFD)
        cwd: taskDir, env: { PATH: '/usr/bin:/bin', NOMAD_TASK_DIR: taskDir }, encoding: 'utf8', stdio: 'ignore',
      });
      const stdout = drain(fds[0]!), stderr = drain(fds[1]!);
      assert.equal(r.status, 3, `chain exit ${r.status}, task stderr: ${stderr}`);
      assert.equal(stdout, 'visible\ndenied\n');
      assert.match(stderr, /secret\.txt: Permission denied/);
      assert.equal(readFileSync(path.join(taskDir, '.exit_status.txt'), 'utf8'), '3');
      assert.ok(existsSync(path.join(taskDir, 'made')), 'rwc: on the task dir lets the task create a file');
    } finally {
      for (const fd of fds) closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
