/**
 * The exit status pid 1 records in `<statusDir>/status`: `exited <code>` or
 * `signaled <signo>`. It is the one source of truth for how a task ended,
 * whether or not a plugin was watching at the time.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

export interface RecordedStatus {
  exitCode: number;
  signal: number;
}

export const STATUS_FILE = 'status';

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
