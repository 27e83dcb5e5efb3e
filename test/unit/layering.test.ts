/**
 * The dependency rules of .dependency-cruiser.cjs can fail: the real config,
 * run by the depcruise CLI (as `npm run deps` runs it), over a tiny tree with
 * one bad arrow per rule, reports exactly those arrows — and none of the
 * allowed ones beside them. `npm run deps` over the real tree is the other
 * half: it passes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../../src/native/binding';

/** Fixture files: path → source. Comments say which rule a line is there to break. */
const TREE: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'fixture', private: true, dependencies: { '@grpc/grpc-js': '*' }, devDependencies: { typescript: '*' } }),
  'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'commonjs', moduleResolution: 'node', strict: true }, include: ['src', 'test', 'native'] }),
  'native/addon.d.ts': 'export interface Addon { launch(): number }\n',
  'test/harness/util.ts': 'export const util = 1;\n',

  // Entry points and the allowed arrows.
  'src/main/index.ts': [
    "import './server';",
    "import '../cli/doctor';", // the entry point may dispatch to a subcommand
  ].join('\n'),
  'src/main/server.ts': [
    "import { ok } from '../shared/ok';",
    "import { grpcOk } from '@grpc/grpc-js';", // a production dependency
    "import { s } from '../shared/bad-shared';",
    "import type { A } from './tasks/a';",
    "import { client } from '../client/nomad-client';", // main-not-to-client-or-cli
    "import { util } from '../../test/harness/util';", // src-not-to-tests
    "import { nope } from './nope';", // not-to-unresolvable
    "import worker from '../workers/launch-worker';", // main-not-to-workers
    "import { Piscina } from 'piscina';", // no-non-package-json (installed, not declared)
    'export const server = [ok, grpcOk, s, client, util, nope, worker, Piscina];',
    'export type T = A;',
  ].join('\n'),
  'src/shared/ok.ts': 'export const ok = 1;\n',
  'src/shared/bad-shared.ts': "import { store } from '../main/tasks/store';\nexport const s = store;\n", // shared-is-thread-neutral
  'src/main/tasks/store.ts': 'export const store = 1;\n',
  // no-circular, with type-only imports on both sides (tsPreCompilationDeps)
  'src/main/tasks/a.ts': "import type { B } from './b';\nexport interface A { b?: B }\n",
  'src/main/tasks/b.ts': "import type { A } from './a';\nexport interface B { a?: A }\n",
  'src/main/metrics.ts': 'export const metrics = 1;\n',
  'src/main/rpc/go-plugin.ts': "export const COOKIE = 'x';\n",
  'src/main/config/codec.ts': "import type { SourceFile } from 'typescript';\nexport type C = SourceFile;\nexport const codec = 1;\n", // a type-only dev dependency is fine
  'src/main/dead.ts': 'export const dead = 1;\n', // no-orphans, and so unreachable
  'src/main/unreached.ts': "import { ok } from '../shared/ok';\nexport const u = ok;\n", // src-reachable-from-entry-points
  'src/workers/launch-worker.ts': [
    "import { ok } from '../shared/ok';",
    "import { binding } from '../native/binding';",
    "import { metrics } from '../main/metrics';", // workers-not-to-main
    'export default [ok, binding, metrics];',
  ].join('\n'),
  'src/workers/exec-worker.ts': "import * as ts from 'typescript';\nexport default ts;\n", // src-not-to-dev-deps
  'src/native/binding.ts': [
    "import type { Addon } from '../../native/addon';",
    "import { ok } from '../shared/ok';", // native-is-self-contained
    'export const binding: Addon | number = ok;',
  ].join('\n'),
  'src/client/nomad-client.ts': [
    "import { codec } from '../main/config/codec';",
    "import { wire } from '../gen/wire';",
    "import { ok } from '../shared/ok';",
    "import { binding } from '../native/binding';",
    "import { COOKIE } from '../main/rpc/go-plugin';", // client-speaks-the-wire
    'export const client = [codec, wire, ok, binding, COOKIE];',
  ].join('\n'),
  'src/gen/wire.ts': 'export const wire = 1;\n',
  'src/cli/demo.ts': "import { client } from '../client/nomad-client';\nexport const demo = client;\n",
  'src/cli/doctor.ts': "import { client } from '../client/nomad-client';\nimport { parse } from './args';\nexport const doctor = [client, parse];\n",
  // no-circular through a lazy require(), as src/cli/args.ts once had
  'src/cli/args.ts': "export function parse(): unknown {\n  return (require('./jobfile') as { job: number }).job;\n}\n",
  'src/cli/jobfile.ts': "import { parse } from './args';\nexport const job = parse;\n",
};

