/**
 * Piscina worker: turns a LaunchRequest into a running task. Blocking work
 * belongs here so the main thread keeps serving gRPC.
 */
import { closeSync, constants as C, fchownSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import * as path from 'node:path';
import { CgroupError, oomKillCount, ownCreatedMask, prepareTaskCgroup, removeOwnCgroups, writeLimits, type TaskCgroup } from '../shared/cgroups/task-cgroup';
import { recordLaunched } from '../shared/launch-handoff';
import { removeStatusDir } from '../shared/exit-status';
import { isNativeError, loadNative, type Exec2Native, type LaunchSpec } from '../native/binding';
import { errnoName, systemErrorCode } from '../native/errno';
import { callNative, closeAll, fail, failAs, failureOf, LaunchError } from './launch-failure';
import { confinement, openCgroupJoin } from './spec-parts';
import type { LaunchReply, LaunchRequest } from '../shared/messages';
import { pidStartTime } from '../shared/proc';
import { messageOf } from '../shared/errors';

const O_PATH = 0o10000000;

/**
 * Opens, as root, a path the task (or another task of its allocation) can
 * modify: beneath the trusted root directory that holds it, never through a
 * symlink in any component (a task can swap alloc/logs, or a FIFO, for a
 * link to another allocation's files or the host's). Paths outside every
 * such root are the host's and are opened as given, without following a
 * symlink in the last component.
 */
function openUntrusted(native: Exec2Native, roots: readonly string[], p: string, flags: number): number {
  const root = roots.find((r) => p.startsWith(`${r}/`));
  if (!root) return openSync(p, flags | C.O_NOFOLLOW);
  const dirfd = openSync(root, O_PATH | C.O_DIRECTORY);
  try {
    return native.openBeneath(dirfd, p.slice(root.length + 1), flags);
  } catch (err) {
    if (isNativeError(err) && err.code === 'EXEC2_SYMLINK') throw failAs('EXEC2_SYMLINK', `${p}: ${err.message}`);
    // The same shape as openSync's errors, so callers map one kind.
    if (isNativeError(err) && err.errno !== undefined) throw Object.assign(new Error(err.message), { code: errnoName(err.errno) });
    throw err;
  } finally {
    closeSync(dirfd);
  }
}

/**
 * Open a log FIFO for writing, beneath the allocation dir that holds it.
 * O_NONBLOCK so a missing reader is ENXIO at once rather than a worker
 * stuck: a worker never waits for logmon, the main thread retries the
 * launch later (TaskManager). The task gets the file description back in
 * blocking mode.
 */
function openLogSink(native: Exec2Native, roots: readonly string[], p: string, uid: number, gid: number, chown: boolean): number {
  try {
    const fd = p === '/dev/null' ? openSync(p, C.O_WRONLY) : openUntrusted(native, roots, p, C.O_WRONLY | C.O_NONBLOCK | C.O_NOCTTY);
    const st = fstatSync(fd);
    if (st.isDirectory()) {
      closeSync(fd);
      throw fail('INVALID_ARGUMENT', 'EXEC2_LOG_PATH', `log path ${p} is a directory`);
    }
    if (chown && st.isFIFO()) fchownSync(fd, uid, gid);
    return fd;
  } catch (err) {
    if (err instanceof LaunchError) throw err;
    const code = systemErrorCode(err);
    if (code === 'ENXIO') throw fail('FAILED_PRECONDITION', 'EXEC2_LOG_READER', `no reader on log FIFO ${p} (is logmon running?)`, true);
    if (code === 'ELOOP') throw fail('INVALID_ARGUMENT', 'EXEC2_LOG_PATH', `log path ${p} is a symlink; refusing to follow it`);
    if (code === 'ENOENT') throw fail('NOT_FOUND', 'EXEC2_LOG_PATH', `log FIFO ${p} does not exist`);
    throw fail('INTERNAL', 'EXEC2_LOG_PATH', `cannot open log FIFO ${p}: ${messageOf(err)}`);
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
    const code = systemErrorCode(err);
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
    throw fail('INTERNAL', 'EXEC2_OPEN', `cannot open ${what} ${p}: ${messageOf(err)}`);
  }
}

/**
 * A dynamic user's uid and gid must belong to no account or group: the
 * task would own that account's files (and, for a group, get its access).
 * FAILED_PRECONDITION: the job is fine, this host's databases collide with
 * the dynamic-user range.
 */
function refuseKnownIds(native: Exec2Native, name: string, uid: number, gid: number): void {
  const owners = native.idOwners(uid, gid);
  if (owners.user !== null) throw fail('FAILED_PRECONDITION', 'EXEC2_USER', `user "${name}": uid ${uid} belongs to the account "${owners.user}" in the passwd database; dynamic workload user ids must be unused (check the plugin options dynamic_user_min and dynamic_user_max against this host's accounts)`);
  if (owners.group !== null) throw fail('FAILED_PRECONDITION', 'EXEC2_USER', `user "${name}": gid ${gid} belongs to the group "${owners.group}" in the group database; dynamic workload user ids must be unused (check the plugin options dynamic_user_min and dynamic_user_max against this host's groups)`);
}

/** The largest id the kernel accepts but no host assigns (2^31 - 2; 2^31 - 1 is reserved). */
const WARM_UNUSED_ID = 2 ** 31 - 2;

/**
 * The pool's warm-up task (launcher.ts warm, `name: 'warm'`): load what the
 * first launch would otherwise load while a StartTask waits — the addon, the
 * NSS modules behind the user database checks (a first getpwuid dlopens
 * them) — and run the worker's own code once. Touches nothing on the host.
 */
export function warm(): { landlockAbi: number } {
  const native = loadNative();
  native.idOwners(0, 0);
  // An id no database has walks every NSS module of the chain to its end
  // (with `files systemd`, systemd's userdb drop-in directories), as a
  // dynamic user's check does on every launch.
  native.idOwners(WARM_UNUSED_ID, WARM_UNUSED_ID);
  return { landlockAbi: native.landlockAbi().abi };
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
      if (err instanceof CgroupError) throw failAs('EXEC2_CGROUP', err.message);
      throw err;
    }
    const t1 = process.hrtime.bigint();

    let creds = req.user.resolved;
    if (creds && req.dynamicUser) refuseKnownIds(native, req.user.name, creds.uid, creds.gid);
    if (!creds) {
      const rec = native.lookupUser(req.user.name);
      if (!rec) throw fail('NOT_FOUND', 'EXEC2_USER', `user "${req.user.name}" does not exist on this host`);
      creds = { uid: rec.uid, gid: rec.gid, groups: rec.groups, home: rec.home };
    }

    const stdoutFd = track(openLogSink(native, req.untrustedRoots, req.stdoutPath, creds.uid, creds.gid, req.chownFifos));
    const stderrFd = req.stderrPath === req.stdoutPath ? stdoutFd : track(openLogSink(native, req.untrustedRoots, req.stderrPath, creds.uid, creds.gid, req.chownFifos));
    try {
      makeStatusDir(req.statusDir);
      madeStatusDir = true;
    } catch (err) {
      throw fail('INTERNAL', 'EXEC2_STATE_DIR', `cannot create task state directory ${req.statusDir}: ${messageOf(err)}`);
    }
    const statusDirFd = track(openDir(req.statusDir, 'task state directory'));
    const oomKillsBefore = oomKillCount(cgroup);
    const join = openCgroupJoin(cgroup, track);
    let netnsFd = -1;
    if (req.netnsPath) {
      try {
        netnsFd = track(openSync(req.netnsPath, C.O_RDONLY));
      } catch (err) {
        throw failAs('EXEC2_NETNS', `cannot open network namespace ${req.netnsPath}: ${messageOf(err)}`, true);
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
      tmp: req.tmp,
      masks: req.masks,
      volumes: req.volumes,
      volumeRoot: req.taskRoot,
      ...confinement(req, creds),
    };
    const received = BigInt(req.receivedNs);
    const planned = req.plannedNs ? BigInt(req.plannedNs) : received;
    const result = callNative(() => native.launch(spec));
    // From here on nothing may fail: the task runs and only the main thread can stop it.
    recordLaunched(req.handoff, { pidfd: result.pidfd, pid: result.pid, ownCreatedMask: ownCreatedMask(cgroup) });
    const startTime = pidStartTime(result.pid);
    const done = process.hrtime.bigint();
    return {
      ok: true,
      pid: result.pid,
      pidStartTime: startTime,
      pidfd: result.pidfd,
      uid: creds.uid,
      gid: creds.gid,
      home: creds.home,
      cgroup,
      oomKillsBefore,
      timings: {
        planNs: Number(planned - received),
        queueNs: Number(t0 - received),
        cgroupNs: Number(t1 - t0),
        prepareNs: Number(t2 - t1),
        setupNs: Number(result.tCloneNs - t2),
        spawnNs: Number(result.tExecNs - t2),
        totalToExecNs: Number(result.tExecNs - received),
        cloneAtNs: Number(result.tCloneNs - received),
        finishNs: Number(done - result.tExecNs),
        doneAtNs: Number(done - received),
        replyNs: 0,
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
