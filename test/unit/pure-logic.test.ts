/** Pure logic: unveil rules, signals, topology, cgroup layouts, hclog timestamps. */
import assert from 'node:assert/strict';
import { buildUnveilRules, isUnveiled, parseUnveil } from '../../src/shared/unveil';
import { parseSignal, signalName } from '../../src/main/signals';
import { computeFromTopology, cpuQuotaUs } from '../../src/shared/topology';
import { layoutFromMounts, parseMountinfo } from '../../src/shared/cgroups/detect';
import { limitFiles, resolveTaskCgroup } from '../../src/shared/cgroups/task-cgroup';
import { hclogTimestamp, Logger } from '../../src/main/log';
import { parseStatus } from '../../src/shared/exit-status';
import { dynamicUser } from '../../src/main/users';
import { decodeDriverState, encodeDriverState } from '../../src/main/tasks/driver-state';
import { TailBuffer } from '../../src/main/exec/exec-task';
import { validateCommand } from '../../src/main/exec/exec-streaming';
import { messageOf } from '../../src/shared/errors';

describe('unveil rules', () => {
  it('splits at the last colon and orders mode letters', () => {
    assert.deepEqual(parseUnveil('cxwr:/srv/www/'), { path: '/srv/www', mode: 'rwxc', optional: false });
    assert.throws(() => parseUnveil('/etc/passwd'), /expected "mode:path"/);
    assert.throws(() => parseUnveil('r:relative'), /must be absolute/);
    assert.throws(() => parseUnveil('rwq:/x'), /invalid mode "rwq"/);
  });

  it('adds task dirs and system sets only with unveil_defaults, FIFOs always', () => {
    const dirs = { taskDir: '/m/a-t/local', allocDir: '/m/a-t/alloc', secretsDir: '/m/a-t/secrets', stdoutPath: '/d/alloc/logs/.t.stdout.fifo', stderrPath: '/d/alloc/logs/.t.stderr.fifo' };
    const off = buildUnveilRules({ unveilDefaults: false, pluginPaths: ['r:/srv'], taskPaths: ['w:/var/log'], dirs });
    assert.deepEqual(off.map((r) => `${r.mode}:${r.path}`), ['r:/srv', 'w:/var/log', 'w:/d/alloc/logs/.t.stdout.fifo', 'w:/d/alloc/logs/.t.stderr.fifo']);
    const on = buildUnveilRules({ unveilDefaults: true, pluginPaths: [], taskPaths: [], dirs });
    const specs = on.map((r) => `${r.mode}:${r.path}`);
    for (const want of ['rwxc:/m/a-t/local', 'rwxc:/m/a-t/alloc', 'rx:/m/a-t/alloc/logs', 'rwxc:/m/a-t/secrets', 'rwxc:/m/a-t/tmp', 'rx:/usr/bin', 'r:/etc/ld.so.cache', 'r:/etc/ssl/certs', 'rwc:/tmp']) {
      assert.ok(specs.includes(want), `missing ${want}`);
    }
    assert.ok(on.filter((r) => r.path.startsWith('/usr') || r.path.startsWith('/etc')).every((r) => r.optional), 'system sets are optional');
    assert.equal(on.find((r) => r.path === '/m/a-t/local')?.optional, false);
  });

  it('knows whether a directory lies inside an unveiled path', () => {
    const rules = [parseUnveil('rwxc:/m/a-t/local'), parseUnveil('r:/srv')];
    assert.ok(isUnveiled('/m/a-t/local/sub', rules));
    assert.ok(isUnveiled('/srv', rules));
    assert.ok(!isUnveiled('/m/a-t/localx', rules));
    assert.ok(!isUnveiled('/etc', rules));
  });
});

