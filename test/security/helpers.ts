/**
 * Shared pieces of the security tests: run a task to its end and collect its
 * output, read capability lines, and "nothing outside the task changed": a
 * canary outside every task whose owner, mode and content must never change,
 * and snapshots (owner, mode, size, content hash, directory entries) of the
 * host files a hostile task would go for.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export { runToEnd, type Ended as Finished } from '../harness/run-to-end';

/** The Cap* lines of /proc/<pid>/status as hex strings: { CapBnd: '0000...', ... }. */
export function capLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^(Cap(?:Inh|Prm|Eff|Bnd|Amb)):\s+([0-9a-f]{16})$/gm)) out[m[1]!] = m[2]!;
  return out;
}

export const CAP_STATUS = 'grep -E "^Cap(Inh|Prm|Eff|Bnd|Amb):" /proc/self/status';

/** A root-owned file outside every task (in /run, which no default rule unveils). */
export class Canary {
  readonly dir = path.join('/run', `exec2-canary-${randomBytes(4).toString('hex')}`);
  readonly file = path.join(this.dir, 'canary');
  private readonly content = randomBytes(16).toString('hex');

  constructor() {
    mkdirSync(this.dir, { mode: 0o755 });
    writeFileSync(this.file, this.content, { mode: 0o644 });
  }

  /** Owner, mode and content exactly as made. */
  assertUnchanged(): void {
    const st = statSync(this.file);
    assert.equal(st.uid, 0, 'canary owner changed');
    assert.equal(st.gid, 0, 'canary group changed');
    assert.equal(st.mode & 0o7777, 0o644, 'canary mode changed');
    assert.equal(readFileSync(this.file, 'utf8'), this.content, 'canary content changed');
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Hex mask of capability numbers, as /proc/self/status prints it. */
export function mask(caps: readonly number[]): string {
  let m = 0n;
  for (const c of caps) m |= 1n << BigInt(c);
  return m.toString(16).padStart(16, '0');
}

export type Snapshot = Map<string, string>;

function describePath(p: string): string {
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
  return new Map(paths.map((p) => [p, describePath(p)]));
}

export function assertUnchanged(before: Snapshot): void {
  for (const [p, was] of before) assert.equal(describePath(p), was, `${p} changed`);
}

/** Host files a hostile task would go for. */
export const HOST_PATHS = ['/', '/etc', '/etc/passwd', '/etc/shadow', '/root'];
