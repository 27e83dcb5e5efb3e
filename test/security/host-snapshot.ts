/**
 * "Nothing outside the task changed": owner, mode, size and content (a hash)
 * of chosen host paths before and after a hostile task ran, and for
 * directories the names they hold.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';

export type Snapshot = Map<string, string>;

function describe(p: string): string {
  let st;
  try {
    st = lstatSync(p);
  } catch (err) {
    return `missing (${(err as NodeJS.ErrnoException).code})`;
  }
  const head = `uid=${st.uid} gid=${st.gid} mode=${(st.mode & 0o177777).toString(8)}`;
  if (st.isDirectory()) return `${head} entries=${readdirSync(p).sort().join(',')}`;
  if (st.isFile()) return `${head} size=${st.size} sha256=${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  return head;
}

export function snapshot(paths: readonly string[]): Snapshot {
  return new Map(paths.map((p) => [p, describe(p)]));
}

export function assertUnchanged(before: Snapshot): void {
  for (const [p, was] of before) assert.equal(describe(p), was, `${p} changed`);
}

/** Host files a hostile task would go for. */
export const HOST_PATHS = ['/', '/etc', '/etc/passwd', '/etc/shadow', '/root'];
