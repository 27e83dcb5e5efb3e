/**
 * Task cgroups made the way the Nomad client makes them before StartTask
 * (its cgroup hook), in a tree this process creates and removes again.
 *
 * Nomad's own layout (client/lib/cgroupslib), which the driver expects:
 *   v2: <root>/nomad.slice/{share,reserve}.slice/<alloc>.<task>.scope, with
 *       "+cpuset +cpu +io +memory +pids" enabled on the way down;
 *   v1: <controller>/nomad/<alloc>.<task> in cpu, memory, freezer, cpuset,
 *       and the cpuset partitions nomad/share and nomad/reserve/<alloc>.<task>.
 *
 * `CgroupTree` builds that shape with any parent in place of nomad.slice or
 * /nomad; where the parent goes is decided by a `CgroupPlacement`. The client
 * (`run`, the demo, the bench) uses `clientPlacement`: a parent named for the
 * product and this client instance (never `nomad.slice` or `/nomad`, which a
 * real agent on the same host owns). Tests use their own placement
 * (test/harness/cgroups.ts).
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { detectCgroupLayout, type CgroupLayout } from '../shared/cgroups/detect';
import { messageOf } from '../shared/errors';

export interface TaskCgroupPaths {
  /** what Nomad passes in linux_resources.cpuset_cgroup */
  cpusetCgroup: string;
  /** the task's directories: controller → dir (v2: { unified }) */
  dirs: Record<string, string>;
}

/** What the client needs from whoever makes task cgroups (Nomad's cgroup hook). */
export interface TaskCgroups {
  readonly layout: CgroupLayout;
  /** NOMAD_PARENT_CGROUP: v2 the slice below the root, v1 the parent below each controller's mount */
  readonly parent: string;
  /** why no task cgroup can be made on this host, or null when they can */
  readonly skipReason: string | null;
  createTask(allocId: string, task: string, reservedCores?: string): TaskCgroupPaths;
  /** Nomad's post-stop cleanup of one task's cgroups (the driver has emptied them) */
  removeTask(paths: TaskCgroupPaths): void;
  /** Remove every cgroup this object created, deepest first; returns what could not be removed. */
  cleanup(): string[];
}

/**
 * Where a tree goes. v1: `parent` is relative to every controller mount
 * (levels that do not exist are created, and removed again). v2: `slice` is
 * a direct child of the cgroup2 root; `enableRoot` writes the controllers
 * into the root's cgroup.subtree_control first (only a throwaway VM may do
 * that: the root is not ours).
 */
export type CgroupPlacement =
  | { kind: 'unavailable'; reason: string }
  | { kind: 'v1'; parent: string }
  | { kind: 'v2'; slice: string; enableRoot: boolean };

/** The controllers Nomad enables on its slices (cgroupslib's activation string). */
export const V2_CONTROLLERS = ['cpuset', 'cpu', 'io', 'memory', 'pids'] as const;
/** Controllers without which the driver cannot apply a task's limits on v2. */
export const V2_REQUIRED_CONTROLLERS = ['cpu', 'memory', 'pids'] as const;
/** v1 controllers Nomad makes its parent in, plus the driver's own (cpuacct, pids) that the driver fills in itself. */
const V1_PARENT_CONTROLLERS = ['cpu', 'memory', 'freezer', 'cpuset', 'cpuacct', 'pids'] as const;
/** v1 controllers Nomad makes task cgroups in. */
const V1_TASK_CONTROLLERS = ['cpu', 'memory', 'freezer'] as const;
/** v1 controllers the driver makes the task cgroup in itself: listed for cleanup checks. */
const V1_DRIVER_CONTROLLERS = ['cpuacct', 'pids'] as const;

/** This process's cgroup path in `controller` (null: the cgroup2 line) from /proc/self/cgroup's text. */
export function ownCgroupOf(procSelfCgroup: string, controller: string | null): string {
  for (const l of procSelfCgroup.split('\n')) {
    const [, ctrls, p] = l.split(':');
    if (controller === null ? ctrls === '' : (ctrls ?? '').split(',').includes(controller)) return p ?? '/';
  }
  return '/';
}

