/**
 * Where a task's status directory lives: <state_dir>/tasks/<name>, one
 * directory per task id. The id comes from the wire and may be anything
 * ("..", "/", NUL, 4 KiB long), so the name is a readable, sanitised prefix
 * of the id plus the SHA-256 of the whole id: always a single, short path
 * component, never "." or "..", and distinct ids get distinct names.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';

/** Longest readable prefix kept from the id (the hash makes the name unique). */
const PREFIX_MAX = 48;

export function statusDirName(taskId: string): string {
  const prefix = taskId.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, PREFIX_MAX);
  const digest = createHash('sha256').update(taskId, 'utf8').digest('hex');
  return `${prefix}.${digest}`;
}

export function tasksRoot(stateDir: string): string {
  return path.join(stateDir, 'tasks');
}

export function statusDirFor(stateDir: string, taskId: string): string {
  return path.join(tasksRoot(stateDir), statusDirName(taskId));
}

/**
 * Whether `dir` (from driver_state, i.e. from the wire on RecoverTask) is
 * exactly one level below <state_dir>/tasks, as every status directory this
 * driver ever made is: only such a directory may be removed. Older handles
 * (names from encodeURIComponent of the id) pass unless their name was "."
 * or "..", which is exactly the case that must never be removed.
 */
export function isOwnStatusDir(stateDir: string, dir: string): boolean {
  if (dir.includes('\0') || !path.isAbsolute(dir)) return false;
  const base = path.basename(dir);
  if (base === '' || base === '.' || base === '..') return false;
  return dir === path.join(tasksRoot(stateDir), base);
}
