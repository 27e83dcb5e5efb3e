// Moved to src/client (shared with the `run` command); kept so test imports stay short.
export * from '../../src/client/plugin-process';
