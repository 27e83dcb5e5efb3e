/** How a worker classifies what went wrong: descriptor exhaustion is the plugin's passing trouble, not the task's. */
import assert from 'node:assert/strict';
import { failureOf } from '../../src/workers/launch-failure';

describe('launch failure classification', () => {
  it('answers EMFILE and ENFILE INTERNAL and recoverable, naming the limit to raise', () => {
    for (const code of ['EMFILE', 'ENFILE']) {
      const f = failureOf(Object.assign(new Error(`${code}: too many open files, open '/sys/fs/cgroup/x'`), { code }));
      assert.equal(f.ok, false);
      if (f.ok) return;
      assert.equal(f.kind, 'internal');
      assert.equal(f.code, 'EXEC2_FDS');
      assert.equal(f.recoverable, true);
      assert.match(f.message, /RLIMIT_NOFILE/);
    }
  });

  it('keeps any other unexpected error INTERNAL and not recoverable', () => {
    const f = failureOf(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }));
    assert.deepEqual(f, { ok: false, kind: 'internal', code: 'EXEC2_INTERNAL', message: 'EIO: i/o error', recoverable: false });
  });
});
