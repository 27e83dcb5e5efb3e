/**
 * Shared pieces of the privilege-and-limit security tests: run a task to its
 * end and collect its output, read capability lines, and a canary outside
 * every task whose owner, mode and content must never change.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { NomadLikeClient, PreparedTask, TaskInput } from '../../src/client/nomad-client';

export interface Finished {
  exit: number;
  signal: number;
  out: string;
  err: string;
}

/** StartTask, WaitTask, the output drained, DestroyTask and Nomad's cleanup. */
export async function runToEnd(nomad: NomadLikeClient, input: TaskInput): Promise<Finished & { task: PreparedTask }> {
  const { task } = await nomad.run(input);
  const r = await nomad.wait(task.config.id);
  await task.stdout?.drain();
  await task.stderr?.drain();
  const out = task.stdout?.text() ?? '';
  const err = task.stderr?.text() ?? '';
  await nomad.destroy(task.config.id, true);
  nomad.releaseTask(task);
  return { task, exit: r.result.exitCode, signal: r.result.signal, out, err };
}

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
