/**
 * The main thread's dry planning run at SetConfig (src/main/warm-up.ts) and
 * the non-allocating path comparisons the plan relies on: pure, no root.
 */
import assert from 'node:assert/strict';
import { warmPlanner } from '../../src/main/warm-up';
import { DEFAULT_PLUGIN_CONFIG } from '../../src/main/config/config';
import { layoutFromMounts, type CgroupLayout } from '../../src/shared/cgroups/detect';
import { isWithin } from '../../src/shared/unveil';

describe('warm-up of the launch planner', () => {
  const layouts: Array<[string, CgroupLayout]> = [
    ['v2', layoutFromMounts([{ mountPoint: '/sys/fs/cgroup', fsType: 'cgroup2', controllers: [], favorDynmods: false }])],
    ['v1', layoutFromMounts([{ mountPoint: '/sys/fs/cgroup/cpuset', fsType: 'cgroup', controllers: ['cpuset'], favorDynmods: false }, { mountPoint: '/sys/fs/cgroup/memory', fsType: 'cgroup', controllers: ['memory'], favorDynmods: false }])],
  ];
  for (const [name, layout] of layouts) {
    it(`runs every planning step on a synthetic task without throwing (${name} cgroups)`, () => {
      assert.equal(warmPlanner({ ...DEFAULT_PLUGIN_CONFIG }, { totalMhz: 5000, cores: 2, mhzPerCore: 2500, usableMhz: 5000 }, layout, '/nonexistent/exec2-init'), true);
      assert.equal(warmPlanner({ ...DEFAULT_PLUGIN_CONFIG, unveilDefaults: false, privateTmp: false }, null, layout, '/nonexistent/exec2-init'), true);
    });
  }

  it('reports false, never throws, where no launch can be planned (no cgroup layout: StartTask refuses the same way)', () => {
    assert.equal(warmPlanner({ ...DEFAULT_PLUGIN_CONFIG }, null, layoutFromMounts([]), '/nonexistent/exec2-init'), false);
  });

  it('isWithin: equal or below, never a sibling with the same prefix', () => {
    assert.equal(isWithin('/a/b', '/a/b'), true);
    assert.equal(isWithin('/a/b/c', '/a/b'), true);
    assert.equal(isWithin('/a/bc', '/a/b'), false);
    assert.equal(isWithin('/a', '/a/b'), false);
    assert.equal(isWithin('/x', '/'), true);
    assert.equal(isWithin('/', '/'), true);
    assert.equal(isWithin('/b/a/b/c', '/a/b'), false);
  });
});