export function ownCgroup(controller: string | null): string {
  return ownCgroupOf(readFileSync('/proc/self/cgroup', 'utf8'), controller);
}

/** The controllers enabled for a cgroup's children (its cgroup.subtree_control), [] when unreadable. */
export function subtreeControllers(dir: string): string[] {
  try {
    return readFileSync(path.join(dir, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Where a client's task cgroups go (pure: the host facts are arguments).
 * `name` is unique per client instance so two clients, or a client and a
 * real agent, never share a parent.
 *
 * v1/hybrid: below this process's own memory cgroup, `<own>/<name>` in
 * every controller (as tests do): v1 lets a cgroup that holds processes have
 * children, the task stays inside whatever limits the caller runs under,
 * and nothing is added at the top of the host's hierarchy.
 *
 * v2: `<name>.slice` at the root like Nomad's nomad.slice: below the
 * caller's own cgroup is impossible when that cgroup holds processes (v2
 * lets only a cgroup without processes enable controllers for its
 * children). The root's enabled controllers are not changed: when one the
 * driver needs is missing, the placement is unavailable and says which.
 */
export function clientPlacement(layout: CgroupLayout, name: string, procSelfCgroup: string, rootSubtree: readonly string[]): CgroupPlacement {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) return { kind: 'unavailable', reason: `invalid cgroup name "${name}"` };
  if (layout.mode === 'none') return { kind: 'unavailable', reason: 'no cgroup filesystem mounted' };
  if (layout.mode === 'v2') {
    const missing = V2_REQUIRED_CONTROLLERS.filter((c) => !rootSubtree.includes(c));
    if (missing.length) {
      return {
        kind: 'unavailable',
        reason: `cgroup v2: the ${missing.join(', ')} controller${missing.length > 1 ? 's are' : ' is'} not enabled in ${path.join(layout.root, 'cgroup.subtree_control')} (a Nomad client enables +cpuset +cpu +io +memory +pids there; this command does not change a cgroup it did not create)`,
      };
    }
    return { kind: 'v2', slice: `${name}.slice`, enableRoot: false };
  }
  const own = ownCgroupOf(procSelfCgroup, 'memory').replace(/^\/+/, '');
  return { kind: 'v1', parent: path.posix.join(own, name) };
}

function copyFromParent(dir: string, file: string): void {
  const f = path.join(dir, file);
  if (readFileSync(f, 'utf8').trim() === '') writeFileSync(f, readFileSync(path.join(path.dirname(dir), file), 'utf8').trim());
}

export class CgroupTree implements TaskCgroups {
  readonly parent: string;
  readonly skipReason: string | null;
  private readonly created: string[] = [];

  constructor(placement: CgroupPlacement, readonly layout: CgroupLayout = detectCgroupLayout()) {
    if (placement.kind === 'unavailable') {
      this.parent = '';
      this.skipReason = placement.reason;
      return;
    }
    this.skipReason = null;
    this.parent = placement.kind === 'v2' ? placement.slice : placement.parent;
    try {
      if (placement.kind === 'v2') this.makeV2(placement.enableRoot);
      else this.makeV1();
    } catch (err) {
      // Half a tree is no use: take back what was made before failing.
      this.cleanup();
      throw err;
    }
  }

  private makeV2(enableRoot: boolean): void {
    const root = this.layout.root;
    if (enableRoot) this.enable(root);
    const slice = path.join(root, this.parent);
    this.mkdir(slice);
    this.enable(slice);
    for (const partition of ['share.slice', 'reserve.slice']) {
      this.mkdir(path.join(slice, partition));
      this.enable(path.join(slice, partition));
    }
  }

  private makeV1(): void {
    // Nomad's parent exists in every controller; the driver adds task cgroups
    // for its own controllers (cpuacct, pids) below it itself.
    for (const c of V1_PARENT_CONTROLLERS) {
      const mount = this.layout.v1.get(c);
      if (!mount) continue;
      let dir = mount;
      for (const part of this.parent.split('/')) {
        dir = path.join(dir, part);
        this.mkdir(dir);
        if (c === 'cpuset') {
          // A v1 cpuset accepts no process (and no child's cpus) until both are set.
          copyFromParent(dir, 'cpuset.cpus');
          copyFromParent(dir, 'cpuset.mems');
        }
      }
      if (c === 'cpuset') {
        const share = path.join(dir, 'share');
        this.mkdir(share);
        copyFromParent(share, 'cpuset.cpus');
        copyFromParent(share, 'cpuset.mems');
      }
    }
  }

  /** Enable Nomad's controllers (those the cgroup offers) for `dir`'s children. */
  private enable(dir: string): void {
    const available = readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
    const want = V2_CONTROLLERS.filter((c) => available.includes(c));
    if (want.length) writeFileSync(path.join(dir, 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' '));
  }

  private mkdir(dir: string): void {
    if (existsSync(dir)) return;
    mkdirSync(dir);
    this.created.push(dir);
  }

  /** Create the cgroup(s) Nomad would create for a task. */
  createTask(allocId: string, task: string, reservedCores = ''): TaskCgroupPaths {
    if (this.skipReason) throw new Error(this.skipReason);
    const name = `${allocId}.${task}`;
    if (this.layout.mode === 'v2') {
      const slice = reservedCores ? 'reserve.slice' : 'share.slice';
      const dir = path.join(this.layout.root, this.parent, slice, `${name}.scope`);
      this.mkdir(dir);
      return { cpusetCgroup: dir, dirs: { unified: dir } };
    }
    const dirs: Record<string, string> = {};
    for (const c of V1_TASK_CONTROLLERS) {
      const mount = this.layout.v1.get(c);
      if (!mount) continue;
      dirs[c] = path.join(mount, this.parent, name);
      this.mkdir(dirs[c]);
    }
    const cpusetMount = this.layout.v1.get('cpuset');
    if (!cpusetMount) throw new Error('the cpuset controller is not mounted');
    let cpusetCgroup = path.join(cpusetMount, this.parent, 'share');
    if (reservedCores) {
      const reserve = path.join(cpusetMount, this.parent, 'reserve');
      this.mkdir(reserve);
      copyFromParent(reserve, 'cpuset.cpus');
      copyFromParent(reserve, 'cpuset.mems');
      cpusetCgroup = path.join(reserve, name);
      this.mkdir(cpusetCgroup);
    }
    dirs.cpuset = cpusetCgroup;
    for (const c of V1_DRIVER_CONTROLLERS) {
      const mount = this.layout.v1.get(c);
      if (mount) dirs[c] = path.join(mount, this.parent, name);
    }
    return { cpusetCgroup, dirs };
  }

  removeTask(paths: TaskCgroupPaths): void {
    for (const dir of Object.values(paths.dirs)) {
      if (!existsSync(dir) || dir.endsWith('/share')) continue;
      try {
        rmdirSync(dir);
      } catch {
        // still busy: cleanup() tries again and reports it
      }
    }
  }

  cleanup(): string[] {
    const failures: string[] = [];
    for (const dir of [...this.created].reverse()) {
      if (!existsSync(dir)) continue;
      try {
        rmdirSync(dir);
      } catch (err) {
        failures.push(`${dir}: ${messageOf(err)}`);
      }
    }
    return failures;
  }
}

/** The client's own cgroups: a tree named `name` placed by `clientPlacement`. */
export function clientCgroups(name: string, layout: CgroupLayout = detectCgroupLayout()): CgroupTree {
  const rootSubtree = layout.mode === 'v2' ? subtreeControllers(layout.root) : [];
  return new CgroupTree(clientPlacement(layout, name, readFileSync('/proc/self/cgroup', 'utf8'), rootSubtree), layout);
}
