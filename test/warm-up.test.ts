/**
 * The pool's warm-up (launcher.ts warm → launch-worker.ts `warm` in every
 * thread) with the real addon: what the first StartTask of a fresh plugin
 * relies on being ready. Its failures are swallowed by design at SetConfig
 * (the real launch reports its own), so they are caught here.
 */
import assert from 'node:assert/strict';
import { PiscinaLauncher } from '../src/main/launcher';
import { warm } from '../src/workers/launch-worker';
import { loadNative } from '../src/native/binding';

describe('launch pool warm-up', () => {
  it('loads the addon and walks the user databases in the worker code without throwing', () => {
    assert.deepEqual(warm(), { landlockAbi: loadNative().landlockAbi().abi });
  });

  it('runs in every pool thread once: warm() resolves, a second call returns the same promise', async () => {
    const launcher = new PiscinaLauncher();
    try {
      const first = launcher.warm();
      assert.equal(launcher.warm(), first);
      await first;
      assert.equal(launcher.queueSize(), 0);
    } finally {
      await launcher.close();
    }
  });
});