const EXPECTED = [
  'shared-is-thread-neutral src/shared/bad-shared.ts -> src/main/tasks/store.ts',
  'workers-not-to-main src/workers/launch-worker.ts -> src/main/metrics.ts',
  'native-is-self-contained src/native/binding.ts -> src/shared/ok.ts',
  'client-speaks-the-wire src/client/nomad-client.ts -> src/main/rpc/go-plugin.ts',
  'main-not-to-client-or-cli src/main/server.ts -> src/client/nomad-client.ts',
  'main-not-to-workers src/main/server.ts -> src/workers/launch-worker.ts',
  'src-not-to-tests src/main/server.ts -> test/harness/util.ts',
  'src-not-to-dev-deps src/workers/exec-worker.ts -> node_modules/typescript/lib/typescript.js',
  'no-circular src/main/tasks/a.ts <-> src/main/tasks/b.ts',
  'no-circular src/cli/args.ts <-> src/cli/jobfile.ts',
  'no-orphans src/main/dead.ts -> src/main/dead.ts',
  'src-reachable-from-entry-points src/main/dead.ts -> src/main/dead.ts',
  'src-reachable-from-entry-points src/main/unreached.ts -> src/main/unreached.ts',
  'not-to-unresolvable src/main/server.ts -> ./nope',
  'no-non-package-json src/main/server.ts -> node_modules/piscina/dist/main.js',
].sort();

interface Violation {
  type: string;
  from: string;
  to: string;
  rule: { name: string };
}

/** One line per finding: a cycle once whichever edge depcruise names, a package by its path below node_modules. */
function finding(v: Violation): string {
  const to = v.to.replace(/^.*\/node_modules\//, 'node_modules/');
  if (v.type === 'cycle') return `${v.rule.name} ${[v.from, to].sort().join(' <-> ')}`;
  return `${v.rule.name} ${v.from} -> ${to}`;
}

const CONFIG = path.join(PROJECT_ROOT, '.dependency-cruiser.cjs');

function depcruise(dir: string, outputType: 'json' | 'err'): { status: number | null; stdout: string; stderr: string } {
  const cli = path.join(PROJECT_ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
  return spawnSync(process.execPath, [cli, '--config', CONFIG, '--output-type', outputType, 'src', 'test'], { cwd: dir, encoding: 'utf8' });
}

function cruise(dir: string): Violation[] {
  const r = depcruise(dir, 'json');
  assert.ok(r.stdout.startsWith('{'), `depcruise printed no report (exit ${String(r.status)}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

function writeTree(dir: string, tree: Record<string, string>): void {
  for (const [rel, text] of Object.entries(tree)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  }
}

describe('layering rules (.dependency-cruiser.cjs)', function () {
  this.timeout(60_000);
  let dir = '';

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'exec2-layering-'));
    writeTree(path.join(dir, 'all'), TREE);
    // real packages to resolve: a production one, a dev one, an undeclared one
    symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(dir, 'all', 'node_modules'));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reports each forbidden arrow of the fixture, and only those', () => {
    assert.deepEqual(cruise(path.join(dir, 'all')).map(finding).sort(), EXPECTED);
  });

  it('fails the command `npm run deps` runs (exit status non-zero) on one bad arrow', () => {
    const one = path.join(dir, 'one');
    writeTree(one, {
      'package.json': JSON.stringify({ name: 'fixture', private: true }),
      'tsconfig.json': '{}',
      'src/workers/launch-worker.ts': "import { server } from '../main/server';\nexport default server;\n",
      'src/main/server.ts': 'export const server = 1;\n',
      'test/ok.test.ts': "import server from '../src/workers/launch-worker';\nexport const t = server;\n",
    });
    const r = depcruise(one, 'err');
    assert.notEqual(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /error workers-not-to-main: src\/workers\/launch-worker\.ts → src\/main\/server\.ts/);
  });

  it('names entry points that exist, so the reachability rule has somewhere to start', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the CommonJS config file itself, as depcruise loads it
    const config = require(CONFIG) as { forbidden: Array<{ name: string; from: { path?: string[] } }> };
    const rule = config.forbidden.find((r) => r.name === 'src-reachable-from-entry-points');
    const entries = rule?.from.path ?? [];
    assert.ok(entries.length > 0);
    for (const re of entries) {
      const file = re.replace(/^\^/, '').replace(/\$$/, '').replace(/\\\./g, '.');
      assert.ok(existsSync(path.join(PROJECT_ROOT, file)), `entry point ${file} (${re}) does not exist`);
    }
  });
});
