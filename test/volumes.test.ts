/**
 * Host and CSI volumes (`volume` / `volume_mount`): Nomad hands the resolved
 * mounts in TaskConfig.mounts; each is bound into the task's own mount
 * namespace at its destination below the task directory, unveiled `r` or
 * `rwc`, and never shows in the host's mount table.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { NomadLikeClient, TaskInput } from '../src/client/nomad-client';
import { startNomadOrSkip } from './harness/skip';
import { expectStatus } from './harness/assert-status';
import { runToEnd } from './harness/run-to-end';

const BASE = '/var/tmp/exec2-volumes';
const hostMountPoints = (): string[] => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[4]!);

describe('volumes (volume_mount: host and CSI)', function () {
  this.timeout(120_000);
  let nomad: NomadLikeClient;
  let vol: string;
  before(async function () {
    nomad = await startNomadOrSkip(this);
    vol = path.join(BASE, `vol-${randomBytes(4).toString('hex')}`);
    mkdirSync(vol, { recursive: true });
    chmodSync(vol, 0o777);
    writeFileSync(path.join(vol, 'seed'), 'from the host\n', { mode: 0o666 });
  });
  after(async () => {
    await nomad?.cleanup();
    if (vol) rmSync(vol, { recursive: true, force: true });
  });

  it('mounts a read-only volume at its destination below the task dir: readable, writes refused, the host path itself not unveiled', async () => {
    const before = hostMountPoints();
    const r = await runToEnd(nomad, {
      command: 'sh',
      args: ['-c', `d="$NOMAD_TASK_DIR/../data"; cat "$d/seed"; echo x > "$d/new" 2>&1 || echo write-refused; cat ${vol}/seed >/dev/null 2>&1 || echo host-path-veiled; grep -c " $(readlink -f "$d") " /proc/self/mountinfo`],
      volumes: [{ taskPath: '/data', hostPath: vol, readonly: true }],
    });
    assert.equal(r.exit, 0, r.all);
    assert.match(r.all, /from the host/);
    assert.match(r.all, /write-refused/);
    assert.equal(existsSync(path.join(vol, 'new')), false);
    assert.deepEqual(hostMountPoints(), before, 'the volume showed in the host mount table');
  });

  it('mounts a read-write volume that two tasks of one allocation share, and an exec session sees it too', async () => {
    const allocId = `v-${randomBytes(4).toString('hex')}`;
    const volumes = [{ taskPath: 'shared/rw', hostPath: vol, readonly: false }];
    const writer = await runToEnd(nomad, { allocId, name: 'writer', command: 'sh', args: ['-c', 'echo written-by-writer > "$NOMAD_TASK_DIR/../shared/rw/out" && echo ok'], volumes });
    assert.equal(writer.exit, 0, writer.all);
    assert.equal(readFileSync(path.join(vol, 'out'), 'utf8'), 'written-by-writer\n');
    const { task } = await nomad.run({ allocId, name: 'reader', command: 'sh', args: ['-c', 'cat "$NOMAD_TASK_DIR/../shared/rw/out"; exec sleep 1000'], volumes });
    try {
      await task.stdout!.waitFor(/written-by-writer/);
      const s = await nomad.exec(task.config.id, ['sh', '-c', 'cat "$NOMAD_TASK_DIR/../shared/rw/seed"']);
      assert.equal(s.stdout, 'from the host\n');
    } finally {
      await nomad.stop(task.config.id, 0).catch(() => undefined);
      await nomad.wait(task.config.id);
      await nomad.destroy(task.config.id, true);
      nomad.releaseTask(task);
      rmSync(path.join(vol, 'out'), { force: true });
    }
  });

  it('never mounts through a symlink the task planted at its destination: the restart is refused, naming the link', async () => {
    const t = nomad.prepareTask({ command: 'true', volumes: [{ taskPath: 'local/vol', hostPath: vol }] });
    try {
      await nomad.startTask(t);
      await nomad.wait(t.config.id);
      await nomad.destroy(t.config.id, true);
      // What the task can do with its rwxc on local/: swap the mount point for a link.
      const dest = path.join(t.env.NOMAD_TASK_DIR!, 'vol');
      rmSync(dest, { recursive: true, force: true });
      symlinkSync('/etc', dest);
      await expectStatus(nomad.startTask(t), grpc.status.FAILED_PRECONDITION, /local\/vol is a symbolic link; refusing to follow it/);
      assert.equal(readFileSync(path.join(vol, 'seed'), 'utf8'), 'from the host\n');
    } finally {
      nomad.releaseTask(t);
    }
  });

  it('refuses what it cannot honour, with a clear StartTask error: a missing host path, bidirectional propagation, SELinux labels, a destination outside the task dir or over its own dirs', async () => {
    const cases: Array<[TaskInput['volumes'], grpc.status, RegExp]> = [
      [[{ taskPath: '/data', hostPath: path.join(BASE, 'no-such-volume') }], grpc.status.FAILED_PRECONDITION, /volume host path does not exist: .*no-such-volume/],
      [[{ taskPath: '/data', hostPath: vol, propagationMode: 'bidirectional' }], grpc.status.FAILED_PRECONDITION, /propagation_mode "bidirectional" is not supported/],
      [[{ taskPath: '/data', hostPath: vol, selinuxLabel: 'z' }], grpc.status.FAILED_PRECONDITION, /SELinux labels \("z"\) are not supported/],
      [[{ taskPath: '../../etc', hostPath: vol }], grpc.status.INVALID_ARGUMENT, /must lie inside the task directory/],
      [[{ taskPath: '/local', hostPath: vol }], grpc.status.FAILED_PRECONDITION, /would hide the task's own local directory/],
    ];
    for (const [volumes, code, re] of cases) {
      const t = nomad.prepareTask({ command: 'true', volumes });
      try {
        await expectStatus(nomad.startTask(t), code, re);
      } finally {
        nomad.releaseTask(t);
      }
    }
  });
});
