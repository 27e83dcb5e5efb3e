/** src/gen is exactly what `npm run proto` makes from proto/ (no hand edits, no drift). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../../src/native/binding';

function files(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = path.join(dir, e);
    return statSync(p).isDirectory() ? files(p, base) : [path.relative(base, p)];
  });
}

describe('generated protobuf code', function () {
  this.timeout(60_000);
  it('matches a fresh generation from proto/', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'exec2-gen-'));
    try {
      execFileSync(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'buf'), ['generate', '--output', out], { cwd: PROJECT_ROOT, stdio: 'pipe' });
      const fresh = path.join(out, 'src', 'gen');
      const committed = path.join(PROJECT_ROOT, 'src', 'gen');
      assert.deepEqual(files(fresh).sort(), files(committed).sort());
      for (const f of files(fresh)) assert.equal(readFileSync(path.join(committed, f), 'utf8'), readFileSync(path.join(fresh, f), 'utf8'), `${f} differs: run npm run proto`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
