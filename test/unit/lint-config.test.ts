/**
 * eslint.config.mjs's own rule, `local/require-disable-reason`: an
 * eslint-disable comment without a `-- reason` is an error; one with a
 * reason, and any eslint-enable, is not. Also: the config makes an unused
 * disable an error.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Linter, type ESLint } from 'eslint';
import { PROJECT_ROOT } from '../../src/native/binding';

// eslint-disable-next-line @typescript-eslint/no-require-imports -- the ES module config as ESLint loads it (Node's require of ESM)
const { default: config } = require(path.join(PROJECT_ROOT, 'eslint.config.mjs')) as { default: Linter.Config[] };

const ours = config.find((c) => c.plugins?.local !== undefined);
const local = ours?.plugins?.local as ESLint.Plugin;

function problems(code: string): string[] {
  const linter = new Linter({ configType: 'flat' });
  const messages = linter.verify(code, [
    {
      plugins: { local },
      rules: { 'local/require-disable-reason': 'error', 'no-console': 'error' },
      linterOptions: ours?.linterOptions ?? {},
    },
  ]);
  return messages.map((m) => `${m.line}:${m.ruleId ?? 'directive'}`);
}

describe('eslint.config.mjs', () => {
  it('finds its own plugin and makes an unused disable an error', () => {
    assert.ok(local?.rules?.['require-disable-reason'], 'local/require-disable-reason is in the config');
    assert.equal(ours?.linterOptions?.reportUnusedDisableDirectives, 'error');
    assert.deepEqual(problems('// eslint-disable-next-line no-console -- nothing to silence\nconst a = 1;\nvoid a;\n'), ['1:directive']);
  });

  it('wants a reason on every eslint-disable form', () => {
    assert.deepEqual(problems('// eslint-disable-next-line no-console\nconsole.log(1);\n'), ['1:local/require-disable-reason']);
    assert.deepEqual(problems('console.log(1); // eslint-disable-line no-console\n'), ['1:local/require-disable-reason']);
    assert.deepEqual(problems('/* eslint-disable no-console */\nconsole.log(1);\n'), ['1:local/require-disable-reason']);
    assert.deepEqual(problems('// eslint-disable-next-line no-console --   \nconsole.log(1);\n'), ['1:local/require-disable-reason']);
  });

  it('accepts a disable that says why, an eslint-enable, and comments that only mention eslint', () => {
    assert.deepEqual(problems('// eslint-disable-next-line no-console -- the CLI prints\nconsole.log(1);\n'), []);
    assert.deepEqual(problems('/* eslint-disable no-console -- a script */\nconsole.log(1);\n/* eslint-enable no-console */\n'), []);
    assert.deepEqual(problems('// eslint-disabled is not a directive\n// see eslint-disable in the docs\nconst a = 1;\nvoid a;\n'), []);
  });
});