describe('signals', () => {
  it('parses names in any case, with or without SIG, numbers and real-time offsets', () => {
    assert.equal(parseSignal('SIGHUP'), 1);
    assert.equal(parseSignal('sigusr1'), 10);
    assert.equal(parseSignal('term'), 15);
    assert.equal(parseSignal('SigWinch'), 28);
    assert.equal(parseSignal('9'), 9);
    assert.equal(parseSignal('SIGRTMIN+2'), 36);
    assert.equal(parseSignal('rtmax'), 64);
    assert.equal(signalName(15), 'SIGTERM');
  });
  it('rejects empty and unknown names', () => {
    assert.throws(() => parseSignal(''), /must not be empty/);
    assert.throws(() => parseSignal('SIGNOPE'), /unknown signal "SIGNOPE"/);
    assert.throws(() => parseSignal('99'), /out of range/);
  });
});

describe('topology and cpu.max', () => {
  const core = (speed: number, disable = false) => ({ socketId: 0, nodeId: 0, coreId: 0, coreGrade: 0, disable, baseSpeed: speed, maxSpeed: 0, guessSpeed: 0 });
  it('derives MHz per core like Nomad and converts MHz to a bandwidth', () => {
    const c = computeFromTopology({ nodeIds: [0], distances: undefined, cores: [core(2500), core(2500)], overrideTotalCompute: 0, overrideWitholdCompute: 0 })!;
    assert.equal(c.mhzPerCore, 2500);
    assert.equal(c.totalMhz, 5000);
    assert.equal(cpuQuotaUs(1000, c.mhzPerCore), 40000);
    assert.equal(cpuQuotaUs(5000, c.mhzPerCore), 200000);
    assert.equal(cpuQuotaUs(10, c.mhzPerCore), 1000, 'never below the kernel minimum');
  });
  it('honours override_total_compute and withheld compute', () => {
    const c = computeFromTopology({ nodeIds: [], distances: undefined, cores: [core(1000), core(1000, true)], overrideTotalCompute: 6000, overrideWitholdCompute: 200 })!;
    assert.equal(c.mhzPerCore, 3000);
    assert.equal(c.usableMhz, 800);
  });
});

