/**
 * Pure decisions behind the rows upstream exec2 and Nomad 2.x added (issue
 * 15): memory_max = -1, GOMAXPROCS, relative work_dir, the task's own
 * cgroup readable, the fingerprint's err field. No root needed.
 */
import assert from 'node:assert/strict';
import { limitFiles, MEMORY_NO_LIMIT } from '../../src/shared/cgroups/task-cgroup';
import { DEFAULT_PLUGIN_CONFIG } from '../../src/main/config/config';
import { DriverError } from '../../src/shared/errors';
import { fingerprintErr, fingerprintFailure, fingerprintFromFacts, type HostFacts } from '../../src/main/fingerprint';
import { gomaxprocs, memoryLimits } from '../../src/main/tasks/resources';
import { cgroupReadRules, resolveWorkDir, taskSandbox } from '../../src/main/tasks/sandbox';
import { cpuCount } from '../../src/shared/topology';
import { FingerprintResponse_HealthState as Health, TaskConfig } from '../../src/gen/hashicorp/nomad/plugins/drivers/driver';

const MiB = 1024 * 1024;

const throwsCode = (fn: () => unknown, code: string, re: RegExp): void => {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof DriverError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, re);
    return true;
  });
};

describe('memory limits (memory / memory_max as Nomad sends them)', () => {
  it('0 = memory is the hard limit; > 0 = oversubscription; -1 = no hard limit, memory is the reservation', () => {
    assert.deepEqual(memoryLimits(300, 0), { memoryMax: 300 * MiB, memoryLow: 0 });
    assert.deepEqual(memoryLimits(150, 250), { memoryMax: 250 * MiB, memoryLow: 150 * MiB });
    assert.deepEqual(memoryLimits(150, -1), { memoryMax: MEMORY_NO_LIMIT, memoryLow: 150 * MiB });
  });

  it('refuses values Nomad never sends instead of guessing', () => {
    throwsCode(() => memoryLimits(100, -2), 'INVALID_ARGUMENT', /memory_max_mb -2 is neither -1/);
  });

  it('writes memory.max = max and memory.low on v2; limit_in_bytes = -1 and the soft limit on v1', () => {
    const lim = { cpuQuotaUs: 0, cpuShares: 0, cpusetCpus: '', pidsMax: 0, ...memoryLimits(150, -1) };
    assert.deepEqual(limitFiles({ mode: 'v2', dir: '/c' }, lim), [
      ['/c', 'memory.low', String(150 * MiB)],
      ['/c', 'memory.max', 'max'],
    ]);
    assert.deepEqual(limitFiles({ mode: 'v1', created: [], dirs: { memory: '/mem' } }, lim), [
      ['/mem', 'memory.limit_in_bytes', '-1'],
      ['/mem', 'memory.soft_limit_in_bytes', String(150 * MiB)],
    ]);
  });
});

describe('GOMAXPROCS from the CPU share', () => {
  it('counts reserved cores, else rounds cpu MHz over MHz per core up, at least 1', () => {
    assert.equal(cpuCount('0-2,5'), 4);
    assert.equal(gomaxprocs('1', 2500, 2500), 1);
    assert.equal(gomaxprocs('0-3', 100, 2500), 4, 'reserved cores win over MHz');
    assert.equal(gomaxprocs('', 1000, 2500), 1);
    assert.equal(gomaxprocs('', 2501, 2500), 2);
    assert.equal(gomaxprocs('', 5000, 2500), 2);
    assert.equal(gomaxprocs('', 0, 2500), 1);
    assert.equal(gomaxprocs('', 1000, null), null, 'no topology: nothing to size from');
  });
});

