/**
 * The benchmark's own programs still build and behave on this machine, so
 * `npm run bench` does not rot between runs (it is not part of `npm test`).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { buildTool, TARGET_CFLAGS } from '../bench/tools';
import { skipUnless } from './harness/skip';

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
