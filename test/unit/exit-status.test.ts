import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseStatus, removeStatusDir } from '../../src/main/tasks/exit-status';

describe('exit status records', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'exec2-status-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('parses what pid 1 writes and nothing else', () => {
    assert.deepEqual(parseStatus('exited 0\n'), { exitCode: 0, signal: 0 });
    assert.deepEqual(parseStatus('exited 7\n'), { exitCode: 7, signal: 0 });
    assert.deepEqual(parseStatus('signaled 9\n'), { exitCode: 137, signal: 9 });
    assert.equal(parseStatus(''), null);
    assert.equal(parseStatus('exited -1\n'), null);
    assert.equal(parseStatus('exited 1 extra'), null);
  });

  for (const [what, files] of [
    ['an empty directory', []],
    ['a recorded status', ['status']],
    ['a status and a half-written one', ['status', 'status.tmp']],
    ['files pid 1 never writes', ['status', 'other']],
  ] as const) {
    it(`removes a status directory holding ${what}`, () => {
      const dir = path.join(root, 'task');
      mkdirSync(dir);
      for (const f of files) writeFileSync(path.join(dir, f), 'exited 0\n');
      if (files.includes('other' as never)) mkdirSync(path.join(dir, 'nested'));
      removeStatusDir(dir);
      assert.equal(existsSync(dir), false);
    });
  }

  it('accepts a status directory that is already gone', () => {
    assert.doesNotThrow(() => removeStatusDir(path.join(root, 'never-made')));
  });
});