describe('work_dir and the task cgroup in the sandbox', () => {
  const cfg = (env: Record<string, string> = {}, cpuMhz = 1000, cores = ''): TaskConfig => TaskConfig.fromPartial({
    id: 'a/t/1',
    name: 't',
    allocId: 'a',
    allocDir: '/data/alloc/a',
    user: 'nomad-80001',
    stdoutPath: '/data/alloc/a/alloc/logs/.t.stdout.fifo',
    stderrPath: '/data/alloc/a/alloc/logs/.t.stderr.fifo',
    env: { NOMAD_TASK_DIR: '/m/a-t/local', NOMAD_ALLOC_DIR: '/m/a-t/alloc', NOMAD_SECRETS_DIR: '/m/a-t/secrets', ...env },
    resources: { allocatedResources: { cpu: { cpuShares: cpuMhz } }, linuxResources: { cpuShares: cpuMhz, cpusetCpus: cores } },
  });
  const block = (workDir: string | null) => ({ unveil: [], workDir, oomScoreAdj: null, capAdd: [], capDrop: [] });
  const compute = { totalMhz: 10000, cores: 4, mhzPerCore: 2500, usableMhz: 10000 };
  const v1 = { mode: 'v1' as const, created: [], dirs: { cpuset: '/sys/fs/cgroup/cpuset/nomad/share', cpu: '/sys/fs/cgroup/cpu/nomad/a.t', memory: '/sys/fs/cgroup/memory/nomad/a.t' } };

  it('resolves a relative work_dir at the task dir, beneath its anchor', () => {
    assert.equal(resolveWorkDir(null, '/m/a-t'), '/m/a-t');
    assert.equal(resolveWorkDir('local', '/m/a-t'), '/m/a-t/local');
    assert.equal(resolveWorkDir('/srv/app', '/m/a-t'), '/srv/app');
    throwsCode(() => resolveWorkDir('../b-t', '/m/a-t'), 'INVALID_ARGUMENT', /"work_dir": "\.\.\/b-t" leaves the task directory/);
    // a handle written by hand gets the same checks as the job's config block
    throwsCode(() => resolveWorkDir('local/../../b-t', '/m/a-t'), 'INVALID_ARGUMENT', /leaves the task directory/);
    throwsCode(() => resolveWorkDir('/srv/a\0b', '/m/a-t'), 'INVALID_ARGUMENT', /"work_dir" contains a NUL byte/);
    const sb = taskSandbox(cfg(), block('local'), DEFAULT_PLUGIN_CONFIG);
    assert.equal(sb.cwd, '/m/a-t/local');
    // never through a symlink: the cwd is opened beneath an anchor (the task dir's rwxc rule)
    assert.equal(sb.unveil.filter((r) => r.anchor)[sb.cwdBeneath]?.path, '/m/a-t/local');
  });

  it('still refuses a work_dir outside every unveiled path', () => {
    throwsCode(() => taskSandbox(cfg(), block('/srv/app'), DEFAULT_PLUGIN_CONFIG), 'INVALID_ARGUMENT', /"work_dir": \/srv\/app is not inside an unveiled path/);
  });

  it("unveils the task's own cgroup dirs read-only (v1: not the shared cpuset), as host paths", () => {
    assert.deepEqual(cgroupReadRules(v1).map((r) => `${r.mode}:${r.path}`), ['r:/sys/fs/cgroup/cpu/nomad/a.t', 'r:/sys/fs/cgroup/memory/nomad/a.t']);
    assert.deepEqual(cgroupReadRules({ mode: 'v2', dir: '/sys/fs/cgroup/nomad.slice/share.slice/a.t.scope' }).map((r) => `${r.mode}:${r.path}`), ['r:/sys/fs/cgroup/nomad.slice/share.slice/a.t.scope']);
    const sb = taskSandbox(cfg(), block(null), DEFAULT_PLUGIN_CONFIG, [], { cgroup: v1 });
    const rule = sb.unveil.find((r) => r.path === '/sys/fs/cgroup/memory/nomad/a.t');
    assert.ok(rule, 'the memory cgroup is unveiled');
    assert.equal(rule.mode, 'r');
    assert.equal(rule.anchor, false);
    assert.equal(rule.beneath, -1, 'a host path, not below a task-writable anchor');
    assert.equal(sb.unveil.some((r) => r.path.startsWith('/sys/fs/cgroup') && r.mode !== 'r'), false);
    assert.equal(sb.unveil.some((r) => r.path === '/sys/fs/cgroup/cpuset/nomad/share' || r.path === '/sys/fs/cgroup/memory/nomad'), false);
  });

  it('sets GOMAXPROCS from the share unless the job sets it', () => {
    assert.equal(taskSandbox(cfg({}, 1000), block(null), DEFAULT_PLUGIN_CONFIG, [], { compute }).env.GOMAXPROCS, '1');
    assert.equal(taskSandbox(cfg({}, 6000), block(null), DEFAULT_PLUGIN_CONFIG, [], { compute }).env.GOMAXPROCS, '3');
    assert.equal(taskSandbox(cfg({}, 5000, '0,1'), block(null), DEFAULT_PLUGIN_CONFIG, [], {}).env.GOMAXPROCS, '2');
    assert.equal(taskSandbox(cfg({ GOMAXPROCS: '7' }, 1000), block(null), DEFAULT_PLUGIN_CONFIG, [], { compute }).env.GOMAXPROCS, '7');
    assert.equal('GOMAXPROCS' in taskSandbox(cfg({}, 1000), block(null), DEFAULT_PLUGIN_CONFIG).env, false);
  });
});

