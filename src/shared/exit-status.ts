/**
 * The exit status pid 1 records in `<statusDir>/status`: `exited <code>` or
 * `signaled <signo>`. It is the one source of truth for how a task ended,
 * whether or not a plugin was watching at the time.
 */
import { promises as fsp, readFileSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import * as path from 'node:path';
import { systemErrorCode } from '../native/errno';

export interface RecordedStatus {
  exitCode: number;
  signal: number;
}

export const STATUS_FILE = 'status';
/** What pid 1 ever writes in a status dir: the record and, mid-write, its temp file. */
const PID1_FILES = [STATUS_FILE, `${STATUS_FILE}.tmp`] as const;

export function parseStatus(text: string): RecordedStatus | null {
  const m = /^(exited|signaled) (\d+)\s*$/.exec(text);
  if (!m) return null;
  const n = Number(m[2]);
  return m[1] === 'exited' ? { exitCode: n, signal: 0 } : { exitCode: 128 + n, signal: n };
}

export function readStatus(statusDir: string): RecordedStatus | null {
  try {
    return parseStatus(readFileSync(path.join(statusDir, STATUS_FILE), 'utf8'));
  } catch {
    return null;
  }
}

/**
 * Remove a task's status directory. pid 1 leaves at most `status` (and
 * `status.tmp` if it died mid-write) there, so two unlinks and an rmdir do it;
 * the generic recursive removal costs several times more syscalls and ran
 * on every DestroyTask. Anything unexpected falls back to it.
 */
export function removeStatusDir(statusDir: string): void {
  for (const name of PID1_FILES) {
    try {
      unlinkSync(path.join(statusDir, name));
    } catch (err) {
      if (systemErrorCode(err) !== 'ENOENT') break;
    }
  }
  try {
    rmdirSync(statusDir);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') rmSync(statusDir, { recursive: true, force: true });
  }
}

/**
 * removeStatusDir for the main thread (DestroyTask): on a journaling file
 * system (state_dir on ext4, or /run that is not a tmpfs) an unlink and an
 * rmdir wait on the journal, measured at ~1 ms per task here, which
 * blocked every other RPC; in libuv's pool they block nothing. Same steps,
 * same fallback.
 */
export async function removeStatusDirAsync(statusDir: string): Promise<void> {
  for (const name of PID1_FILES) {
    try {
      await fsp.unlink(path.join(statusDir, name));
    } catch (err) {
      if (systemErrorCode(err) !== 'ENOENT') break;
    }
  }
  try {
    await fsp.rmdir(statusDir);
  } catch (err) {
    if (systemErrorCode(err) !== 'ENOENT') await fsp.rm(statusDir, { recursive: true, force: true });
  }
}
