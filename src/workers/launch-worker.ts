/**
 * Piscina worker: turns a LaunchRequest into a running task. Blocking work
 * belongs here so the main thread keeps serving gRPC.
 */
import { closeSync, constants as C, fchownSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import * as path from 'node:path';
import { CgroupError, oomKillCount, ownCreatedMask, prepareTaskCgroup, removeOwnCgroups, writeLimits, type TaskCgroup } from '../main/cgroups/task-cgroup';
import { recordLaunched } from '../main/tasks/launch-handoff';
import { removeStatusDir } from '../main/tasks/exit-status';
import { loadNative, type LaunchSpec } from '../native/binding';
import { callNative, closeAll, fail, failureOf, LaunchError } from './launch-failure';
import { confinement, openCgroupJoin } from './spec-parts';
import type { LaunchReply, LaunchRequest } from './messages';
import { pidStartTime } from '../main/tasks/proc';

/**
 * Open a log FIFO for writing without following a symlink in its last
 * component. O_NONBLOCK so a missing reader is ENXIO at once rather than a
 * worker stuck: a worker never waits for logmon, the main thread retries
 * the launch later (TaskManager). The task gets the file description back
 * in blocking mode.
 */
function openLogSink(p: string, uid: number, gid: number, chown: boolean): number {
  try {
    const fd = openSync(p, C.O_WRONLY | C.O_NONBLOCK | C.O_NOFOLLOW | C.O_NOCTTY);
    const st = fstatSync(fd);
    if (st.isDirectory()) {
      closeSync(fd);
      throw fail('invalid-argument', 'EXEC2_LOG_PATH', `log path ${p} is a directory`);
    }
    if (chown && st.isFIFO()) fchownSync(fd, uid, gid);
    return fd;
  } catch (err) {
    if (err instanceof LaunchError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENXIO') throw fail('failed-precondition', 'EXEC2_LOG_READER', `no reader on log FIFO ${p} (is logmon running?)`, true);
    if (code === 'ELOOP') throw fail('invalid-argument', 'EXEC2_LOG_PATH', `log path ${p} is a symlink; refusing to follow it`);
    if (code === 'ENOENT') throw fail('not-found', 'EXEC2_LOG_PATH', `log FIFO ${p} does not exist`);
    throw fail('internal', 'EXEC2_LOG_PATH', `cannot open log FIFO ${p}: ${(err as Error).message}`);
  }
}

/**
 * A fresh, empty status directory. One left over from an earlier attempt
 * with this task id must not survive: if pid 1 died before writing, its
 * stale `status` would be read as this task's exit.
 */
function makeStatusDir(dir: string): void {
  try {
    mkdirSync(dir, 0o700);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
    else if (code === 'EEXIST') removeStatusDir(dir);
    else throw err;
    mkdirSync(dir, 0o700);
  }
}

function openDir(p: string, what: string): number {
  try {
    return openSync(p, C.O_RDONLY | C.O_DIRECTORY);
  } catch (err) {
    throw fail('internal', 'EXEC2_OPEN', `cannot open ${what} ${p}: ${(err as Error).message}`);
  }
}

export default function launch(req: LaunchRequest): LaunchReply {
  const t0 = process.hrtime.bigint();
  const fds: number[] = [];
  let ownCgroups: TaskCgroup | null = null;
  let madeStatusDir = false;
  const track = (fd: number): number => {
    fds.push(fd);
    return fd;
  };
  try {
    const native = loadNative();
    let cgroup = req.cgroup;
    try {
      cgroup = prepareTaskCgroup(cgroup);
      ownCgroups = cgroup;
      writeLimits(cgroup, req.limits);
    } catch (err) {
      if (err instanceof CgroupError) throw fail('failed-precondition', 'EXEC2_CGROUP', err.message);
      throw err;
    }
    const t1 = process.hrtime.bigint();

    let creds = req.user.resolved;
    if (!creds) {
      const rec = native.lookupUser(req.user.name);
      if (!rec) throw fail('not-found', 'EXEC2_USER', `user "${req.user.name}" does not exist on this host`);
      creds = { uid: rec.uid, gid: rec.gid, groups: rec.groups, home: rec.home };
    }

    const stdoutFd = track(openLogSink(req.stdoutPath, creds.uid, creds.gid, req.chownFifos));
    const stderrFd = req.stderrPath === req.stdoutPath ? stdoutFd : track(openLogSink(req.stderrPath, creds.uid, creds.gid, req.chownFifos));
    try {
      makeStatusDir(req.statusDir);
      madeStatusDir = true;
    } catch (err) {
      throw fail('internal', 'EXEC2_STATE_DIR', `cannot create task state directory ${req.statusDir}: ${(err as Error).message}`);
    }
    const statusDirFd = track(openDir(req.statusDir, 'task state directory'));
    const oomKillsBefore = oomKillCount(cgroup);
    const join = openCgroupJoin(cgroup, track);
    let netnsFd = -1;
    if (req.netnsPath) {
      try {
        netnsFd = track(openSync(req.netnsPath, C.O_RDONLY));
      } catch (err) {
        throw fail('failed-precondition', 'EXEC2_NETNS', `cannot open network namespace ${req.netnsPath}: ${(err as Error).message}`, true);
      }
    }
    const t2 = process.hrtime.bigint();

    const spec: LaunchSpec = {
      initPath: req.initPath,
      ...join,
      stdoutFd,
      stderrFd,
      statusDirFd,
      netnsFd,
      ...confinement(req, creds),
    };
    const received = BigInt(req.receivedNs);
    const result = callNative(() => native.launch(spec));
    // From here on nothing may fail: the task runs and only the main thread can stop it.
    recordLaunched(req.handoff, { pidfd: result.pidfd, pid: result.pid, ownCreatedMask: ownCreatedMask(cgroup) });
    return {
      ok: true,
      pid: result.pid,
      pidStartTime: pidStartTime(result.pid),
      pidfd: result.pidfd,
      uid: creds.uid,
      gid: creds.gid,
      home: creds.home,
      cgroup,
      oomKillsBefore,
      timings: {
        queueNs: Number(t0 - received),
        cgroupNs: Number(t1 - t0),
        prepareNs: Number(t2 - t1),
        spawnNs: Number(result.tExecNs - t2),
        totalToExecNs: Number(result.tExecNs - received),
      },
    };
  } catch (err) {
    // Leave nothing behind: cgroups we made for this attempt go again.
    if (ownCgroups) removeOwnCgroups(ownCgroups);
    if (madeStatusDir) removeStatusDir(req.statusDir);
    return failureOf(err);
  } finally {
    closeAll(fds);
  }
}
