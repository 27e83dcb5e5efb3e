/**
 * Where a task's status directory lives: <state_dir>/tasks/<name>, one
 * directory per task id. The id comes from the wire and may be anything
 * ("..", "/", NUL, 4 KiB long), so the name is a readable, sanitised prefix
 * of the id plus the SHA-256 of the whole id: always a single, short path
 * component, never "." or "..", and distinct ids get distinct names.
 */
import { hash } from 'node:crypto';
import * as path from 'node:path';

/** Longest readable prefix kept from the id (the hash makes the name unique). */
const PREFIX_MAX = 48;

export function statusDirName(taskId: string): string {
  // One-shot hash: no Hash object per launch. A string is hashed as UTF-8
  // (a lone surrogate as U+FFFD), as createHash().update(id, 'utf8') did;
  // test/unit/status-dir.test.ts pins the names of known ids.
  return `${readablePrefix(taskId)}.${hash('sha256', taskId, 'hex')}`;
}

/** [A-Za-z0-9_-] */
const isKept = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x2d;

/**
 * `id.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, PREFIX_MAX)` (each run of
 * other UTF-16 code units becomes one '_'), built only as far as it is kept:
 * every step adds one character, so stopping at PREFIX_MAX is the slice.
 */
function readablePrefix(id: string): string {
  let out = '';
  let inRun = false;
  for (let i = 0; i < id.length && out.length < PREFIX_MAX; i++) {
    if (isKept(id.charCodeAt(i))) {
      out += id.charAt(i);
      inRun = false;
    } else if (!inRun) {
      out += '_';
      inRun = true;
    }
  }
  return out;
}

/** tasksRoot of the last state_dir asked for: one per config, asked on every launch. */
let lastStateDir: string | null = null;
let lastTasksRoot = '';

export function tasksRoot(stateDir: string): string {
  if (stateDir !== lastStateDir) {
    lastTasksRoot = path.join(stateDir, 'tasks');
    lastStateDir = stateDir;
  }
  return lastTasksRoot;
}

export function statusDirFor(stateDir: string, taskId: string): string {
  // = path.join(tasksRoot(stateDir), name): the root is a path.join result
  // (normalised, never ending in '/': its last component is "tasks") and the
  // name one component of [A-Za-z0-9_-.] that is never "." or ".." (it has
  // 64 hex digits), so joining has nothing to normalise.
  return `${tasksRoot(stateDir)}/${statusDirName(taskId)}`;
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
