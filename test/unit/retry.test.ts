import assert from 'node:assert/strict';
import { READER_RETRY_MAX_MS, READER_WAIT_MS, readerRetryDelay } from '../../src/main/tasks/retry';

describe('log reader retry schedule', () => {
  it('backs off from 5 ms, doubling, to at most 500 ms', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((a) => readerRetryDelay(a, 0)), [5, 10, 20, 40, 80, 160, 320, 500, 500]);
    assert.equal(readerRetryDelay(1000, 0), READER_RETRY_MAX_MS);
  });

  it('never waits past the total budget and stops once it is spent', () => {
    assert.equal(readerRetryDelay(20, READER_WAIT_MS - 3), 3);
    assert.equal(readerRetryDelay(20, READER_WAIT_MS), null);
    assert.equal(readerRetryDelay(1, READER_WAIT_MS + 1), null);
  });

  it('adds up to the budget in a bounded number of attempts', () => {
    let elapsed = 0;
    let attempts = 1;
    for (let d = readerRetryDelay(1, 0); d !== null; d = readerRetryDelay(++attempts, elapsed)) elapsed += d;
    assert.equal(elapsed, READER_WAIT_MS);
    assert.ok(attempts < 40, `${attempts} attempts`);
  });
});
