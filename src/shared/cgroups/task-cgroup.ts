/**
 * One small interface over the two cgroup layouts a task can be handed:
 * v2 (Nomad 1.7+: .../share.slice/<alloc>.<task>.scope) and v1/hybrid (Nomad
 * makes <controller>/<parent>/<alloc>.<task>; cpuset_cgroup is the cpuset
 * path). Paths are derived here, limits written here, kill and accounting
 * read here; the worker and the main thread both use this module.
 */
import { existsSync, mkdirSync, promises as fsp, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CPU_PERIOD_US, cpuCount } from '../topology';
import type { CgroupLayout } from './detect';
import { systemErrorCode } from '../../native/errno';
import { messageOf } from '../errors';

export interface CgroupV2 {
  mode: 'v2';
  dir: string;
}

export interface CgroupV1 {
  mode: 'v1';
  /** controller → directory (cpu, memory, freezer, cpuset, and cpuacct when mounted) */
  dirs: Record<string, string>;
  /** directories this driver created itself (and so may remove) */
  created: string[];
}

export type TaskCgroup = CgroupV2 | CgroupV1;

export interface Limits {
  /** cpu.max quota in µs per CPU_PERIOD_US; 0 = no cap */
  cpuQuotaUs: number;
  /** MHz, for v1 cpu.shares */
  cpuShares: number;
  /** reserved cores, e.g. "2,3"; "" when none */
  cpusetCpus: string;
  /** bytes; 0 = none written; MEMORY_NO_LIMIT = explicitly unlimited (memory_max = -1) */
  memoryMax: number;
  /** bytes; 0 = none (soft reservation with memory_max) */
  memoryLow: number;
  /** pids.max (processes and threads); 0 = no limit */
  pidsMax: number;
}

/** Limits.memoryMax for "no hard limit" (Nomad's memory_max = -1): v2 memory.max "max", v1 limit_in_bytes -1. */
export const MEMORY_NO_LIMIT = -1;

export class CgroupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CgroupError';
  }
}

/** v1 controllers the driver places a task in, when the host has them. */
const V1_NOMAD_CONTROLLERS = ['cpu', 'memory', 'freezer'] as const;
/**
 * Controllers Nomad does not create task cgroups in but we need: cpuacct
 * for accounting, pids for the pids bound (a v1 task outside any pids
 * cgroup can take every pid of the host).
 */
const V1_OWN_CONTROLLERS = ['cpuacct', 'pids'] as const;

/**
 * Work out the task cgroup from what Nomad passed. In v2 the path is used as
 * is. In v1 the cpuset path is `<cpuset>/<parent>/share` or
 * `<cpuset>/<parent>/reserve/<alloc>.<task>`, the other controllers are
 * `<mount>/<parent>/<alloc>.<task>`.
 */
export function resolveTaskCgroup(layout: CgroupLayout, cpusetCgroup: string, allocId: string, taskName: string): TaskCgroup {
  if (!cpusetCgroup) throw new CgroupError('no task cgroup was given (linux_resources.cpuset_cgroup is empty)');
  if (!path.isAbsolute(cpusetCgroup)) throw new CgroupError(`task cgroup "${cpusetCgroup}" is not an absolute path`);
  const norm = path.normalize(cpusetCgroup);
  if (layout.mode === 'v2') {
    if (!norm.startsWith(`${layout.root}/`)) throw new CgroupError(`task cgroup ${norm} is not below ${layout.root}`);
    return { mode: 'v2', dir: norm };
  }
  if (layout.mode === 'none') throw new CgroupError('no cgroup filesystem is mounted');
  const cpusetMount = layout.v1.get('cpuset');
  if (!cpusetMount) throw new CgroupError('the cpuset controller is not mounted');
  if (!norm.startsWith(`${cpusetMount}/`)) throw new CgroupError(`task cgroup ${norm} is not below the cpuset mount ${cpusetMount}`);
  const rel = norm.slice(cpusetMount.length + 1).split('/');
  const name = `${allocId}.${taskName}`;
  let parent: string[];
  if (rel.length >= 2 && rel[rel.length - 1] === 'share') parent = rel.slice(0, -1);
  else if (rel.length >= 3 && rel[rel.length - 2] === 'reserve' && rel[rel.length - 1] === name) parent = rel.slice(0, -2);
  else throw new CgroupError(`cpuset cgroup ${norm} is neither <parent>/share nor <parent>/reserve/${name}`);
  const dirs: Record<string, string> = { cpuset: norm };
  for (const c of [...V1_NOMAD_CONTROLLERS, ...V1_OWN_CONTROLLERS]) {
    const mount = layout.v1.get(c);
    if (mount) dirs[c] = path.join(mount, ...parent, name);
  }
  return { mode: 'v1', dirs, created: [] };
}

