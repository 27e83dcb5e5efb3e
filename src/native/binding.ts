/**
 * The one place that loads the native addon. Everything else imports
 * `loadNative()` so unit tests can inject a fake binding (better-sqlite3 style)
 * and so a missing build fails with one clear message.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Exec2Native, NativeErrorCode } from '../../native/exec2_native';

export type { ConfinedSpec, Exec2Native, ExecSpec, LaunchSpec, LaunchResult, UnveilRule, UserRecord, WaitStatus, NativeErrorCode } from '../../native/exec2_native';

/** Repository root, both from src/ (ts) and dist/src/ (compiled js). */
export const PROJECT_ROOT: string = (() => {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the project root above ${__dirname}`);
})();

export const NATIVE_BUILD_DIR = path.join(PROJECT_ROOT, 'build', 'Release');
export const INIT_HELPER_PATH = path.join(NATIVE_BUILD_DIR, 'exec2-init');

let injected: Exec2Native | undefined;
let loaded: Exec2Native | undefined;

/** For unit tests of pure logic: replace the addon with a fake. */
export function injectNative(fake: Exec2Native | undefined): void {
  injected = fake;
}

export function loadNative(): Exec2Native {
  if (injected) return injected;
  if (!loaded) {
    const file = path.join(NATIVE_BUILD_DIR, 'exec2_native.node');
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a compiled .node file found at run time; import cannot load it
      loaded = require(file) as Exec2Native;
    } catch (err) {
      const e = err as Error;
      throw new Error(`native addon not built (${file}): ${e.message}; run "npm run build"`, { cause: err });
    }
  }
  return loaded;
}

/** What the addon throws (exec2_native.d.ts): an Error with one of our codes. */
export interface NativeError extends Error {
  code: NativeErrorCode;
  errno?: number;
  path?: string;
  syscall?: string;
}

export function isNativeError(err: unknown): err is NativeError {
  const code: unknown = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && code.startsWith('EXEC2_');
}

/** Signal targets understood by the init helper (mirror of the const enum in the .d.ts). */
export const SIGNAL_TARGET_GROUP = 0;
export const SIGNAL_TARGET_ALL = 1;
