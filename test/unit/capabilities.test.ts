import assert from 'node:assert/strict';
import { CAPABILITY_NUMBERS as N, DEFAULT_ALLOW_CAPS, capabilityMask, parseCapabilityList, parseCapabilityName, resolveAllowList, taskCapabilities } from '../../src/shared/capabilities';
import { DriverError, invalidArgument } from '../../src/shared/errors';
import { dynamicUser } from '../../src/main/users';
import { pidsLimit } from '../../src/main/tasks/launch-plan';
import { landlockScopes } from '../../src/main/fingerprint';
import { limitFiles, type Limits } from '../../src/shared/cgroups/task-cgroup';

const allow = DEFAULT_ALLOW_CAPS.map((c) => N[c]!).sort((a, b) => a - b);

function errorOf(fn: () => unknown): DriverError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof DriverError, String(err));
    return err;
  }
  assert.fail('did not throw');
}

describe('capabilities (pure)', () => {
  it('numbers capabilities like the kernel', () => {
    assert.equal(N.chown, 0);
    assert.equal(N.net_bind_service, 10);
    assert.equal(N.sys_admin, 21);
    assert.equal(N.mknod, 27);
    assert.equal(N.setfcap, 31);
    assert.equal(N.checkpoint_restore, 40);
    assert.equal(new Set(Object.values(N)).size, 41, 'numbers are unique and 0..40 complete');
  });

  it('parses names case-insensitively, with or without CAP_, and "all" separately', () => {
    assert.equal(parseCapabilityName('CAP_NET_BIND_SERVICE'), 10);
    assert.equal(parseCapabilityName(' Net_Bind_Service '), 10);
    assert.equal(parseCapabilityName('ALL'), null);
    assert.throws(() => parseCapabilityName('cap_'), /is not a Linux capability/);
    assert.throws(() => parseCapabilityName('net bind service'), /is not a Linux capability/);
    for (const proto of ['constructor', '__proto__', 'toString', 'CAP_hasOwnProperty', 'valueOf']) {
      assert.throws(() => parseCapabilityName(proto), /is not a Linux capability/, proto);
    }
    assert.deepEqual(parseCapabilityList(['kill', 'CAP_KILL', 'chown'], 'x', false, invalidArgument), { all: false, caps: [0, 5] });
    assert.equal(errorOf(() => parseCapabilityList(['chown', 'bogus'], 'attr', false, invalidArgument)).message, 'attr[1]: "bogus" is not a Linux capability (expected a name such as "net_bind_service" or "CAP_NET_BIND_SERVICE")');
    assert.match(errorOf(() => parseCapabilityList(['all'], 'attr', false, invalidArgument)).message, /"all" is only accepted in cap_drop and allow_caps/);
    assert.equal(resolveAllowList({ all: true, caps: [] }).length, 41);
  });

  it('root: the allowed set minus cap_drop; cap_drop all then cap_add keeps only the added', () => {
    assert.deepEqual(taskCapabilities({ allow, add: [], drop: [], root: true }), { bounding: allow, ambient: [] });
    assert.deepEqual(taskCapabilities({ allow, add: [], drop: ['kill', 'MKNOD'], root: true }).bounding, allow.filter((c) => c !== 5 && c !== 27));
    assert.deepEqual(taskCapabilities({ allow, add: ['chown'], drop: ['all'], root: true }), { bounding: [0], ambient: [] });
    assert.deepEqual(taskCapabilities({ allow, add: [], drop: ['all'], root: true }), { bounding: [], ambient: [] });
  });

  it('non-root: exactly cap_add minus cap_drop, as bounding and ambient set', () => {
    assert.deepEqual(taskCapabilities({ allow, add: [], drop: [], root: false }), { bounding: [], ambient: [] });
    assert.deepEqual(taskCapabilities({ allow, add: ['net_bind_service'], drop: [], root: false }), { bounding: [10], ambient: [10] });
    assert.deepEqual(taskCapabilities({ allow, add: ['net_bind_service', 'chown'], drop: ['chown'], root: false }), { bounding: [10], ambient: [10] });
  });

  it('a cap_add outside allow_caps is FAILED_PRECONDITION (not retried) naming the capability and allow_caps', () => {
    const e = errorOf(() => taskCapabilities({ allow, add: ['sys_admin', 'chown'], drop: [], root: true }));
    assert.equal(e.code, 'FAILED_PRECONDITION');
    assert.equal(e.recoverable, false);
    assert.match(e.message, /"cap_add": sys_admin is not allowed by this client; the plugin option allow_caps permits only: chown, dac_override/);
    assert.equal(errorOf(() => taskCapabilities({ allow: [], add: ['kill'], drop: [], root: false })).message, 'task config: attribute "cap_add": kill is not allowed by this client; the plugin option allow_caps permits only: (none)');
    assert.equal(errorOf(() => taskCapabilities({ allow, add: ['nope'], drop: [], root: false })).code, 'INVALID_ARGUMENT');
  });

  it('masks look like /proc/self/status', () => {
    assert.equal(capabilityMask(allow), '00000000a80405fb');
    assert.equal(capabilityMask([40]), '0000010000000000');
  });
});

