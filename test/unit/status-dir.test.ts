/**
 * Status directory names (src/main/tasks/status-dir.ts): RecoverTask finds a
 * task's exit status by this name, so it must never change. Known ids are
 * pinned to their names, and generated hostile ids give exactly the names of
 * the first implementation (test/unit/reference/status-dir-v0.ts). Pure.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { isOwnStatusDir, statusDirFor, statusDirName, tasksRoot } from '../../src/main/tasks/status-dir';
import * as v0 from './reference/status-dir-v0';

describe('status dir names', () => {
  it('pins the names of known ids (a Nomad task id, "..", "", "/", NUL, non-ASCII, 100 chars, a lone surrogate)', () => {
    const pinned: Array<[string, string]> = [
      ['8d3c2a1e-5b7f-4c2d-9e1a-0f6b3c4d5e6f/web/1a2b3c4d', '8d3c2a1e-5b7f-4c2d-9e1a-0f6b3c4d5e6f_web_1a2b3c4.43f29449d39d542762abe5a04f192804c892c10b413d86ea04226d1d96e37c0d'],
      ['..', '_.5ec1f7e700f37c3d0b2981d04855fc34b94aaa15457b05ca571817442d228f81'],
      ['', '.e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
      ['/', '_.8a5edab282632443219e051e4ade2d1d5bbc671c781051bf1437897cbdfea0f1'],
      ['a\u0000b', 'a_b.59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138'],
      ['\u00e9-\u00fcn\u00efc\u00f8d\u00e9/\u2603', '_-_n_c_d_.b3f907ad8e0b9ced051457a5746b4f88e20c1df7e4e678b582010211ff9eb597'],
      ['x'.repeat(100), `${'x'.repeat(48)}.09ecb6ebc8bcefc733f6f2ec44f791abeed6a99edf0cc31519637898aebd52d8`],
      ['\ud800/lone', '_lone.807127578a9a74fe732b122e34d6425888e06ae823833d9005f331615628197d'],
    ];
    for (const [id, name] of pinned) assert.equal(statusDirName(id), name, JSON.stringify(id));
  });

  it('gives the first implementation\'s name for generated ids (runs of odd characters, cut points around 48, surrogates)', () => {
    const pieces = ['a', 'Z', '9', '_', '-', '/', '.', ' ', '\u0000', '\u00e9', '\ud83d\ude00', '\ud800', 'x'.repeat(20), '//..//'];
    let seed = 7;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 5000; i++) {
      let id = '';
      const parts = next(12);
      for (let k = 0; k < parts; k++) id += pieces[next(pieces.length)];
      assert.equal(statusDirName(id), v0.statusDirName(id), JSON.stringify(id));
    }
  });

  it('statusDirFor is path.join(tasksRoot(state_dir), name) for any state_dir, and the result is its own status dir', () => {
    for (const stateDir of ['/run/nomad-driver-exec2', '/', '/srv//x/', '/a/./b/../c', '', 'rel']) {
      const dir = statusDirFor(stateDir, 'alloc/task/1');
      assert.equal(dir, path.join(tasksRoot(stateDir), statusDirName('alloc/task/1')), stateDir);
      if (stateDir.startsWith('/')) assert.equal(isOwnStatusDir(stateDir, dir), true, stateDir);
    }
  });
});
