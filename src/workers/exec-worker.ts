/**
 * Piscina worker entry for exec sessions (same pool as launches, selected by
 * filename): joins a running task and starts one command in it. Blocking
 * work (NSS lookups, Landlock rule opens, the clone) stays off the main thread.
 */
import { pidStartTime } from '../shared/proc';
import { loadNative, type ExecSpec } from '../native/binding';
import { callNative, closeAll, fail, failAs, failureOf } from './launch-failure';
import { confinement, openCgroupJoin } from './spec-parts';
import type { ExecLaunchReply, ExecLaunchRequest } from '../shared/messages';

export default function execLaunch(req: ExecLaunchRequest): ExecLaunchReply {
  const fds: number[] = [];
  const track = (fd: number): number => {
    fds.push(fd);
    return fd;
  };
  try {
    const native = loadNative();
    let creds = req.user.resolved;
    if (!creds) {
      const rec = native.lookupUser(req.user.name);
      if (!rec) throw fail('FAILED_PRECONDITION', 'EXEC2_USER', `user "${req.user.name}" no longer exists on this host`);
      creds = { uid: rec.uid, gid: rec.gid, groups: rec.groups, home: rec.home };
    }
    // Never run a session as anyone but the task's own uid/gid.
    if (creds.uid !== req.expect.uid || creds.gid !== req.expect.gid) {
      throw fail('FAILED_PRECONDITION', 'EXEC2_USER', `user "${req.user.name}" is now uid ${creds.uid} gid ${creds.gid}, but the task runs as uid ${req.expect.uid} gid ${req.expect.gid}; refusing to exec`);
    }

    // A pidfd pins the process; checking the start time after opening it
    // proves it is still the task's pid 1 and not a reused pid.
    let taskPidfd: number;
    try {
      taskPidfd = track(native.pidfdOpen(req.taskPid));
    } catch {
      throw failAs('EXEC2_TASK_EXITED', `task ${req.taskId} is not running`);
    }
    if (pidStartTime(req.taskPid) !== req.taskPidStartTime) throw failAs('EXEC2_TASK_EXITED', `task ${req.taskId} is not running`);

    const spec: ExecSpec = {
      initPath: req.initPath,
      ...openCgroupJoin(req.cgroup, track),
      taskPidfd,
      tty: req.tty,
      stdinFd: req.stdinFd,
      stdoutFd: req.stdoutFd,
      stderrFd: req.stderrFd,
      ...confinement(req, creds),
    };
    const result = callNative(() => native.launchExec(spec));
    return { ok: true, pid: result.pid, pidfd: result.pidfd };
  } catch (err) {
    return failureOf(err);
  } finally {
    closeAll(fds);
  }
}