describe('dynamic users, pids, scopes (pure)', () => {
  const range = { min: 80000, max: 89999 };
  it('accepts nomad-<n> only inside the range and never 0', () => {
    assert.equal(dynamicUser('nomad-80000', range)?.uid, 80000);
    assert.equal(dynamicUser('nomad-89999', range)?.gid, 89999);
    for (const u of ['nomad-0', 'nomad-79999', 'nomad-90000', 'nomad-99999999999', 'nomad-000080000000']) {
      assert.match(errorOf(() => dynamicUser(u, range)).message, new RegExp(`user "${u}": dynamic workload users must have an id in 80000-89999`));
    }
    assert.throws(() => dynamicUser('nomad-0', { min: 0, max: 10 }), /must have an id in/);
    assert.equal(dynamicUser('nomad', range), null);
    assert.equal(dynamicUser('nomad-1a', range), null);
  });

  it('a task\'s pids_max may lower but not lift the plugin\'s', () => {
    assert.equal(pidsLimit(null, 4096), 4096);
    assert.equal(pidsLimit(100, 4096), 100);
    assert.equal(pidsLimit(100000, 0), 100000);
    const e = errorOf(() => pidsLimit(5000, 4096));
    assert.equal(e.code, 'FAILED_PRECONDITION');
    assert.match(e.message, /"pids_max": 5000 is above this client's limit of 4096 \(the plugin option pids_max\)/);
  });

  it('writes pids.max in v2 and in the driver\'s own v1 pids cgroup', () => {
    const limits: Limits = { cpuQuotaUs: 0, cpuShares: 0, cpusetCpus: '', memoryMax: 0, memoryLow: 0, pidsMax: 64 };
    assert.deepEqual(limitFiles({ mode: 'v2', dir: '/c' }, limits), [['/c', 'pids.max', '64']]);
    assert.deepEqual(limitFiles({ mode: 'v1', dirs: { pids: '/p' }, created: [] }, limits), [['/p', 'pids.max', '64']]);
    assert.deepEqual(limitFiles({ mode: 'v2', dir: '/c' }, { ...limits, pidsMax: 0 }), []);
  });

  it('says which Landlock scopes are in force per ABI and option', () => {
    assert.deepEqual(landlockScopes(5, { scopeAbstractUnixSockets: true }), []);
    assert.deepEqual(landlockScopes(6, { scopeAbstractUnixSockets: true }), ['abstract_unix_socket', 'signal']);
    assert.deepEqual(landlockScopes(7, { scopeAbstractUnixSockets: false }), ['signal']);
  });
});