/**
 * Create what the driver itself owns (v1 accounting controllers). Returns
 * the cgroup with `created` filled in. What Nomad owns is not stat'ed here:
 * the limit writes and cgroup.procs opens that follow touch every directory
 * anyway and name a missing one precisely (`missingCgroup`), one syscall
 * per directory cheaper on every launch.
 */
export function prepareTaskCgroup(cg: TaskCgroup): TaskCgroup {
  if (cg.mode === 'v2') return cg;
  const created: string[] = [];
  for (const c of V1_OWN_CONTROLLERS) {
    const dir = cg.dirs[c];
    if (!dir) continue;
    try {
      mkdirSync(dir);
      created.push(dir);
    } catch (err) {
      const code = systemErrorCode(err);
      // EEXIST: co-mounted with a Nomad controller, or made by an earlier attempt.
      if (code === 'ENOENT') {
        // Every level made here is ours to remove again (parents first).
        const first = mkdirSync(dir, { recursive: true });
        if (first) {
          const levels = path.relative(first, dir).split(path.sep).filter(Boolean);
          let d = first;
          created.push(d);
          for (const l of levels) created.push((d = path.join(d, l)));
        } else {
          created.push(dir);
        }
      } else if (code !== 'EEXIST') {
        throw new CgroupError(`cannot create ${dir}: ${messageOf(err)}`);
      }
    }
  }
  return { ...cg, created: [...cg.created, ...created] };
}

/** Which of V1_OWN_CONTROLLERS `prepareTaskCgroup` created, as a bit mask (bit i = controller i). */
export function ownCreatedMask(cg: TaskCgroup): number {
  if (cg.mode !== 'v1') return 0;
  return V1_OWN_CONTROLLERS.reduce((m, c, i) => (cg.dirs[c] && cg.created.includes(cg.dirs[c]) ? m | (1 << i) : m), 0);
}

/** The cgroup as `prepareTaskCgroup` returned it, rebuilt from `ownCreatedMask`. */
export function withOwnCreated(cg: TaskCgroup, mask: number): TaskCgroup {
  if (cg.mode !== 'v1') return cg;
  const created = V1_OWN_CONTROLLERS.filter((c, i) => mask & (1 << i) && cg.dirs[c]).map((c) => cg.dirs[c]!);
  return { ...cg, created: [...cg.created, ...created] };
}

/** The error for a task cgroup directory that Nomad should have created. */
export function missingCgroup(dir: string): CgroupError {
  return new CgroupError(`task cgroup ${dir} does not exist (Nomad creates it before StartTask)`);
}

function write(dir: string, file: string, value: string): void {
  const target = path.join(dir, file);
  try {
    writeFileSync(target, value);
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT' && !existsSync(dir)) throw missingCgroup(dir);
    if (systemErrorCode(err) === 'ENOENT' && file === 'pids.max') {
      throw new CgroupError(`cannot write "${value}" to ${target}: the pids controller is not enabled for this cgroup (enable it in the parent's cgroup.subtree_control, as Nomad does, or set the plugin option pids_max = 0)`);
    }
    throw new CgroupError(`cannot write "${value}" to ${target}: ${messageOf(err)}`);
  }
}