describe('fingerprint err (FingerprintResponse field 4)', () => {
  const facts = (over: Partial<HostFacts>): HostFacts => ({
    platform: 'linux', uid: 0, kernel: '6.1.0', landlockAbi: 4, landlockError: null, nativeError: null, initHelperError: null,
    cgroups: { mode: 'v2', root: '/sys/fs/cgroup', v1: new Map(), unified: '/sys/fs/cgroup', favorDynmods: false },
    v2Controllers: ['cpu', 'memory'],
    ...over,
  });

  it('is empty when healthy or undetected, and carries the reason, as the description does, when unhealthy', () => {
    const ok = fingerprintFromFacts(facts({}), DEFAULT_PLUGIN_CONFIG);
    assert.equal(ok.health, Health.HEALTHY);
    assert.equal(ok.err, '');
    const noLandlock = fingerprintFromFacts(facts({ landlockAbi: 0, landlockError: 'ENOSYS' }), DEFAULT_PLUGIN_CONFIG);
    assert.equal(noLandlock.health, Health.UNHEALTHY);
    assert.match(noLandlock.err, /Landlock is not available/);
    assert.equal(noLandlock.err, noLandlock.healthDescription);
    const notRoot = fingerprintFromFacts(facts({ uid: 1000 }), DEFAULT_PLUGIN_CONFIG);
    assert.equal(notRoot.health, Health.UNDETECTED);
    // Not a failure but "exec2 does not apply here": an err would make Nomad
    // wait for a first fingerprint that never counts (50 s per agent start).
    assert.equal(notRoot.err, '');
    assert.equal(notRoot.healthDescription, 'Driver must run as root');
    assert.equal(fingerprintErr(Health.UNHEALTHY, 'x'), 'x');
  });

  it('reports favordynmods as the mount table shows it (a job on a v1 host can constrain on it)', () => {
    const v1 = { mode: 'hybrid' as const, root: '/sys/fs/cgroup', v1: new Map([['cpuset', '/sys/fs/cgroup/cpuset']]), unified: '/sys/fs/cgroup/unified' };
    assert.equal(fingerprintFromFacts(facts({ cgroups: { ...v1, favorDynmods: false } }), DEFAULT_PLUGIN_CONFIG).attributes['driver.exec2.cgroup.favordynmods']?.boolVal, false);
    assert.equal(fingerprintFromFacts(facts({ cgroups: { ...v1, favorDynmods: true } }), DEFAULT_PLUGIN_CONFIG).attributes['driver.exec2.cgroup.favordynmods']?.boolVal, true);
  });

  it('answers even when the facts cannot be gathered', () => {
    const f = fingerprintFailure(new Error('EMFILE'), DEFAULT_PLUGIN_CONFIG);
    assert.equal(f.health, Health.UNHEALTHY);
    assert.equal(f.err, 'fingerprint failed: EMFILE');
    assert.equal(f.healthDescription, f.err);
  });
});

describe('nomad-driver-exec2 run --memory-max', () => {
  it('takes -1 (no hard limit) besides whole numbers, and nothing else negative', async () => {
    const { parseRunArgs } = await import('../../src/cli/args');
    assert.equal(parseRunArgs(['--memory', '64', '--memory-max=-1', '--', 'true']).memoryMaxMb, -1);
    assert.equal(parseRunArgs(['--memory-max', '256', '--', 'true']).memoryMaxMb, 256);
    assert.throws(() => parseRunArgs(['--memory-max=-2', '--', 'true']), /--memory-max expects a whole number/);
  });
});
