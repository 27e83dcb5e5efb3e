// dependency-cruiser rules (`npm run deps`, part of `npm test`): which code
// may import which (README, "Development", says the same in prose;
// test/unit/layering.test.ts shows each rule failing).
//
// Rooms: src/shared (code both threads run), src/native (the typed addon
// binding), src/workers (piscina workers), src/main (the plugin's main
// thread), src/client (the Nomad-like client), src/cli (subcommands),
// src/gen (generated protobuf code). Type-only imports count
// (tsPreCompilationDeps), so a cycle or a forbidden arrow cannot hide behind
// `import type`.

/** The modules something outside the import graph starts: bin/, piscina, npm scripts. */
const ENTRY_POINTS = [
  '^src/main/index\\.ts$', // bin/nomad-driver-exec2 runs dist/src/main/index.js
  '^src/workers/launch-worker\\.ts$', // piscina loads these by file name (src/main/launcher.ts)
  '^src/workers/exec-worker\\.ts$',
  '^src/cli/demo\\.ts$', // npm run demo
];

/** What a Nomad-like client is: it speaks the wire, it does not run the driver's insides. */
const CLIENT_MAY_IMPORT = ['^src/client/', '^src/gen/', '^src/shared/', '^src/native/', '^native/', '^src/main/config/'];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'shared-is-thread-neutral',
      comment:
        'src/shared runs on the main thread and in the workers alike: it must not pull in main-thread code ' +
        '(grpc-js, the task store), worker code, the client or the CLI.',
      severity: 'error',
      from: { path: '^src/shared/' },
      to: { path: '^src/(main|workers|client|cli)/' },
    },
    {
      name: 'workers-not-to-main',
      comment:
        'A worker imports only src/shared, src/native and src/workers: main-thread modules would load ' +
        'grpc-js and the task store into every worker (and make main <-> workers a cycle).',
      severity: 'error',
      from: { path: '^src/workers/' },
      to: { path: '^src/', pathNot: '^src/(workers|shared|native)/' },
    },
    {
      name: 'native-is-self-contained',
      comment: 'src/native is the typed addon binding: it imports nothing of ours but native/ (the addon and its types).',
      severity: 'error',
      from: { path: '^src/native/' },
      to: { path: '^(src|test|bench|tools|native|proto)/', pathNot: '^(src/native|native)/' },
    },
    {
      name: 'client-speaks-the-wire',
      comment:
        'src/client is a Nomad-like client (used by `run`, the bench and the tests): it talks to the plugin ' +
        'over gRPC and may share the generated code, src/shared, src/native and the config codecs ' +
        '(src/main/config), never the driver internals (src/main/tasks, exec, rpc, ...), the workers or the CLI.',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: CLIENT_MAY_IMPORT },
    },
    {
      name: 'main-not-to-workers',
      comment:
        'Worker modules run only in piscina threads, loaded by file name (src/main/launcher.ts): the main ' +
        'thread shares what both run through src/shared, never by importing a worker.',
      severity: 'error',
      from: { path: '^src/main/' },
      to: { path: '^src/workers/' },
    },
    {
      name: 'main-not-to-client-or-cli',
      comment:
        'The plugin never runs the Nomad-like client or a subcommand; only the entry point ' +
        '(src/main/index.ts) dispatches to src/cli.',
      severity: 'error',
      from: { path: '^src/main/', pathNot: '^src/main/index\\.ts$' },
      to: { path: '^src/(client|cli)/' },
    },
    {
      name: 'src-not-to-tests',
      comment: 'What ships (src/) never imports test or bench code.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'src-not-to-dev-deps',
      comment: 'src/ ships with production dependencies only (npm run release): a devDependency would be missing there.',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-circular',
      comment: 'No import cycles, type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-orphans',
      comment: 'A src/ module nothing imports and that imports nothing is dead (entry points excepted).',
      severity: 'error',
      from: { orphan: true, path: '^src/', pathNot: ENTRY_POINTS },
      to: {},
    },
    {
      name: 'src-reachable-from-entry-points',
      comment: 'Every src/ module is reachable from an entry point, directly or through src/client (which the tests and the bench also use).',
      severity: 'error',
      from: { path: ENTRY_POINTS },
      to: { path: '^src/', pathNot: [...ENTRY_POINTS, '\\.d\\.ts$'], reachable: false },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to no file.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-non-package-json',
      comment: 'An npm package not declared in package.json.',
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|build|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      extensions: ['.ts', '.d.ts', '.js', '.json', '.node'],
      // package.json "exports" maps (e.g. @bufbuild/protobuf/wire), resolved as Node's require() does
      exportsFields: ['exports'],
      conditionNames: ['require', 'node', 'default'],
      mainFields: ['main', 'types'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
