/**
 * The release as an operator installs it. `npm run release`'s builder runs
 * once (two versions from one compile: A, labelled older, and B, this
 * version); then the tarball is unpacked into an empty directory and the
 * plugin runs from there through the Nomad-like harness with only `node`
 * and `readlink` on PATH, a bare environment, and the source tree and its
 * node_modules hidden under empty read-only mounts in the plugin's mount
 * namespace. A task started by A is recovered by B after the plugin_dir
 * link moves to B and A's directory is deleted. The .deb installs into a
 * throwaway root with dpkg --root, its Depends checked against this host's
 * real packages, and the plugin runs from the installed path, across a
 * package upgrade, until the package is removed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ClientReadableStream } from '@grpc/grpc-js';
import type { NomadLikeClient, PreparedTask } from '../src/client/nomad-client';
import { testClient } from './harness/client';
import { call, PluginProcess } from '../src/client/plugin-process';
import { FingerprintResponse_HealthState as Health, TaskState, type FingerprintResponse, type TaskHandle } from '../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { PROJECT_ROOT } from '../src/native/binding';
import { PLUGIN_VERSION } from '../src/main/version';
import { artifactBaseName, DEB_LIB_DIR, debFileName, NOMAD_PLUGIN_DIR, PACKAGE_NAME } from '../tools/release/layout';
import { isRoot, skipUnless } from './harness/skip';

const VERSION_B = PLUGIN_VERSION;
const VERSION_A = `${PLUGIN_VERSION.replace(/-.*$/, '')}-previous`;

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Inherit-nothing start of the plugin, as a Nomad client on a bare host would. */
interface Installed {
  /** what the harness starts: the hide wrapper, then the plugin at `target` */
  bin: string;
  env: NodeJS.ProcessEnv;
}

function firstFingerprint(p: PluginProcess): Promise<FingerprintResponse> {
  return new Promise((resolve, reject) => {
    const s: ClientReadableStream<FingerprintResponse> = p.driver.fingerprint({});
    s.once('data', (fp: FingerprintResponse) => {
      resolve(fp);
      s.cancel();
    });
    s.once('error', (err: Error & { code?: number }) => {
      if (err.code !== 1) reject(err); // 1 = CANCELLED, ours
    });
  });
}

