/** Where the Nomad-like client and the test fixture put task cgroups (pure decisions). */
import assert from 'node:assert/strict';
import { clientPlacement, ownCgroupOf } from '../../src/client/cgroups';
import type { CgroupLayout } from '../../src/shared/cgroups/detect';
import { testPlacement } from '../harness/cgroups';

const v1 = (mode: 'v1' | 'hybrid' = 'hybrid'): CgroupLayout => ({
  mode,
  root: '/sys/fs/cgroup',
  v1: new Map(['cpu', 'memory', 'freezer', 'cpuset', 'cpuacct', 'pids'].map((c) => [c, `/sys/fs/cgroup/${c}`])),
  unified: mode === 'hybrid' ? '/sys/fs/cgroup/unified' : null,
  favorDynmods: false,
});
const v2: CgroupLayout = { mode: 'v2', root: '/sys/fs/cgroup', v1: new Map(), unified: '/sys/fs/cgroup', favorDynmods: false };
const none: CgroupLayout = { mode: 'none', root: '/sys/fs/cgroup', v1: new Map(), unified: null, favorDynmods: false };

const HYBRID_SELF = '9:name=systemd:/user.slice/user-0.slice/session-3.scope\n4:memory:/user.slice/user-0.slice/session-3.scope\n3:cpuset:/\n0::/user.slice/user-0.slice/session-3.scope\n';
const V2_SELF_ROOT = '0::/\n';
const V2_SELF_SESSION = '0::/user.slice/user-0.slice/session-3.scope\n';

describe('client cgroup placement', () => {
  it('reads this process\'s cgroup per controller and the v2 line', () => {
    assert.equal(ownCgroupOf(HYBRID_SELF, 'memory'), '/user.slice/user-0.slice/session-3.scope');
    assert.equal(ownCgroupOf(HYBRID_SELF, 'cpuset'), '/');
    assert.equal(ownCgroupOf(HYBRID_SELF, null), '/user.slice/user-0.slice/session-3.scope');
    assert.equal(ownCgroupOf('', 'memory'), '/');
  });

  it('v1/hybrid: the product-named parent below the caller\'s own memory cgroup, in every controller', () => {
    for (const mode of ['v1', 'hybrid'] as const) {
      assert.deepEqual(clientPlacement(v1(mode), 'nomad-driver-exec2-run-Ab12Cd', HYBRID_SELF, []), { kind: 'v1', parent: 'user.slice/user-0.slice/session-3.scope/nomad-driver-exec2-run-Ab12Cd' });
    }
    assert.deepEqual(clientPlacement(v1(), 'nomad-driver-exec2-run-x', '4:memory:/\n', []), { kind: 'v1', parent: 'nomad-driver-exec2-run-x' });
  });

  it('v2: its own slice at the root (never nomad.slice), wherever the caller sits, without touching the root', () => {
    for (const self of [V2_SELF_ROOT, V2_SELF_SESSION]) {
      assert.deepEqual(clientPlacement(v2, 'nomad-driver-exec2-run-Ab12Cd', self, ['cpuset', 'cpu', 'io', 'memory', 'pids']), { kind: 'v2', slice: 'nomad-driver-exec2-run-Ab12Cd.slice', enableRoot: false });
    }
  });

  it('v2: names the controllers the root does not enable instead of enabling them', () => {
    const p = clientPlacement(v2, 'nomad-driver-exec2-run-x', V2_SELF_ROOT, ['memory']);
    assert.equal(p.kind, 'unavailable');
    assert.match(p.kind === 'unavailable' ? p.reason : '', /^cgroup v2: the cpu, pids controllers are not enabled in \/sys\/fs\/cgroup\/cgroup\.subtree_control \(a Nomad client enables \+cpuset \+cpu \+io \+memory \+pids there; this command does not change a cgroup it did not create\)$/);
  });

  it('refuses names that are not one path component, and hosts without cgroups', () => {
    for (const bad of ['', '../x', 'a/b', '.hidden', 'a b']) assert.equal(clientPlacement(v1(), bad, HYBRID_SELF, []).kind, 'unavailable', bad);
    assert.deepEqual(clientPlacement(none, 'n', HYBRID_SELF, []), { kind: 'unavailable', reason: 'no cgroup filesystem mounted' });
  });

  it('the test fixture: exec2-test-* below its own cgroup on v1; Nomad\'s nomad.slice only from the v2 root cgroup (the VM)', () => {
    assert.deepEqual(testPlacement(v1(), 'exec2-test-1234', HYBRID_SELF), { kind: 'v1', parent: 'user.slice/user-0.slice/session-3.scope/exec2-test-1234' });
    assert.deepEqual(testPlacement(v2, 'exec2-test-1234', V2_SELF_ROOT), { kind: 'v2', slice: 'nomad.slice', enableRoot: true });
    const elsewhere = testPlacement(v2, 'exec2-test-1234', V2_SELF_SESSION);
    assert.equal(elsewhere.kind, 'unavailable');
    assert.match(elsewhere.kind === 'unavailable' ? elsewhere.reason : '', /need the root cgroup \(this process is in \/user\.slice/);
  });
});
