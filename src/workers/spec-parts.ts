/**
 * The parts of a task launch and an exec session that must never differ
 * (native ConfinedSpec): how the process joins the task's cgroups, and
 * everything that confines it. Both workers build them here.
 */
import { constants as C, openSync } from 'node:fs';
import * as path from 'node:path';
import { missingCgroup, v1ProcsFiles, type TaskCgroup } from '../shared/cgroups/task-cgroup';
import type { ConfinedSpec } from '../native/binding';
import { systemErrorCode } from '../native/errno';
import { failAs, fdExhaustion } from './launch-failure';
import type { ConfinedRequest } from '../shared/messages';
import { messageOf } from '../shared/errors';

const O_PATH = 0o10000000;

/** Descriptors to join the task cgroup: a v2 directory to clone into, or each v1 cgroup.procs. */
export function openCgroupJoin(cg: TaskCgroup, track: (fd: number) => number): Pick<ConfinedSpec, 'cgroupFd' | 'cgroupProcsFds'> {
  const open = (p: string, flags: number): number => {
    try {
      return track(openSync(p, flags));
    } catch (err) {
      const message = `cannot open ${p}: ${messageOf(err)}`;
      const fds = fdExhaustion(err, message);
      if (fds) throw fds;
      // v2 opens the cgroup directory itself, v1 the cgroup.procs inside it.
      const missing = systemErrorCode(err) === 'ENOENT';
      throw failAs('EXEC2_CGROUP', missing ? missingCgroup(cg.mode === 'v2' ? p : path.dirname(p)).message : message);
    }
  };
  return {
    cgroupFd: cg.mode === 'v2' ? open(cg.dir, O_PATH | C.O_DIRECTORY) : -1,
    cgroupProcsFds: v1ProcsFiles(cg).map((f) => open(f, C.O_WRONLY)),
  };
}

type Confinement = Omit<ConfinedSpec, 'initPath' | 'cgroupFd' | 'cgroupProcsFds'>;

/** The capability sets for the resolved uid (0: root's sets). */
export function capabilitiesFor(req: ConfinedRequest, uid: number): Pick<ConfinedSpec, 'capBounding' | 'capAmbient'> {
  const c = uid === 0 ? req.caps.root : req.caps.user;
  return { capBounding: c.bounding, capAmbient: c.ambient };
}

/** Credentials, environment (with USER, LOGNAME and HOME of the resolved user), cwd, Landlock rules and scopes, OOM score, capabilities. */
export function confinement(
  req: ConfinedRequest,
  creds: { uid: number; gid: number; groups: number[]; home: string },
): Confinement {
  // Nomad's executors set LOGNAME with USER (login tools and getlogin() fallbacks read it).
  const env = { ...req.env, USER: req.user.name, LOGNAME: req.user.name, HOME: creds.home };
  return {
    argv: req.argv,
    env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    uid: creds.uid,
    gid: creds.gid,
    groups: creds.groups,
    cwd: req.cwd,
    cwdBeneath: req.cwdBeneath,
    unveil: req.unveil,
    oomScoreAdj: req.oomScoreAdj,
    ...capabilitiesFor(req, creds.uid),
    scopeAbstractUnixSockets: req.scopeAbstractUnixSockets,
  };
}
