/**
 * The task's mount namespace against a hostile job: no device node can be
 * made or used outside /dev, host mounts made later reach the task, and the
 * mounts the task's namespace holds (its /tmp, the masks over the plugin's
 * directories) never appear on the host.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { NomadLikeClient } from '../../src/client/nomad-client';
import { startNomadOrSkip } from '../harness/skip';
import { runScript } from '../harness/run-to-end';
import { assertUnchanged, HOST_PATHS, snapshot } from './helpers';

const BASE = '/var/tmp/exec2-security';

/** Mount points in this (the host's) mount namespace. */
const hostMountPoints = (): string[] => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[4]!);

describe('security: the task mount namespace (devices, propagation)', function () {
  this.timeout(120_000);
  let nomad: NomadLikeClient;
  before(async function () {
    nomad = await startNomadOrSkip(this, { unveil_by_task: true }, { baseDir: BASE });
  });
  after(async () => {
    await nomad?.cleanup();
  });

  it("a root task can neither make a device node nor use one it finds outside /dev (the host disk's numbers)", async () => {
    const before = snapshot(HOST_PATHS);
    const st = statSync('/');
    const major = Math.floor(st.dev / 256) & 0xfff;
    const minor = (st.dev & 0xff) | ((st.dev >> 12) & 0xfff00);
    // A node a task could have found in a directory it may read (planted before, or left by the host).
    const planted = path.join(BASE, `dev-${randomBytes(4).toString('hex')}`);
    mkdirSync(planted, { recursive: true });
    execFileSync('mknod', [path.join(planted, 'disk'), 'b', String(major), String(minor)]);
    execFileSync('mknod', [path.join(planted, 'null'), 'c', '1', '3']);
    chmodSync(path.join(planted, 'disk'), 0o666);
    chmodSync(path.join(planted, 'null'), 0o666);
    try {
      const r = await runScript(nomad, [
        `mknod "$NOMAD_TASK_DIR/sda" b ${major} ${minor} && echo made-block`,
        'mknod "$NOMAD_TASK_DIR/tty" c 5 0 && echo made-char',
        'mknod /tmp/sda b 8 0 && echo made-tmp',
        `head -c 16 ${planted}/disk >/dev/null && echo read-disk`,
        `echo x > ${planted}/null && echo wrote-null`,
        'echo ok > /dev/null && echo dev-null-works',
        'echo end',
      ].join('; '), { user: 'root', unveil: [`rw:${planted}`] });
      assert.match(r.all, /end/);
      assert.doesNotMatch(r.all, /made-block|made-char|made-tmp/, r.all);
      assert.doesNotMatch(r.all, /read-disk|wrote-null/, r.all);
      assert.match(r.all, /dev-null-works/);
      assert.match(r.all, /Permission denied/);
    } finally {
      rmSync(planted, { recursive: true, force: true });
    }
    assertUnchanged(before);
  });

  it('a host mount made after the start under an unveiled path reaches the task; the mounts of its namespace never reach the host', async () => {
    const dir = path.join(BASE, `late-${randomBytes(4).toString('hex')}`);
    mkdirSync(path.join(dir, 'mnt'), { recursive: true });
    // Propagation flows from shared mounts, as systemd makes every mount;
    // this machine's / is private, so the test makes its directory shared.
    execFileSync('mount', ['--bind', dir, dir]);
    execFileSync('mount', ['--make-shared', dir]);
    const t = nomad.prepareTask({
      command: 'sh',
      args: ['-c', `echo started; while [ ! -e ${dir}/go ]; do sleep 0.05; done; cat ${dir}/mnt/hello; exec sleep 1000`],
      unveil: [`r:${dir}`],
    });
    const before = new Set(hostMountPoints());
    await nomad.startTask(t);
    try {
      await t.stdout!.waitFor(/started/);
      // The task's namespace holds a /proc, its /tmp and the masks: none of them on the host.
      const after = hostMountPoints().filter((m) => !before.has(m));
      assert.deepEqual(after, [], `the task's mounts leaked to the host: ${after.join(', ')}`);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'late', path.join(dir, 'mnt')]);
      try {
        writeFileSync(path.join(dir, 'mnt', 'hello'), 'from a late mount\n');
        writeFileSync(path.join(dir, 'go'), '');
        await t.stdout!.waitFor(/from a late mount/);
      } finally {
        await nomad.stop(t.config.id, 0).catch(() => undefined);
        await nomad.wait(t.config.id);
        execFileSync('umount', [path.join(dir, 'mnt')]);
      }
    } finally {
      await nomad.destroy(t.config.id, true).catch(() => undefined);
      nomad.releaseTask(t);
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(existsSync(dir), false);
  });
});
