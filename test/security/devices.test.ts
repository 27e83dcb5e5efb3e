/**
 * Device nodes: a root task (which holds CAP_MKNOD from the default
 * allow_caps) must not create a node for the host's disk in a directory it
 * can write, nor read the disk through one. The fix lives in the Landlock
 * `c` mode (no MAKE_CHAR / MAKE_BLOCK) and in nodev task mounts (issue 11's
 * side of the sandbox); this test plays the attack against both.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { NomadLikeClient } from '../../src/client/nomad-client';
import { startNomadOrSkip } from '../harness/skip';
import { Canary, runToEnd } from './helpers';

/** The block device holding the root filesystem, as major:minor. */
function rootDisk(): { major: number; minor: number } {
  const dev = statSync('/').dev;
  // st_dev of / is the partition; its whole disk is as good a target.
  return { major: Math.floor(dev / 256) & 0xfff, minor: (dev & 0xff) | ((dev >> 12) & 0xfff00) };
}

describe('security: device nodes (root task)', function () {
  this.timeout(60_000);
  let nomad: NomadLikeClient;
  let canary: Canary;

  before(async function () {
    nomad = await startNomadOrSkip(this);
    canary = new Canary();
  });

  afterEach(() => canary?.assertUnchanged());

  after(async () => {
    canary?.remove();
    if (nomad) assert.deepEqual(await nomad.cleanup(), [], 'cgroups left behind');
  });

  it('cannot mknod the host disk\'s block device (or /dev/kmsg\'s char device) in its task dir, nor read through one', async () => {
    const { major, minor } = rootDisk();
    // A root on a virtual filesystem (major 0: overlay, tmpfs) has no disk to
    // aim at; /dev/kmsg's numbers are the same everywhere.
    const specs = [...(major > 0 ? [`disk b ${major} ${minor}`] : []), 'kmsg c 1 11'];
    const script = [
      `for spec in ${specs.map((x) => `"${x}"`).join(' ')}; do`,
      '  set -- $spec',
      '  if mknod "$NOMAD_TASK_DIR/$1" $2 $3 $4 2>/dev/null; then echo "$1 MADE"; else echo "$1 refused"; fi',
      '  if head -c 16 "$NOMAD_TASK_DIR/$1" >/dev/null 2>&1; then echo "$1 READ"; else echo "$1 unreadable"; fi',
      'done',
    ].join('\n');
    const r = await runToEnd(nomad, { user: 'root', command: 'sh', args: ['-c', script] });
    const local = path.join(r.task.taskDir, 'local');
    const left = existsSync(local) ? readdirSync(local).filter((f) => f === 'disk' || f === 'kmsg') : [];
    assert.equal(r.exit, 0, r.err);
    const want = specs.flatMap((x) => { const n = x.split(' ')[0]; return [`${n} refused`, `${n} unreadable`]; });
    assert.deepEqual(r.out.trim().split('\n'), want, r.out);
    assert.deepEqual(left, [], 'a device node was left in the task directory');
  });
});