describe('release: the artifact and the .deb, installed and run like on a client', function () {
  this.timeout(600_000);
  let out: string;
  let work: string;
  let pathDir: string;
  let hideSh: string;
  let nomadBase: string;
  let hidden: string[];

  before(function () {
    skipUnless(this, isRoot(), 'release tests need root (dpkg --root, mounts, the plugin)');
    for (const tool of ['git', 'tar', 'gzip', 'dpkg-deb', 'dpkg-shlibdeps', 'dpkg', 'unshare', 'mount', 'sha256sum']) {
      skipUnless(this, which(tool) !== null, `${tool} is not installed (the release build and install need it: apt-get install dpkg-dev util-linux coreutils tar)`);
    }
    skipUnless(this, existsSync(path.join(PROJECT_ROOT, '.git')), `${PROJECT_ROOT} is not a git checkout (the release builds the tracked files)`);
    out = mkdtempSync(path.join(os.tmpdir(), 'exec2-release-out-'));
    work = mkdtempSync(path.join(os.tmpdir(), 'exec2-release-work-'));
    chmodSync(work, 0o755);
    // The builder exactly as `npm run release` runs it, after its tsc step.
    const r = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'dist/tools/release/cli.js'), '--out', out, '--version', VERSION_A, '--version', VERSION_B], { encoding: 'utf8', maxBuffer: 16 << 20 });
    assert.equal(r.status, 0, `release build failed:\n${r.stderr}`);

    // PATH of the client: node and what the launcher uses, nothing else.
    pathDir = path.join(work, 'path');
    mkdirSync(pathDir);
    symlinkSync(realpathSync(process.execPath), path.join(pathDir, 'node'));
    symlinkSync(realpathSync(which('readlink')!), path.join(pathDir, 'readlink'));

    // The source tree and the node_modules it uses disappear for the plugin.
    hidden = [realpathSync(PROJECT_ROOT)];
    const modules = realpathSync(path.join(PROJECT_ROOT, 'node_modules'));
    if (!modules.startsWith(`${hidden[0]}/`)) hidden.push(modules);
    // They go into shell scripts in single quotes.
    for (const p of [...hidden, work, out]) assert.ok(!p.includes("'"), `path with a quote: ${p}`);
    hideSh = path.join(work, 'hide-source.sh');
    const mountBin = which('mount')!;
    writeFileSync(hideSh, [
      '#!/bin/sh',
      '# $@: the program to run with the source tree hidden (same pid: every step execs).',
      ...hidden.map((h) => `${mountBin} -t tmpfs -o ro,size=4k,mode=0555 exec2-hidden-source '${h}' || exit 97`),
      'exec "$@"',
      '',
    ].join('\n'));
    chmodSync(hideSh, 0o755);

    // Nomad's alloc dirs live on a shared mount so that the bind mounts the
    // harness makes for each task reach the plugin's slave mount namespace.
    nomadBase = path.join(work, 'nomad');
    mkdirSync(nomadBase);
    execFileSync(mountBin, ['--bind', nomadBase, nomadBase]);
    execFileSync(mountBin, ['--make-shared', nomadBase]);
  });

  after(function () {
    if (nomadBase) spawnSync('umount', ['-l', nomadBase]);
    if (work) rmSync(work, { recursive: true, force: true });
    if (out) rmSync(out, { recursive: true, force: true });
  });

  /** A start command for the plugin at `target` (a launcher, or a link to one). */
  function installed(name: string, target: string): Installed {
    const bin = path.join(work, `start-${name}.sh`);
    writeFileSync(bin, `#!/bin/sh\nexec ${which('unshare')} --mount --propagation slave ${hideSh} '${target}' "$@"\n`);
    chmodSync(bin, 0o755);
    return { bin, env: { PATH: pathDir } };
  }

  async function startPlugin(nomad: NomadLikeClient, inst: Installed): Promise<void> {
    nomad.plugin = await PluginProcess.start({ bin: inst.bin, env: inst.env, replaceEnv: true });
    await nomad.configure();
  }

  const pluginVersion = async (p: PluginProcess): Promise<string> => (await call(p.base, p.base.pluginInfo, {})).pluginVersion;

  function unpack(version: string, into: string): string {
    mkdirSync(into, { recursive: true });
    execFileSync('tar', ['-xzf', path.join(out, `${artifactBaseName(version)}.tar.gz`), '-C', into]);
    return path.join(into, artifactBaseName(version));
  }

  it('writes each tarball with a SHA-256 sum file that sha256sum -c accepts', () => {
    for (const v of [VERSION_A, VERSION_B]) {
      for (const f of [`${artifactBaseName(v)}.tar.gz`, debFileName(v)]) {
        const r = spawnSync('sha256sum', ['-c', `${f}.sha256`], { cwd: out, encoding: 'utf8' });
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.match(r.stdout, new RegExp(`^${f.replace(/[.+]/g, '\\$&')}: OK$`, 'm'));
      }
    }
  });

  it('holds the compiled JS, the prebuilt natives, production dependencies and the launcher, nothing else', () => {
    const base = artifactBaseName(VERSION_B);
    const list = execFileSync('tar', ['-tzvf', path.join(out, `${base}.tar.gz`)], { encoding: 'utf8', maxBuffer: 16 << 20 }).trim().split('\n');
    const names = list.map((l) => l.split(/\s+/).slice(5).join(' ').replace(/ -> .*$/, ''));
    assert.ok(names.every((n) => n === `${base}/` || n.startsWith(`${base}/`)), 'everything below one versioned directory');
    const rel = new Set(names.map((n) => n.slice(base.length + 1)));
    for (const need of ['bin/nomad-driver-exec2', 'build/Release/exec2_native.node', 'build/Release/exec2-init', 'dist/src/main/index.js', 'dist/src/workers/launch-worker.js', 'dist/src/cli/doctor.js', 'package.json', 'docs/operators.md', 'docs/grafana-dashboard.json']) {
      assert.ok(rel.has(need), `missing ${need}`);
    }
    const modes = new Map(list.map((l) => [l.split(/\s+/).slice(5).join(' ').slice(base.length + 1), l.split(/\s+/)[0]!]));
    for (const x of ['bin/nomad-driver-exec2', 'build/Release/exec2-init']) assert.match(modes.get(x)!, /^-rwxr-xr-x$/, `${x} executable`);
    assert.ok(list.every((l) => /\s0\/0\s/.test(l)), 'owned by 0/0');
    const files = [...rel];
    assert.deepEqual(files.filter((f) => /\.(ts|map)$/.test(f) && !f.endsWith('.d.ts')), [], 'no TypeScript sources or source maps');
    assert.deepEqual(files.filter((f) => /^(src|test|bench|native|tools|proto|dist\/test|dist\/bench|dist\/tools|build\/Release\/obj\.target)\//.test(f)), [], 'no sources, tests, bench or build intermediates');
    for (const dev of ['typescript', 'mocha', 'node-gyp', '@bufbuild/buf', 'ts-proto', '@types/mocha', 'node-addon-api']) {
      assert.ok(!files.some((f) => f.startsWith(`node_modules/${dev}/`)), `${dev} must not ship`);
    }
    const dir = unpack(VERSION_B, path.join(work, 'inspect'));
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(pkg.version, VERSION_B);
    assert.equal(pkg.scripts, undefined, 'no install scripts: nothing builds on a client');
    assert.equal(pkg.devDependencies, undefined);
    for (const dep of Object.keys(pkg.dependencies as Record<string, string>)) assert.ok(existsSync(path.join(dir, 'node_modules', dep, 'package.json')), `dependency ${dep} bundled`);
    rmSync(path.join(work, 'inspect'), { recursive: true, force: true });
  });

  describe('the unpacked tarball', () => {
    let nomad: NomadLikeClient;
    let dirA: string;
    let dirB: string;
    let pluginDir: string;
    let viaPluginDir: Installed;

    before(async function () {
      // Two versions side by side under /opt-like roots, as an operator keeps them.
      dirA = unpack(VERSION_A, path.join(work, 'opt-a'));
      dirB = unpack(VERSION_B, path.join(work, 'opt-b'));
      pluginDir = path.join(work, 'plugins');
      mkdirSync(pluginDir);
      symlinkSync(path.join(dirA, 'bin', PACKAGE_NAME), path.join(pluginDir, PACKAGE_NAME));
      viaPluginDir = installed('plugin-dir', path.join(pluginDir, PACKAGE_NAME));
      nomad = testClient({ baseDir: nomadBase });
      if (nomad.cgroups.skipReason) await nomad.cleanup();
      skipUnless(this, nomad.cgroups.skipReason === null, nomad.cgroups.skipReason ?? '');
    });

    after(async () => {
      if (nomad) assert.deepEqual(await nomad.cleanup(), [], 'cgroups left behind');
    });

    it('sees neither the source tree nor build tools from inside the plugin\'s view', () => {
      const probe = [...hidden.map((h) => `test ! -e '${h}/package.json' || { echo "visible: ${h}"; exit 1; }`), 'for t in cc gcc make python3 npm npx git node-gyp; do if command -v $t; then exit 1; fi; done', 'command -v node'].join('; ');
      const r = spawnSync(which('unshare')!, ['--mount', '--propagation', 'slave', hideSh, '/bin/sh', '-c', probe], { env: { PATH: pathDir }, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.equal(r.stdout.trim(), path.join(pathDir, 'node'));
    });

    it('fails with one line naming both versions on a too-old Node, and one line when there is no node', () => {
      const fake = path.join(work, 'old-node.js');
      writeFileSync(fake, "Object.defineProperty(process.versions, 'node', { value: '18.19.0' });\n");
      const launcher = path.join(dirB, 'bin', PACKAGE_NAME);
      const old = spawnSync(launcher, [], { env: { PATH: pathDir, EXEC2_NODE_FLAGS: `--require ${fake}` }, encoding: 'utf8' });
      assert.equal(old.status, 1);
      assert.equal(old.stdout, '');
      assert.match(old.stderr, /^nomad-driver-exec2: Node\.js 18\.19\.0 found \(\/\S+\), needs Node\.js >= 20\.19\.0\n$/);
      const noNode = path.join(work, 'path-without-node');
      mkdirSync(noNode);
      symlinkSync(realpathSync(which('readlink')!), path.join(noNode, 'readlink'));
      const none = spawnSync(launcher, [], { env: { PATH: noNode }, encoding: 'utf8' });
      assert.equal(none.status, 1);
      assert.match(none.stderr, /^nomad-driver-exec2: Node\.js not found \(looked for "node" on PATH=\S+\), needs Node\.js >= 20\.19\.0; set EXEC2_NODE to its path\n$/);
    });

    it('hands Nomad its handshake, fingerprints healthy and runs a task; B recovers it after the upgrade with A deleted', async () => {
      await startPlugin(nomad, viaPluginDir);
      assert.equal(await pluginVersion(nomad.plugin), VERSION_A);
      const fp = await firstFingerprint(nomad.plugin);
      assert.equal(fp.health, Health.HEALTHY, fp.healthDescription);
      assert.equal(fp.attributes['driver.exec2.version']?.stringVal, VERSION_A);

      const { task, handle } = await nomad.run({ command: 'sh', args: ['-c', 'echo started-by-A; exec sleep 1000'] });
      await task.stdout!.waitFor(/started-by-A/);
      const id = task.config.id;
      const aPid = nomad.plugin.pid;
      await nomad.plugin.sigkill();
      assert.equal(existsSync(`/proc/${aPid}`), false, 'plugin A still alive');

      // The upgrade: plugin_dir's link moves to B, A's files go away.
      rmSync(path.join(pluginDir, PACKAGE_NAME));
      symlinkSync(path.join(dirB, 'bin', PACKAGE_NAME), path.join(pluginDir, PACKAGE_NAME));
      rmSync(dirA, { recursive: true, force: true });

      await startPlugin(nomad, viaPluginDir);
      assert.equal(await pluginVersion(nomad.plugin), VERSION_B);
      await nomad.recover(handle);
      assert.equal((await nomad.inspect(id)).task!.state, TaskState.RUNNING);
      const ex = await nomad.exec(id, ['sh', '-c', 'echo $((6 * 7))']);
      assert.equal(ex.result.exitCode, 0, ex.stderr);
      assert.equal(ex.stdout.trim(), '42');
      await nomad.stop(id, 1000, 'SIGTERM');
      const r = await nomad.finish(task);
      assert.equal(r.err, '');
      assert.equal(r.result.signal, 15, 'the task A started ends by B\'s stop');
    });

    it('doctor from the install says what the fingerprint says', async () => {
      const r = spawnSync(viaPluginDir.bin, ['doctor', '--state-dir', nomad.stateDir], { env: viaPluginDir.env, encoding: 'utf8' });
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines[0], `nomad-driver-exec2 ${VERSION_B} doctor`);
      const body = lines.slice(1);
      assert.ok(body.every((l) => /^(OK {2}|WARN|FAIL) {2}\S/.test(l)), `every line has a level:\n${r.stdout}`);
      const topics = body.map((l) => l.slice(6).trim().split(/\s{2,}/)[0]);
      assert.deepEqual(topics, ['user', 'kernel', 'landlock', 'landlock scopes', 'cgroups', 'favordynmods', 'state_dir', 'node', 'native addon', 'init helper', 'install', 'fingerprint']);
      // Unpacked by root from a tarball of 0/0 files with go-w modes: the install itself is safe.
      assert.match(body.find((l) => / install /.test(l))!, /^(OK|WARN) /);
      assert.equal(r.status, body.some((l) => l.startsWith('FAIL')) ? 1 : 0, 'exit status follows FAIL lines');
      const fp = await firstFingerprint(nomad.plugin);
      const verdict = body.at(-1)!;
      assert.ok(verdict.includes(`"${fp.healthDescription}"`), `doctor: ${verdict}; plugin: ${fp.healthDescription}`);
      assert.equal(verdict.startsWith('OK'), fp.health === Health.HEALTHY);
      assert.match(body.find((l) => l.includes(' node '))!, new RegExp(`^OK +node +Node\\.js ${process.versions.node.replace(/\./g, '\\.')} at `));
      const abi = fp.attributes['driver.exec2.landlock.abi']?.intVal;
      if (Number(abi) > 0) assert.match(body.find((l) => / landlock {2}/.test(l))!, new RegExp(`^OK +landlock +ABI ${abi}:`));
      assert.match(body.find((l) => / cgroups /.test(l))!, new RegExp(`${fp.attributes['driver.exec2.cgroup.mode']?.stringVal}`));
    });

    it('`run -- /bin/echo hi` from the install: no source tree, tests or dev dependencies needed, nothing left behind', () => {
      // A client host's PATH: coreutils and util-linux (mkfifo, mount) as
      // every Linux has, node from the PATH dir; the source tree hidden.
      const inst = installed('run-b', path.join(dirB, 'bin', PACKAGE_NAME));
      const runs = (): string[] => readdirSync('/run').filter((e) => e.startsWith('nomad-driver-exec2-run-'));
      const before = runs();
      const r = spawnSync(inst.bin, ['run', '--', '/bin/echo', 'hi'], { env: { PATH: `${pathDir}:/usr/sbin:/usr/bin:/sbin:/bin` }, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'hi\n');
      assert.match(r.stderr, /^exec2: exit 0, oom no, wall /m);
      assert.deepEqual(runs().filter((e) => !before.includes(e)), [], 'state or socket dirs left in /run');
    });
  });

  describe('the .deb in a throwaway root', () => {
    let nomad: NomadLikeClient;
    let root: string;

    /** An empty dpkg database; `status` stanzas stand for the packages the "system" has. */
    function dpkgRoot(name: string, status: string): string {
      const r = path.join(work, name);
      for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers']) mkdirSync(path.join(r, d), { recursive: true });
      writeFileSync(path.join(r, 'var/lib/dpkg/status'), status);
      writeFileSync(path.join(r, 'var/lib/dpkg/available'), '');
      return r;
    }

    const dpkg = (r: string, ...args: string[]): SpawnSyncReturns<string> =>
      spawnSync('dpkg', [`--root=${r}`, '--force-script-chrootless', ...args], { encoding: 'utf8', cwd: work });

    /** Package names in the .deb's Depends (no alternatives are used). */
    const depends = (deb: string): string[] =>
      execFileSync('dpkg-deb', ['-f', deb, 'Depends'], { encoding: 'utf8' }).split(',').map((d) => d.trim().split(' ')[0]!);

    before(async function () {
      // This host's own status stanzas for everything the package depends on:
      // the Depends line is checked against real versions, not forced.
      const deb = path.join(out, debFileName(VERSION_A));
      const deps = depends(deb);
      assert.ok(deps.includes('nodejs'), `Depends names nodejs: ${deps.join(', ')}`);
      const q = spawnSync('dpkg-query', ['-s', ...deps], { encoding: 'utf8' });
      skipUnless(this, q.status === 0, `this host lacks dpkg records for ${deps.join(', ')} (Node must come from a nodejs package for the Depends check): ${q.stderr.trim()}`);
      root = dpkgRoot('deb-root', `${q.stdout.trim()}\n\n`);
      nomad = testClient({ baseDir: nomadBase });
      if (nomad.cgroups.skipReason) await nomad.cleanup();
      skipUnless(this, nomad.cgroups.skipReason === null, nomad.cgroups.skipReason ?? '');
    });

    after(async () => {
      if (nomad) assert.deepEqual(await nomad.cleanup(), [], 'cgroups left behind');
    });

    it('declares Node: refused where nodejs is Debian 12\'s 18.19', () => {
      const hostNode = execFileSync('dpkg-query', ['-s', 'nodejs'], { encoding: 'utf8' });
      const old = dpkgRoot('deb-root-node18', `${hostNode.trim().replace(/^Version: .*$/m, 'Version: 18.19.0+dfsg-6~deb12u2')}\n\n`);
      const r = dpkg(old, '-i', path.join(out, debFileName(VERSION_B)));
      assert.notEqual(r.status, 0);
      assert.match(String(r.stderr), /depends on nodejs \(>= 20\.19\)/);
      assert.equal(existsSync(path.join(old, NOMAD_PLUGIN_DIR.slice(1), PACKAGE_NAME)), false, 'not configured, so not linked into plugin_dir');
    });

    it('installs into Nomad\'s default plugin_dir like upstream\'s package, runs from there, survives an upgrade and uninstalls', async () => {
      const a = dpkg(root, '-i', path.join(out, debFileName(VERSION_A)));
      assert.equal(a.status, 0, `${a.stdout}${a.stderr}`);
      const link = path.join(root, NOMAD_PLUGIN_DIR.slice(1), PACKAGE_NAME);
      assert.ok(lstatSync(link).isSymbolicLink());
      assert.equal(readlinkSync(link), `/usr/bin/${PACKAGE_NAME}`);
      const usrBin = path.join(root, 'usr/bin', PACKAGE_NAME);
      assert.equal(realpathSync(usrBin), path.join(root, DEB_LIB_DIR, 'bin', PACKAGE_NAME));
      assert.ok(statSync(path.join(root, DEB_LIB_DIR, 'build/Release/exec2-init')).mode & 0o111);
      const verify = dpkg(root, '--verify', PACKAGE_NAME);
      assert.equal(verify.status, 0, `${verify.stdout}${verify.stderr}`);
      assert.equal(verify.stdout, '');

      // Inside `root`, plugin_dir's absolute link points to /usr/bin of the
      // real host; the installed path it names is root's /usr/bin entry.
      const inst = installed('deb', usrBin);
      await startPlugin(nomad, inst);
      assert.equal(await pluginVersion(nomad.plugin), VERSION_A);
      assert.equal((await firstFingerprint(nomad.plugin)).health, Health.HEALTHY);
      const { task, handle }: { task: PreparedTask; handle: TaskHandle } = await nomad.run({ command: 'sleep', args: ['1000'] });
      await nomad.plugin.sigkill();

      const b = dpkg(root, '-i', path.join(out, debFileName(VERSION_B)));
      assert.equal(b.status, 0, `${b.stdout}${b.stderr}`);
      assert.match(String(b.stdout), /Unpacking nomad-driver-exec2 \(\S+\) over \(\S+\)/);
      assert.equal(readlinkSync(link), `/usr/bin/${PACKAGE_NAME}`, 'still linked after the upgrade');
      await startPlugin(nomad, inst);
      assert.equal(await pluginVersion(nomad.plugin), VERSION_B);
      await nomad.recover(handle);
      assert.equal((await nomad.inspect(task.config.id)).task!.state, TaskState.RUNNING);
      await nomad.stop(task.config.id, 1000, 'SIGTERM');
      assert.equal((await nomad.finish(task)).result.signal, 15);
      await nomad.plugin.kill();

      const rm = dpkg(root, '-r', PACKAGE_NAME);
      assert.equal(rm.status, 0, `${rm.stdout}${rm.stderr}`);
      assert.equal(existsSync(link) || lstatSync(path.dirname(link)).isSymbolicLink(), false, 'plugin_dir link removed');
      assert.equal(existsSync(path.join(root, DEB_LIB_DIR)), false, 'installed tree removed');
      assert.equal(existsSync(usrBin), false);
    });
  });
});
