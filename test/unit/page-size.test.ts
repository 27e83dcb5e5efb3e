import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { kernelPageSize } from '../../src/main/stats/counters';

describe('per-pid RSS units', () => {
  it('uses the kernel page size the C library reports, not an assumed 4 KiB', () => {
    const expected = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());
    assert.equal(kernelPageSize(), expected);
  });
});
