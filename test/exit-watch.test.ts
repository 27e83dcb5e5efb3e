/**
 * The pidfd exit watcher: only an exit is an exit. A poll error (what libuv
 * reports for POLLERR) on the pidfd of a live process must neither close the
 * pidfd nor report the process exited; its real exit is still reported.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { loadNative, type WaitStatus } from '../src/native/binding';

/** A process that is not our child (its parent shell exited), like a recovered task. */
function orphanSleeper(): number {
  return Number(execFileSync('sh', ['-c', 'sleep 1000 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).trim());
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const turns = (n: number): Promise<void> => new Promise((r) => setTimeout(r, n));

describe('pidfd exit watcher', () => {
  const native = loadNative();

  it('treats a poll error on a live process as no exit, keeps its pidfd, and still reports the real exit', async () => {
    const pid = orphanSleeper();
    const pidfd = native.pidfdOpen(pid);
    const seen: Array<WaitStatus | null> = [];
    let resolveExit!: () => void;
    const exited = new Promise<void>((r) => {
      resolveExit = r;
    });
    native.watchExit(pidfd, (st) => {
      seen.push(st);
      resolveExit();
    });
    try {
      for (let i = 0; i < 3; i++) {
        assert.equal(native.simulateWatchError(pidfd), true, 'the watch is still there');
        // several recheck periods (10, 20, 40 ms backoff)
        await turns(100);
        assert.deepEqual(seen, [], 'a poll error was reported as an exit');
        assert.ok(alive(pid));
        assert.equal(readlinkSync(`/proc/self/fd/${pidfd}`), 'anon_inode:[pidfd]', 'the pidfd was closed');
      }
    } finally {
      process.kill(pid, 'SIGKILL');
    }
    await exited;
    assert.deepEqual(seen, [null], 'not our child: exited, status not ours to know');
    assert.equal(native.simulateWatchError(pidfd), false, 'the watch ended');
  });

  it('reports an exit that happens while it rechecks after a poll error', async () => {
    const pid = orphanSleeper();
    const pidfd = native.pidfdOpen(pid);
    const done = new Promise<WaitStatus | null>((r) => native.watchExit(pidfd, r));
    assert.equal(native.simulateWatchError(pidfd), true);
    process.kill(pid, 'SIGKILL');
    assert.equal(await done, null);
  });

  it('refuses a closed fd with EXEC2_INVALID_ARGUMENT', () => {
    assert.throws(() => native.watchExit(987654, () => undefined), (err: Error & { code?: string }) => err.code === 'EXEC2_INVALID_ARGUMENT');
  });
});