/** The values written, per file, for tests and logs. */
export function limitFiles(cg: TaskCgroup, limits: Limits): Array<[string, string, string]> {
  const out: Array<[string, string, string]> = [];
  const quota = limits.cpusetCpus ? cpuCount(limits.cpusetCpus) * CPU_PERIOD_US : limits.cpuQuotaUs;
  if (cg.mode === 'v2') {
    if (limits.cpusetCpus) out.push([cg.dir, 'cpuset.cpus', limits.cpusetCpus]);
    if (quota > 0) out.push([cg.dir, 'cpu.max', `${quota} ${CPU_PERIOD_US}`]);
    if (limits.memoryLow > 0) out.push([cg.dir, 'memory.low', String(limits.memoryLow)]);
    if (limits.memoryMax === MEMORY_NO_LIMIT) out.push([cg.dir, 'memory.max', 'max']);
    else if (limits.memoryMax > 0) out.push([cg.dir, 'memory.max', String(limits.memoryMax)]);
    if (limits.pidsMax > 0) out.push([cg.dir, 'pids.max', String(limits.pidsMax)]);
    return out;
  }
  const { cpu, memory, cpuset, pids } = cg.dirs;
  if (cpuset && limits.cpusetCpus) {
    out.push([cpuset, 'cpuset.cpus', limits.cpusetCpus]);
  }
  if (cpu) {
    if (limits.cpuShares > 0) out.push([cpu, 'cpu.shares', String(Math.max(2, limits.cpuShares))]);
    if (quota > 0) {
      out.push([cpu, 'cpu.cfs_period_us', String(CPU_PERIOD_US)]);
      out.push([cpu, 'cpu.cfs_quota_us', String(quota)]);
    }
  }
  if (memory) {
    if (limits.memoryMax === MEMORY_NO_LIMIT) out.push([memory, 'memory.limit_in_bytes', '-1']);
    else if (limits.memoryMax > 0) out.push([memory, 'memory.limit_in_bytes', String(limits.memoryMax)]);
    if (limits.memoryLow > 0) out.push([memory, 'memory.soft_limit_in_bytes', String(limits.memoryLow)]);
  }
  if (pids && limits.pidsMax > 0) out.push([pids, 'pids.max', String(limits.pidsMax)]);
  return out;
}

export function writeLimits(cg: TaskCgroup, limits: Limits): void {
  if (cg.mode === 'v1' && cg.dirs.cpuset && limits.cpusetCpus) {
    // A v1 cpuset accepts no process until both cpus and mems are set.
    const mems = path.join(cg.dirs.cpuset, 'cpuset.mems');
    if (readFileSync(mems, 'utf8').trim() === '') {
      write(cg.dirs.cpuset, 'cpuset.mems', readFileSync(path.join(path.dirname(cg.dirs.cpuset), 'cpuset.mems'), 'utf8').trim());
    }
  }
  for (const [dir, file, value] of limitFiles(cg, limits)) write(dir, file, value);
}

/** Files pid 1 writes "0" to so it and the task join each v1 controller. */
export function v1ProcsFiles(cg: TaskCgroup): string[] {
  return cg.mode === 'v1' ? Object.values(cg.dirs).map((d) => path.join(d, 'cgroup.procs')) : [];
}