describe('cgroup layouts', () => {
  const hybrid = [
    '30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755',
    '31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
    '32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '33 30 0:29 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer',
    '34 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset',
    '35 30 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  ].join('\n');

  it('tells v2, hybrid and v1 apart like Nomad', () => {
    assert.equal(layoutFromMounts(parseMountinfo(hybrid)).mode, 'hybrid');
    assert.equal(layoutFromMounts(parseMountinfo('40 1 0:5 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate')).mode, 'v2');
    assert.equal(layoutFromMounts(parseMountinfo(hybrid.split('\n').slice(0, 5).join('\n'))).mode, 'v1');
  });

  it('reads controllers, not mount options, from v1 super options, and notices favordynmods', () => {
    const mounts = parseMountinfo([
      '31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
      '32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,favordynmods,memory',
      '33 30 0:29 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,clone_children,noprefix,cpuset',
      '34 30 0:30 / /run/x rw,relatime - cgroup cgroup rw,xattr,name=systemd',
    ].join('\n'));
    assert.deepEqual(mounts.map((m) => m.controllers), [['cpu', 'cpuacct'], ['memory'], ['cpuset'], []]);
    assert.equal(layoutFromMounts(mounts).favorDynmods, true);
    assert.equal(layoutFromMounts(parseMountinfo(hybrid)).favorDynmods, false);
    assert.equal(layoutFromMounts(parseMountinfo('40 1 0:5 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,favordynmods')).favorDynmods, true);
  });

  it('derives every v1 controller path from the cpuset path Nomad passes', () => {
    const layout = layoutFromMounts(parseMountinfo(hybrid));
    const share = resolveTaskCgroup(layout, '/sys/fs/cgroup/cpuset/nomad/share', 'A', 'web');
    assert.deepEqual(share, {
      mode: 'v1',
      created: [],
      dirs: { cpuset: '/sys/fs/cgroup/cpuset/nomad/share', cpu: '/sys/fs/cgroup/cpu/nomad/A.web', memory: '/sys/fs/cgroup/memory/nomad/A.web', freezer: '/sys/fs/cgroup/freezer/nomad/A.web' },
    });
    const reserved = resolveTaskCgroup(layout, '/sys/fs/cgroup/cpuset/deep/p/reserve/A.web', 'A', 'web');
    assert.equal(reserved.mode === 'v1' && reserved.dirs.memory, '/sys/fs/cgroup/memory/deep/p/A.web');
    assert.throws(() => resolveTaskCgroup(layout, '/sys/fs/cgroup/cpuset/nomad/elsewhere', 'A', 'web'), /neither/);
    assert.throws(() => resolveTaskCgroup(layout, '', 'A', 'web'), /no task cgroup/);
  });

  it('computes the exact v2 and v1 limit files', () => {
    const v2 = { mode: 'v2' as const, dir: '/c' };
    assert.deepEqual(limitFiles(v2, { cpuQuotaUs: 40000, cpuShares: 1000, cpusetCpus: '', memoryMax: 262144000, memoryLow: 157286400, pidsMax: 0 }), [
      ['/c', 'cpu.max', '40000 100000'],
      ['/c', 'memory.low', '157286400'],
      ['/c', 'memory.max', '262144000'],
    ]);
    assert.deepEqual(limitFiles(v2, { cpuQuotaUs: 40000, cpuShares: 5000, cpusetCpus: '0-1', memoryMax: 1048576, memoryLow: 0, pidsMax: 0 }), [
      ['/c', 'cpuset.cpus', '0-1'],
      ['/c', 'cpu.max', '200000 100000'],
      ['/c', 'memory.max', '1048576'],
    ]);
    const v1 = { mode: 'v1' as const, created: [], dirs: { cpu: '/cpu', memory: '/mem', cpuset: '/cs' } };
    assert.deepEqual(limitFiles(v1, { cpuQuotaUs: 40000, cpuShares: 1000, cpusetCpus: '', memoryMax: 262144000, memoryLow: 157286400, pidsMax: 0 }), [
      ['/cpu', 'cpu.shares', '1000'],
      ['/cpu', 'cpu.cfs_period_us', '100000'],
      ['/cpu', 'cpu.cfs_quota_us', '40000'],
      ['/mem', 'memory.limit_in_bytes', '262144000'],
      ['/mem', 'memory.soft_limit_in_bytes', '157286400'],
    ]);
  });
});

describe('small formats', () => {
  it('hclog timestamps carry exactly six fractional digits', () => {
    assert.equal(hclogTimestamp(new Date('2026-03-01T10:20:30.123Z')), '2026-03-01T10:20:30.123000Z');
  });
  it('log lines keep @-keys as strings even when fields try to override them', () => {
    const lines: string[] = [];
    new Logger({ write: (l) => lines.push(l) }, 'exec2').info('hello', { '@level': 5, n: 1n, err: new Error('boom') });
    const j = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(j['@level'], 'info');
    assert.equal(j.n, '1');
    assert.equal(j.err, 'boom');
  });
  it('parses the status file pid 1 writes', () => {
    assert.deepEqual(parseStatus('exited 7\n'), { exitCode: 7, signal: 0 });
    assert.deepEqual(parseStatus('signaled 9\n'), { exitCode: 137, signal: 9 });
    assert.equal(parseStatus('exited seven'), null);
  });
  it('resolves dynamic workload users without a passwd entry', () => {
    const range = { min: 80000, max: 89999 };
    assert.deepEqual(dynamicUser('nomad-80123', range), { name: 'nomad-80123', uid: 80123, gid: 80123, groups: [], home: '/nonexistent' });
    assert.equal(dynamicUser('alice', range), null);
    assert.equal(dynamicUser('nomad-x', range), null);
  });
  it('round-trips driver_state and refuses other versions clearly', () => {
    const bytes = encodeDriverState({ pid: 42, pidStartTime: '123', statusDir: '/s', cgroup: { mode: 'v2', dir: '/c' }, user: { name: 'u', uid: 1, gid: 1 }, taskDir: '/t', startedAt: 'x', oomKillsBefore: 0 });
    assert.equal(decodeDriverState(bytes, 1).pid, 42);
    assert.throws(() => decodeDriverState(bytes, 2), /handle version 2 is not supported/);
    assert.throws(() => decodeDriverState(Buffer.from('\x83\xa3TaskConfig'), 1), /not from this driver/);
  });
  it('keeps the sandbox-shaping config attributes in driver_state for exec after an agent restart', () => {
    const base = { pid: 42, pidStartTime: '123', statusDir: '/s', cgroup: { mode: 'v2' as const, dir: '/c' }, user: { name: 'u', uid: 1, gid: 1 }, taskDir: '/t', startedAt: 'x', oomKillsBefore: 0 };
    const sandbox = { unveil: ['r:/etc/mime.types'], workDir: '/t/local', oomScoreAdj: 300, capAdd: ['net_bind_service'], capDrop: [] };
    assert.deepEqual(decodeDriverState(encodeDriverState({ ...base, sandbox }), 1).sandbox, sandbox);
    assert.equal(decodeDriverState(encodeDriverState(base), 1).sandbox, undefined, 'handles from before exec support still decode');
    const { capAdd: _a, capDrop: _d, ...before } = sandbox;
    const old = decodeDriverState(Buffer.from(JSON.stringify({ format: 'nomad-driver-exec2-ts', v: 1, ...base, sandbox: before })), 1);
    assert.deepEqual(old.sandbox, { ...before, capAdd: [], capDrop: [] }, 'handles from before cap_add/cap_drop decode with none');
    assert.equal(old.caps, undefined);
    const caps = { bounding: [0, 10], ambient: [10] };
    assert.deepEqual(decodeDriverState(encodeDriverState({ ...base, sandbox, caps, scopeAbstractUnixSockets: false }), 1).caps, caps);
    assert.throws(() => decodeDriverState(Buffer.from(JSON.stringify({ format: 'nomad-driver-exec2-ts', v: 1, ...base, caps: { bounding: [64], ambient: [] } })), 1), /malformed capabilities/);
    const bad = Buffer.from(JSON.stringify({ format: 'nomad-driver-exec2-ts', v: 1, ...base, sandbox: { unveil: 'r:/x', workDir: null, oomScoreAdj: null } }));
    assert.throws(() => decodeDriverState(bad, 1), /malformed sandbox/);
  });
});

describe('exec output capture', () => {
  it('keeps the last bytes when output exceeds the cap', () => {
    const t = new TailBuffer(8);
    t.push(Buffer.from('abc'));
    t.push(Buffer.from('defghij'));
    t.push(Buffer.from('kl'));
    assert.equal(t.toBuffer().toString(), 'efghijkl');
    assert.equal(t.dropped, 4);
    const big = new TailBuffer(4);
    big.push(Buffer.from('0123456789'));
    assert.equal(big.toBuffer().toString(), '6789');
  });

  it('refuses an empty command or NUL bytes before anything starts', () => {
    assert.throws(() => validateCommand([]), /needs a command/);
    assert.throws(() => validateCommand(['']), /needs a command/);
    assert.throws(() => validateCommand(['sh', 'a\0b']), /argument 1 contains a NUL byte/);
    assert.deepEqual(validateCommand(['sh', '-c', 'true']), ['sh', '-c', 'true']);
  });
});

describe('state_dir exposure', () => {
  it('finds rules that would let a task write into the status directory', async () => {
    const { writableRuleFor } = await import('../../src/shared/unveil');
    const rules = [parseUnveil('r:/run'), parseUnveil('rwc:/tmp')];
    assert.equal(writableRuleFor('/run/nomad-driver-exec2', rules), undefined);
    assert.equal(writableRuleFor('/tmp/state', rules)?.path, '/tmp');
    assert.equal(writableRuleFor('/tmpx/state', rules), undefined);
  });
});

describe('messageOf', () => {
  it("gives an Error's message and the string form of anything else thrown", () => {
    assert.equal(messageOf(new TypeError('bad')), 'bad');
    assert.equal(messageOf('plain string'), 'plain string');
    assert.equal(messageOf(42), '42');
    assert.equal(messageOf(null), 'null');
  });
});
