/** statusDirName of commit 68afbc6 (src/main/tasks/status-dir.ts): the oracle of test/unit/status-dir.test.ts. */
import { createHash } from 'node:crypto';

/** Longest readable prefix kept from the id (the hash makes the name unique). */
const PREFIX_MAX = 48;

export function statusDirName(taskId: string): string {
  const prefix = taskId.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, PREFIX_MAX);
  const digest = createHash('sha256').update(taskId, 'utf8').digest('hex');
  return `${prefix}.${digest}`;
}
