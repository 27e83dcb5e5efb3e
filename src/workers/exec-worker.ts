/**
 * Piscina worker entry for exec sessions (same pool as launches, selected by
 * filename): joins a running task and starts one command in it. Blocking
 * work (NSS lookups, Landlock rule opens, the clone) stays off the main thread.
 */
import { closeSync, constants as C, openSync } from 'node:fs';
import { v1ProcsFiles } from '../main/cgroups/task-cgroup';
import { pidStartTime } from '../main/tasks/proc';
import { loadNative, type ExecSpec } from '../native/binding';
import { fail, LaunchError, nativeFailure } from './launch-failure';
import type { ExecLaunchReply, ExecLaunchRequest } from './messages';

const O_PATH = 0o10000000;
const NOT_RUNNING = 'EXEC2_TASK_EXITED';

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
      if (!rec) throw fail('failed-precondition', 'EXEC2_USER', `user "${req.user.name}" no longer exists on this host`);
      creds = { uid: rec.uid, gid: rec.gid, groups: rec.groups, home: rec.home };
    }
    // Never run a session as anyone but the task's own uid/gid.
    if (creds.uid !== req.expect.uid || creds.gid !== req.expect.gid) {
      throw fail('failed-precondition', 'EXEC2_USER', `user "${req.user.name}" is now uid ${creds.uid} gid ${creds.gid}, but the task runs as uid ${req.expect.uid} gid ${req.expect.gid}; refusing to exec`);
    }

    // A pidfd pins the process; checking the start time after opening it
    // proves it is still the task's pid 1 and not a reused pid.
    let taskPidfd: number;
    try {
      taskPidfd = track(native.pidfdOpen(req.taskPid));
    } catch {
      throw fail('failed-precondition', NOT_RUNNING, `task ${req.taskId} is not running`);
    }
    if (pidStartTime(req.taskPid) !== req.taskPidStartTime) throw fail('failed-precondition', NOT_RUNNING, `task ${req.taskId} is not running`);

    const cgroupFd = req.cgroup.mode === 'v2' ? track(openCgroupDir(req.cgroup.dir)) : -1;
    const cgroupProcsFds = v1ProcsFiles(req.cgroup).map((f) => {
      try {
        return track(openSync(f, C.O_WRONLY));
      } catch (err) {
        throw fail('failed-precondition', 'EXEC2_CGROUP', `cannot open ${f}: ${(err as Error).message}`);
      }
    });
    const env = { ...req.env, USER: req.user.name, HOME: creds.home };
    const spec: ExecSpec = {
      initPath: req.initPath,
      cgroupFd,
      cgroupProcsFds,
      taskPidfd,
      tty: req.tty,
      stdinFd: req.stdinFd,
      stdoutFd: req.stdoutFd,
      stderrFd: req.stderrFd,
      argv: req.argv,
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      uid: creds.uid,
      gid: creds.gid,
      groups: creds.groups,
      cwd: req.cwd,
      unveil: req.unveil,
      oomScoreAdj: req.oomScoreAdj,
    };
    let result;
    try {
      result = native.launchExec(spec);
    } catch (err) {
      throw nativeFailure(err);
    }
    return { ok: true, pid: result.pid, pidfd: result.pidfd };
  } catch (err) {
    if (err instanceof LaunchError) return { ok: false, ...err.failure };
    return { ok: false, kind: 'internal', code: 'EXEC2_INTERNAL', message: (err as Error).message, recoverable: false };
  } finally {
    for (const fd of fds) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }
}

function openCgroupDir(dir: string): number {
  try {
    return openSync(dir, O_PATH | C.O_DIRECTORY);
  } catch (err) {
    throw fail('failed-precondition', 'EXEC2_CGROUP', `cannot open task cgroup ${dir}: ${(err as Error).message}`);
  }
}
