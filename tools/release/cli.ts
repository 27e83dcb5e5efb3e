/**
 * `npm run release [-- --out DIR] [--version V ...] [--no-deb]`: the linux-x64
 * release tarball (+ .sha256) and the .deb (+ .sha256) of this tree.
 * --version defaults to package.json's; given more than once, one compile
 * serves an artifact per version (the upgrade test uses two).
 */
import { rmSync, mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { assembleArtifact, buildDeb, compileCleanCopy } from './build';
import { checkVersion } from './layout';

const log = (l: string): void => void process.stderr.write(`${l}\n`);

function main(): number {
  const sourceRoot = path.resolve(__dirname, '..', '..', '..');
  const { values } = parseArgs({
    options: { out: { type: 'string' }, version: { type: 'string', multiple: true }, 'no-deb': { type: 'boolean' }, 'keep-build': { type: 'boolean' } },
    strict: true,
  });
  const outDir = path.resolve(values.out ?? path.join(sourceRoot, 'dist', 'release'));
  const pkgVersion = (JSON.parse(readFileSync(path.join(sourceRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const versions = (values.version ?? [pkgVersion]).map(checkVersion);
  mkdirSync(outDir, { recursive: true });
  const tree = compileCleanCopy(sourceRoot, log);
  try {
    for (const v of versions) {
      const a = assembleArtifact(tree, sourceRoot, v, outDir, log);
      if (!values['no-deb']) buildDeb(a, outDir, log);
    }
  } finally {
    if (!values['keep-build']) rmSync(tree, { recursive: true, force: true });
  }
  return 0;
}

try {
  process.exitCode = main();
} catch (err) {
  log(`release: ${(err as Error).message}`);
  process.exitCode = 1;
}
