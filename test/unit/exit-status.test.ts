import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseStatus, removeStatusDir, removeStatusDirAsync } from '../../src/shared/exit-status';
import { isOwnStatusDir, statusDirFor, statusDirName } from '../../src/main/tasks/status-dir';

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

  // The worker's synchronous removal and DestroyTask's asynchronous one take the same steps.
  for (const [how, remove] of [
    ['', (d: string): Promise<void> => Promise.resolve(removeStatusDir(d))],
    [' (async)', removeStatusDirAsync],
  ] as const) {
    for (const [what, files] of [
      ['an empty directory', []],
      ['a recorded status', ['status']],
      ['a status and a half-written one', ['status', 'status.tmp']],
      ['files pid 1 never writes', ['status', 'other']],
    ] as const) {
      it(`removes a status directory holding ${what}${how}`, async () => {
        const dir = path.join(root, 'task');
        mkdirSync(dir);
        for (const f of files) writeFileSync(path.join(dir, f), 'exited 0\n');
        if (files.includes('other' as never)) mkdirSync(path.join(dir, 'nested'));
        await remove(dir);
        assert.equal(existsSync(dir), false);
      });
    }

    it(`accepts a status directory that is already gone${how}`, async () => {
      await assert.doesNotReject(remove(path.join(root, 'never-made')));
    });
  }
});

describe('status directory names', () => {
  const hostile = ['.', '..', '/', '../..', 'a/../../b', '\0', 'a\0b', '%2e%2e', 'x'.repeat(4096), '', 'é/ü', ' ', 'a'.repeat(48) + 'b', 'a'.repeat(48) + 'c'];

  it('is one short, safe path component below <state_dir>/tasks for any id', () => {
    for (const id of hostile) {
      const name = statusDirName(id);
      assert.ok(name.length <= 255 - 1, `too long for ${JSON.stringify(id.slice(0, 20))}`);
      assert.match(name, /^[A-Za-z0-9_-]*\.[0-9a-f]{64}$/);
      const dir = statusDirFor('/run/exec2', id);
      assert.equal(dir, `/run/exec2/tasks/${name}`);
      assert.ok(isOwnStatusDir('/run/exec2', dir));
    }
  });

  it('gives distinct ids distinct names (also ids that sanitise alike)', () => {
    const names = new Set(hostile.map(statusDirName));
    assert.equal(names.size, hostile.length);
    assert.notEqual(statusDirName('a/b'), statusDirName('a_b'));
  });

  it('accepts only a directory exactly one level below <state_dir>/tasks for removal', () => {
    assert.ok(isOwnStatusDir('/run/exec2', '/run/exec2/tasks/abc%2Fdef'), 'an old encodeURIComponent name still qualifies');
    for (const bad of ['/run/exec2/tasks/..', '/run/exec2/tasks/.', '/run/exec2/tasks', '/run/exec2', '/run/exec2/tasks/', '/run/exec2/tasks/a/b', '/run/exec2/tasks//a', 'run/exec2/tasks/a', '/run/exec2/tasks/a\0', '/run/other/tasks/a', '/']) {
      assert.equal(isOwnStatusDir('/run/exec2', bad), false, bad);
    }
  });
});
