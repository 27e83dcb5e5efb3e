/**
 * Test cgroups, under the developers' guide's rules: never touch a cgroup we
 * did not create, never move anything out of ours.
 *
 * v1/hybrid (this dev machine): parent P = <own memory cgroup>/exec2-test-<rand>
 * in every controller, task cgroups <ctrl>/P/<alloc>.<task>, the shared
 * cpuset P/share (Nomad's v1 layout with P in place of /nomad).
 * v2 (the VM suite's throwaway guest only): Nomad's exact layout,
 * nomad.slice/{share,reserve}.slice/<alloc>.<task>.scope at the root with the
 * controllers enabled on the way down like Nomad 1.7+, and only when this
 * process sits in the root cgroup (on any other v2 host it says SKIP).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CgroupTree, ownCgroupOf, type CgroupPlacement } from '../../src/client/cgroups';
import { detectCgroupLayout, type CgroupLayout } from '../../src/shared/cgroups/detect';

export function testPlacement(layout: CgroupLayout, tag: string, procSelfCgroup: string): CgroupPlacement {
  if (layout.mode === 'v2') {
    const own = ownCgroupOf(procSelfCgroup, null);
    if (own !== '/') return { kind: 'unavailable', reason: `cgroup v2 tests need the root cgroup (this process is in ${own}); they run in the VM suite` };
    return { kind: 'v2', slice: 'nomad.slice', enableRoot: true };
  }
  if (layout.mode === 'none') return { kind: 'unavailable', reason: 'no cgroup filesystem mounted' };
  const mem = ownCgroupOf(procSelfCgroup, 'memory').replace(/^\/+/, '');
  return { kind: 'v1', parent: mem ? `${mem}/${tag}` : tag };
}

export class CgroupFixture extends CgroupTree {
  constructor(layout: CgroupLayout = detectCgroupLayout()) {
    super(testPlacement(layout, `exec2-test-${randomBytes(4).toString('hex')}`, readFileSync('/proc/self/cgroup', 'utf8')), layout);
  }
}