export function readProcs(dir: string): number[] {
  try {
    return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** No process left in any of the task's cgroups. */
export function isEmpty(cg: TaskCgroup): boolean {
  return taskOnlyDirs(cg).every((d) => readProcs(d).length === 0);
}

/**
 * The task's own cgroup directories. In v1 the cpuset cgroup of a task
 * without reserved cores is Nomad's shared `…/share`, full of other tasks.
 */
export function taskOnlyDirs(cg: TaskCgroup): string[] {
  if (cg.mode === 'v2') return [cg.dir];
  return Object.entries(cg.dirs).filter(([c, d]) => !(c === 'cpuset' && path.basename(d) === 'share')).map(([, d]) => d);
}

/** The file that counts OOM kills: v2 memory.events, v1 memory.oom_control (both say `oom_kill N`). */
function oomFile(cg: TaskCgroup): string | null {
  if (cg.mode === 'v2') return path.join(cg.dir, 'memory.events');
  return cg.dirs.memory ? path.join(cg.dirs.memory, 'memory.oom_control') : null;
}

function parseOomKills(text: string): number {
  const m = /^oom_kill (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Count of OOM kills so far in the task's memory cgroup (0 when unreadable). */
export function oomKillCount(cg: TaskCgroup): number {
  const file = oomFile(cg);
  try {
    return file ? parseOomKills(readFileSync(file, 'utf8')) : 0;
  } catch {
    return 0;
  }
}

/**
 * Kill everything in the task's cgroup. v2: cgroup.kill (5.14+). v1: freeze,
 * SIGKILL every pid, thaw, so no process can fork its way out in between.
 * The shared v1 cpuset cgroup (…/share) holds other tasks and is never used
 * to find pids.
 */
export function killAll(cg: TaskCgroup): void {
  if (cg.mode === 'v2') {
    const killFile = path.join(cg.dir, 'cgroup.kill');
    if (existsSync(killFile)) {
      writeFileSync(killFile, '1');
      return;
    }
    for (const pid of readProcs(cg.dir)) safeKill(pid);
    return;
  }
  const freezer = cg.dirs.freezer;
  const memberDir = cg.dirs.memory ?? cg.dirs.cpu ?? freezer;
  if (freezer) tryWrite(path.join(freezer, 'freezer.state'), 'FROZEN');
  try {
    if (memberDir) for (const pid of readProcs(memberDir)) safeKill(pid);
    if (freezer && freezer !== memberDir) for (const pid of readProcs(freezer)) safeKill(pid);
  } finally {
    if (freezer) tryWrite(path.join(freezer, 'freezer.state'), 'THAWED');
  }
}

/**
 * Remove the task cgroup's CPU bandwidth cap (v2 cpu.max "max", v1
 * cpu.cfs_quota_us -1) so that killed threads get the CPU to die. Only the
 * task's own cgroup is written; a missing file (task cgroup already gone,
 * no cpu controller) is not an error.
 */
export function liftCpuLimit(cg: TaskCgroup): void {
  const target = cg.mode === 'v2' ? { dir: cg.dir, file: 'cpu.max', value: 'max' } : cg.dirs.cpu ? { dir: cg.dirs.cpu, file: 'cpu.cfs_quota_us', value: '-1' } : null;
  if (!target) return;
  const file = path.join(target.dir, target.file);
  try {
    writeFileSync(file, target.value);
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') return;
    throw new CgroupError(`cannot write "${target.value}" to ${file}: ${messageOf(err)}`);
  }
}

function safeKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function tryWrite(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch {
    // best effort
  }
}

/** Remove the cgroups this driver created (never Nomad's). */
export function removeOwnCgroups(cg: TaskCgroup): void {
  if (cg.mode !== 'v1') return;
  for (const dir of [...cg.created].reverse()) {
    try {
      rmdirSync(dir);
    } catch {
      // still busy or gone; the next destroy or Nomad's cleanup will retry
    }
  }
}

/**
 * removeOwnCgroups for the main thread: a v1 rmdir waits for the kernel to
 * take the cgroup offline (milliseconds under load), so it runs in libuv's pool.
 */
export async function removeOwnCgroupsAsync(cg: TaskCgroup): Promise<void> {
  if (cg.mode !== 'v1') return;
  // Children before parents; `created` lists parents first.
  for (const dir of [...cg.created].reverse()) await fsp.rmdir(dir).catch(() => undefined);
}
