/**
 * The CI-sized fault-injection soak (bench/soak.ts; `npm run soak` runs the
 * full one): real plugin process, real kernel, faults at random points of a
 * seeded run. The seed is printed; SOAK_SEED=<n> replays it.
 */
import assert from 'node:assert/strict';
import { CI_SOAK, formatSummary, runSoak } from '../bench/soak';
import { isRoot, skipUnless } from './harness/skip';
import { CgroupFixture } from './harness/cgroups';

describe('fault-injection soak (CI size)', function () {
  this.timeout(10 * 60_000);

  it('loses no task, leaks nothing and keeps the plugin flat under injected faults', async function () {
    skipUnless(this, isRoot(), 'the soak needs root (namespaces, cgroups, setuid)');
    const probe = new CgroupFixture();
    probe.cleanup();
    skipUnless(this, probe.skipReason === null, probe.skipReason ?? '');
    const seed = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`      soak seed ${seed} (replay: SOAK_SEED=${seed})`);
    const { summary, cleanupLeaks } = await runSoak({ ...CI_SOAK, seed });
    const table = formatSummary(summary, cleanupLeaks);
    console.log(table.split('\n').map((l) => `      ${l}`).join('\n'));
    assert.deepEqual(summary.violations, [], 'violations');
    assert.deepEqual(summary.lost, [], 'lost tasks');
    assert.deepEqual([...summary.leaked, ...cleanupLeaks], [], 'leaks');
    assert.ok(summary.crashes >= 1 && summary.recoveries >= 1, 'the plugin was killed and tasks recovered');
    assert.ok(summary.exact >= summary.launches / 2, `${summary.exact} exact exits of ${summary.launches} launches`);
  });
});
