// ESLint flat config (`npm run lint`, part of `npm test`).
//
// What is linted: every TypeScript file of ours — src/ (except the generated
// src/gen/, which `npm run proto` rewrites), test/, bench/, tools/, and the
// addon's hand-written types in native/ — with
// typescript-eslint's type-checked recommended rules (they see through
// promises: no-floating-promises, no-misused-promises, await-thenable) plus
// the habits below. Types come from tsconfig.json through the project
// service, so lint and `tsc` judge the same program.
//
// Inline `eslint-disable` comments must say why (`-- reason`), and one that
// no longer suppresses anything is an error.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Our own rule: an eslint-disable / eslint-enable comment carries a
 * description after ` -- ` (ESLint core parses it, but requires none). The
 * community eslint-comments plugin has the same check; this is small enough
 * not to need a dependency.
 */
const requireDisableReason = {
  meta: {
    type: 'suggestion',
    docs: { description: 'require a `-- reason` on every eslint-disable comment' },
    schema: [],
    messages: { missing: 'say why: `{{kind}} <rule> -- <reason>`' },
  },
  create(context) {
    return {
      Program() {
        for (const comment of context.sourceCode.getAllComments()) {
          const m = /^\s*(eslint-disable(?:-next-line|-line)?)(?=\s|$)/.exec(comment.value);
          if (m === null) continue;
          // the separator as ESLint reads it: two or more dashes between blanks
          const desc = comment.value.split(/\s-{2,}\s/).slice(1).join(' -- ').trim();
          if (desc === '') context.report({ loc: comment.loc, messageId: 'missing', data: { kind: m[1] } });
        }
      },
    };
  },
};

export default tseslint.config(
  {
    ignores: ['dist/', 'build/', 'node_modules/', 'src/gen/', 'bench/results/', '**/*.js', '**/*.cjs', '**/*.mjs'],
  },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
      reportUnusedInlineConfigs: 'error',
    },
    plugins: { local: { rules: { 'require-disable-reason': requireDisableReason } } },
    rules: {
      'local/require-disable-reason': 'error',
      // No `any` at boundaries (also in recommended; stated here because it is ours).
      '@typescript-eslint/no-explicit-any': 'error',
      // `_name` marks a parameter or binding that is deliberately unused,
      // e.g. `const { dir: _dir, ...rest } = opts` to leave a field out.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
      // Off: its every finding in this tree (37) was `call(client, client.method, req)`
      // (src/client/plugin-process.ts), which invokes the method on the client it is
      // given; the rule cannot see that binding, and no other code passes a method
      // without its object.
      '@typescript-eslint/unbound-method': 'off',
      eqeqeq: ['error', 'always'],
      'prefer-const': 'error',
    },
  },
);
