/**
 * Task cgroups made the way the Nomad client makes them before StartTask,
 * but nested below this process's own cgroups (the developers' guide: never
 * touch a cgroup we did not create, never move anything out of ours).
 *
 * v1/hybrid (this dev machine): parent P = <own memory cgroup>/exec2-test-<rand>
 * in every controller, task cgroups <ctrl>/P/<alloc>.<task>, the shared
 * cpuset P/share (Nomad's v1 layout with P in place of /nomad).
 * v2 (the VM): nomad.slice/share.slice/<alloc>.<task>.scope at the root,
 * like Nomad 1.7+, when this process sits in the root cgroup.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { detectCgroupLayout, type CgroupLayout } from '../shared/cgroups/detect';

export interface TaskCgroupPaths {
  /** what Nomad passes in linux_resources.cpuset_cgroup */
  cpusetCgroup: string;
  /** directories to inspect in tests: controller → dir (v2: { unified }) */
  dirs: Record<string, string>;
}

function ownCgroup(controller: string | null): string {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  for (const l of lines) {
    const [, ctrls, p] = l.split(':');
    if (controller === null ? ctrls === '' : (ctrls ?? '').split(',').includes(controller)) return p ?? '/';
  }
  return '/';
}

function copyFromParent(dir: string, file: string): void {
  const f = path.join(dir, file);
  if (readFileSync(f, 'utf8').trim() === '') writeFileSync(f, readFileSync(path.join(path.dirname(dir), file), 'utf8').trim());
}

export class CgroupFixture {
  readonly layout: CgroupLayout;
  /** NOMAD_PARENT_CGROUP */
  readonly parent: string;
  private readonly created: string[] = [];
  readonly skipReason: string | null;

  constructor() {
    this.layout = detectCgroupLayout();
    const tag = `exec2-test-${randomBytes(4).toString('hex')}`;
    if (this.layout.mode === 'v2') {
      const own = ownCgroup(null);
      if (own !== '/') {
        this.parent = '';
        this.skipReason = `cgroup v2 tests need the root cgroup (this process is in ${own}); they run in the VM suite`;
        return;
      }
      this.parent = 'nomad.slice';
      this.skipReason = null;
      const root = this.layout.root;
      this.enable(root);
      this.mkdir(path.join(root, 'nomad.slice'));
      this.enable(path.join(root, 'nomad.slice'));
      this.mkdir(path.join(root, 'nomad.slice', 'share.slice'));
      this.enable(path.join(root, 'nomad.slice', 'share.slice'));
      this.mkdir(path.join(root, 'nomad.slice', 'reserve.slice'));
      this.enable(path.join(root, 'nomad.slice', 'reserve.slice'));
      return;
    }
    if (this.layout.mode === 'none') {
      this.parent = '';
      this.skipReason = 'no cgroup filesystem mounted';
      return;
    }
    const mem = ownCgroup('memory').replace(/^\//, '');
    this.parent = path.posix.join(mem, tag);
    this.skipReason = null;
    // Nomad's parent exists in every controller; the driver adds task cgroups
    // for its own controllers (cpuacct, pids) below it itself.
    for (const c of ['cpu', 'memory', 'freezer', 'cpuset', 'cpuacct', 'pids']) {
      const mount = this.layout.v1.get(c);
      if (!mount) continue;
      let dir = mount;
      for (const part of this.parent.split('/')) {
        dir = path.join(dir, part);
        this.mkdir(dir);
        if (c === 'cpuset') {
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

  private enable(dir: string): void {
    const available = readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
    const want = ['cpuset', 'cpu', 'io', 'memory', 'pids'].filter((c) => available.includes(c));
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
      const dir = path.join(this.layout.root, 'nomad.slice', slice, `${name}.scope`);
      this.mkdir(dir);
      return { cpusetCgroup: dir, dirs: { unified: dir } };
    }
    const dirs: Record<string, string> = {};
    for (const c of ['cpu', 'memory', 'freezer']) {
      const mount = this.layout.v1.get(c);
      if (!mount) continue;
      dirs[c] = path.join(mount, this.parent, name);
      this.mkdir(dirs[c]!);
    }
    const cpusetMount = this.layout.v1.get('cpuset')!;
    let cpusetCgroup = path.join(cpusetMount, this.parent, 'share');
    if (reservedCores) {
      this.mkdir(path.join(cpusetMount, this.parent, 'reserve'));
      copyFromParent(path.join(cpusetMount, this.parent, 'reserve'), 'cpuset.cpus');
      copyFromParent(path.join(cpusetMount, this.parent, 'reserve'), 'cpuset.mems');
      cpusetCgroup = path.join(cpusetMount, this.parent, 'reserve', name);
      this.mkdir(cpusetCgroup);
    }
    dirs.cpuset = cpusetCgroup;
    // Cgroups the driver creates itself (accounting, pids), for cleanup checks.
    for (const c of ['cpuacct', 'pids']) {
      const mount = this.layout.v1.get(c);
      if (mount) dirs[c] = path.join(mount, this.parent, name);
    }
    return { cpusetCgroup, dirs };
  }

  /** Nomad's post-stop cleanup for one task: kill what is left, remove the cgroup. */
  removeTask(paths: TaskCgroupPaths): void {
    for (const dir of Object.values(paths.dirs)) {
      if (!existsSync(dir) || dir.endsWith('/share')) continue;
      try {
        rmdirSync(dir);
      } catch {
        // removed with the fixture
      }
    }
  }

  /** Remove everything this fixture created, deepest first, and the driver's own leftovers below it. */
  cleanup(): string[] {
    const failures: string[] = [];
    for (const dir of [...this.created].reverse()) {
      if (!existsSync(dir)) continue;
      try {
        rmdirSync(dir);
      } catch (err) {
        failures.push(`${dir}: ${(err as Error).message}`);
      }
    }
    return failures;
  }
}
