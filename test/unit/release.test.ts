/** Pure decisions of the release build, the Node check, doctor and the dashboard reader. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  artifactBaseName, checkVersion, controlFile, debFileName, debianVersion, productionClosure, releasePackageJson,
  shipsDistFile, shipsPackageFile, type PackageJson,
} from '../../tools/release/layout';
import { MIN_NODE_VERSION, nodeVersionProblem } from '../../src/main/node-version';
import { cgroupLine, doctorReport, favordynmodsLine, filesystemOf, installLine, kernelLine, landlockLines, stateDirLine, type DoctorInputs } from '../../src/cli/doctor';
import type { HostFacts } from '../../src/main/fingerprint';
import { layoutFromMounts, parseMountinfo } from '../../src/shared/cgroups/detect';
import { labelValuesMetric, metricNames } from '../harness/dashboard';
import { PROJECT_ROOT } from '../../src/native/binding';

const V1_MOUNTINFO = [
  '30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory',
  '31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct',
  '32 25 0:28 / /sys/fs/cgroup/freezer rw,nosuid - cgroup cgroup rw,freezer',
  '33 25 0:29 / /sys/fs/cgroup/cpuset rw,nosuid - cgroup cgroup rw,cpuset',
  '34 25 0:30 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw',
].join('\n');

function facts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    platform: 'linux',
    uid: 0,
    kernel: '6.12.9-amd64',
    landlockAbi: 6,
    landlockError: null,
    nativeError: null,
    initHelperError: null,
    cgroups: layoutFromMounts(parseMountinfo('29 25 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw')),
    v2Controllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'],
    ...over,
  };
}

describe('release layout (pure)', () => {
  it('accepts semantic versions only, since they become paths', () => {
    assert.equal(checkVersion('1.2.3'), '1.2.3');
    assert.equal(checkVersion('0.1.0-rc.1'), '0.1.0-rc.1');
    for (const bad of ['1.2', '../1.2.3', '1.2.3/x', '1.2.3 ', 'v1.2.3', '1.2.3-']) assert.throws(() => checkVersion(bad), /not a semantic version/, bad);
  });

  it('names the tarball and the .deb like upstream, with Debian ordering for pre-releases', () => {
    assert.equal(artifactBaseName('0.1.0'), 'nomad-driver-exec2-0.1.0-linux-x64');
    assert.equal(debianVersion('0.1.0'), '0.1.0-1');
    assert.equal(debianVersion('0.1.0-previous'), '0.1.0~previous-1');
    assert.equal(debFileName('1.0.0'), 'nomad-driver-exec2_1.0.0-1_amd64.deb');
  });

  it('ships compiled JS of src only, and no sources, maps or package tests', () => {
    assert.ok(shipsDistFile('dist/src/main/index.js'));
    for (const f of ['dist/src/main/index.js.map', 'dist/test/x.test.js', 'dist/bench/run.js', 'dist/tools/release/cli.js']) assert.ok(!shipsDistFile(f), f);
    assert.ok(shipsPackageFile('build/src/index.js'));
    assert.ok(shipsPackageFile('LICENSE'));
    assert.ok(shipsPackageFile('nice.linux-x64-gnu.node'));
    for (const f of ['index.d.ts', 'src/index.ts', 'index.js.map', 'test/perf/100k', 'node_modules/x/index.js', 'a.d.mts']) assert.ok(!shipsPackageFile(f), f);
    assert.ok(shipsPackageFile('lib/test/helper.js'), 'only top-level test dirs are dropped');
  });

  it('writes a package.json without scripts, dev or build-only dependencies', () => {
    const src: PackageJson = { name: 'nomad-driver-exec2', version: '0.1.0', scripts: { install: 'node-gyp rebuild' }, dependencies: { piscina: '^5', 'node-addon-api': '^8' }, devDependencies: { mocha: '^11' } };
    const out = releasePackageJson(src, '0.2.0');
    assert.equal(out.version, '0.2.0');
    assert.equal(out.scripts, undefined);
    assert.equal(out.devDependencies, undefined);
    assert.deepEqual(out.dependencies, { piscina: '^5' });
  });

  it('follows Node\'s resolution for the production closure', () => {
    const pkgs: Record<string, PackageJson> = {
      '/p/node_modules/a': { version: '1.0.0', dependencies: { b: '1', c: '1' } },
      '/p/node_modules/a/node_modules/b': { version: '2.0.0' },
      '/p/node_modules/b': { version: '1.0.0' },
      '/p/node_modules/c': { version: '1.0.0', optionalDependencies: { 'c-linux': '1', 'c-darwin': '1' } },
      '/p/node_modules/c-linux': { version: '1.0.0' },
      '/p/node_modules/node-addon-api': { version: '8.0.0' },
      '/p/node_modules/dev': { version: '1.0.0' },
    };
    const root: PackageJson = { version: '0.1.0', dependencies: { a: '1', 'node-addon-api': '8' }, devDependencies: { dev: '1' } };
    const closure = productionClosure('/p', root, (d) => d in pkgs, (d) => pkgs[d]!);
    assert.deepEqual(closure, ['node_modules/a', 'node_modules/a/node_modules/b', 'node_modules/c', 'node_modules/c-linux']);
    assert.throws(() => productionClosure('/p', { version: '0.1.0', dependencies: { missing: '1' } }, (d) => d in pkgs, (d) => pkgs[d]!), /"missing" .* not installed/);
  });

  it('declares Node and the addon\'s libraries in the control file', () => {
    const c = controlFile({ version: '0.1.0-rc.1', maintainer: 'M <m@x.invalid>', installedSizeKiB: 9000, shlibs: 'libc6 (>= 2.34), libstdc++6 (>= 11)', description: 'short' });
    assert.match(c, /^Package: nomad-driver-exec2$/m);
    assert.match(c, /^Version: 0\.1\.0~rc\.1-1$/m);
    assert.match(c, /^Architecture: amd64$/m);
    assert.match(c, /^Depends: nodejs \(>= 20\.19\), libc6 \(>= 2\.34\), libstdc\+\+6 \(>= 11\)$/m);
    assert.match(c, /^Description: short\n [^\n]+\n [^\n]+\n$/m);
  });
});

describe('Node version check (pure)', () => {
  it('matches package.json\'s engines field', () => {
    const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    assert.equal(pkg.engines.node, `>=${MIN_NODE_VERSION.replace(/\.0$/, '')}`);
  });

  it('accepts 20.19+ and later majors, refuses older with one line naming both', () => {
    for (const ok of ['20.19.0', 'v20.20.2', '22.1.0', '24.0.0']) assert.equal(nodeVersionProblem(ok), null, ok);
    for (const old of ['18.19.0', '20.18.3', '16.0.0']) {
      const p = nodeVersionProblem(old)!;
      assert.match(p, new RegExp(`^nomad-driver-exec2: Node\\.js ${old.replace(/\./g, '\\.')} found \\(.+\\), needs Node\\.js >= 20\\.19\\.0$`));
      assert.ok(!p.includes('\n'));
    }
    assert.match(nodeVersionProblem('garbage')!, /cannot read the Node\.js version "garbage"/);
  });
});

describe('doctor (pure)', () => {
  it('grades the kernel', () => {
    assert.equal(kernelLine('5.10.0-28-amd64').level, 'FAIL');
    assert.equal(kernelLine('5.13.0').level, 'WARN');
    assert.equal(kernelLine('6.1.0-18-amd64').level, 'OK');
  });

  it('explains Landlock and its scopes', () => {
    assert.deepEqual(landlockLines(facts()).map((l) => l.level), ['OK', 'OK']);
    assert.deepEqual(landlockLines(facts({ landlockAbi: 2 })).map((l) => l.level), ['OK', 'WARN']);
    const off = landlockLines(facts({ landlockAbi: 0, landlockError: 'EOPNOTSUPP' }));
    assert.equal(off.length, 1);
    assert.equal(off[0]!.level, 'FAIL');
    assert.match(off[0]!.text, /EOPNOTSUPP.*lsm=/);
  });

  it('checks the controllers of each cgroup mode and favordynmods where it matters', () => {
    assert.equal(cgroupLine(facts()).level, 'OK');
    assert.match(cgroupLine(facts({ v2Controllers: ['cpu'] })).text, /without controllers memory/);
    const hybrid = layoutFromMounts(parseMountinfo(V1_MOUNTINFO));
    assert.equal(cgroupLine(facts({ cgroups: hybrid })).level, 'OK');
    assert.match(cgroupLine(facts({ cgroups: hybrid })).text, /^hybrid/);
    assert.equal(favordynmodsLine(facts()).level, 'OK');
    assert.equal(favordynmodsLine(facts({ cgroups: hybrid })).level, 'WARN');
    assert.match(favordynmodsLine(facts({ cgroups: hybrid, kernel: '5.15.0' })).text, /before Linux 6\.0/);
    const withOpt = layoutFromMounts(parseMountinfo(V1_MOUNTINFO.replace('rw,memory', 'rw,memory,favordynmods')));
    assert.equal(favordynmodsLine(facts({ cgroups: withOpt })).level, 'OK');
  });

  it('finds the filesystem of state_dir by the longest mount point', () => {
    const mi = [
      '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
      '40 27 0:50 / /run rw,nosuid - tmpfs tmpfs rw',
      '41 40 0:51 / /run/lock rw - tmpfs tmpfs rw',
      '42 27 0:52 / /srv/my\\040dir rw - xfs /dev/vdb rw',
    ].join('\n');
    assert.equal(filesystemOf('/run/nomad-driver-exec2', mi), 'tmpfs');
    assert.equal(filesystemOf('/running/x', mi), 'ext4', 'a prefix of a name is not a parent');
    assert.equal(filesystemOf('/srv/my dir/state', mi), 'xfs');
    assert.equal(stateDirLine('/run/x', 'tmpfs').level, 'OK');
    assert.equal(stateDirLine('/var/x', 'ext4').level, 'WARN');
  });

  it('fails exactly when the fingerprint is not healthy, and says why', () => {
    const base: DoctorInputs = { facts: facts(), nodeVersion: '20.20.2', nodePath: '/usr/bin/node', stateDir: '/run/nomad-driver-exec2', stateDirFs: 'tmpfs', installFiles: [{ path: '/opt', uid: 0, mode: 0o40755, own: false }] };
    const ok = doctorReport(base);
    assert.ok(ok.every((l) => l.level === 'OK'), JSON.stringify(ok));
    assert.match(ok.at(-1)!.text, /healthy: "Healthy"/);
    const bad = doctorReport({ ...base, facts: facts({ initHelperError: 'init helper /x is missing or not executable (ENOENT)' }) });
    assert.equal(bad.find((l) => l.topic === 'init helper')!.level, 'FAIL');
    assert.equal(bad.at(-1)!.level, 'FAIL');
    assert.match(bad.at(-1)!.text, /unhealthy: "init helper \/x is missing/);
    const notRoot = doctorReport({ ...base, facts: facts({ uid: 1000 }) });
    assert.equal(notRoot[0]!.level, 'FAIL');
    assert.match(notRoot.at(-1)!.text, /undetected: "Driver must run as root"/);
    assert.equal(doctorReport({ ...base, nodeVersion: '18.19.0' }).find((l) => l.topic === 'node')!.level, 'FAIL');
  });
});

describe('doctor install check (pure)', () => {
  it('fails when root would run files others can change, warns for the directories above', () => {
    const f = (p: string, uid: number, mode: number, own = true) => ({ path: p, uid, mode, own });
    assert.equal(installLine([f('/opt', 0, 0o40755, false), f('/opt/x/build/Release/exec2-init', 0, 0o100755)]).level, 'OK');
    const w = installLine([f('/opt/x/build/Release/exec2-init', 0, 0o100775)]);
    assert.equal(w.level, 'FAIL');
    assert.match(w.text, /exec2-init \(uid 0, mode 775\)/);
    assert.equal(installLine([f('/opt/x/dist', 1000, 0o40755)]).level, 'FAIL', 'owned by another user');
    assert.equal(installLine([f('/', 0, 0o40777, false), f('/opt/x', 0, 0o40755)]).level, 'WARN');
  });
});

describe('dashboard reader (pure)', () => {
  it('finds metric names, not functions, labels, keywords, numbers or variables', () => {
    assert.deepEqual(
      metricNames('histogram_quantile(0.99, sum by (le, phase) (rate(exec2_launch_duration_seconds_bucket{job=~"$job", phase="spawn"}[$__rate_interval])))'),
      ['exec2_launch_duration_seconds_bucket'],
    );
    assert.deepEqual(metricNames('sum(rate(a_total[5m])) / on (instance) group_left (version) b_info * 1e3 > bool 0'), ['a_total', 'b_info']);
    assert.deepEqual(metricNames('max without (cpu) (node_x offset 5m) or vector(0)'), ['node_x']);
    assert.equal(labelValuesMetric('label_values(exec2_info{job=~"$job"}, instance)'), 'exec2_info');
    assert.equal(labelValuesMetric('label_values(job)'), null);
  });
});
