/**
 * What cgroup layout the host has, read from /proc/self/mountinfo. Nomad
 * itself decides v2 vs v1 by whether /sys/fs/cgroup is a cgroup2 mount; a
 * host with v1 controllers and a cgroup2 mount at /sys/fs/cgroup/unified is
 * "hybrid" and Nomad treats it as v1.
 */
import { readFileSync } from 'node:fs';

export type CgroupMode = 'v2' | 'v1' | 'hybrid' | 'none';

export interface CgroupMount {
  mountPoint: string;
  fsType: string;
  /** v1: the controllers in the super options (cpu, memory, ...) */
  controllers: string[];
  /** mounted with `favordynmods` (Linux 6.0+): cgroup migrations skip an RCU grace period */
  favorDynmods: boolean;
}

export interface CgroupLayout {
  mode: CgroupMode;
  root: string;
  /** v1 controller name → mount point */
  v1: Map<string, string>;
  /** cgroup2 mount point, if any (the root in v2, `unified` in hybrid) */
  unified: string | null;
  /**
   * Some cgroup mount shows `favordynmods`. The kernel switch behind it is
   * global, so then every cgroup.procs write (how v1 tasks join) is cheap.
   */
  favorDynmods: boolean;
}

/** Super options of a v1 cgroup mount that are not controller names. */
const V1_NON_CONTROLLER_OPTIONS = new Set([
  'rw', 'ro', 'relatime', 'noatime', 'nosuid', 'nodev', 'noexec',
  'none', 'all', 'noprefix', 'clone_children', 'xattr', 'cpuset_v2_mode', 'favordynmods', 'nofavordynmods',
]);

export const CGROUP_ROOT = '/sys/fs/cgroup';

export function parseMountinfo(text: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const fsType = right[0] ?? '';
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    const mountPoint = (left[4] ?? '').replace(/\\040/g, ' ');
    const superOpts = (right[2] ?? '').split(',');
    const controllers = fsType === 'cgroup' ? superOpts.filter((o) => o !== '' && !o.includes('=') && !V1_NON_CONTROLLER_OPTIONS.has(o)) : [];
    out.push({ mountPoint, fsType, controllers, favorDynmods: superOpts.includes('favordynmods') });
  }
  return out;
}

export function layoutFromMounts(mounts: CgroupMount[], root = CGROUP_ROOT): CgroupLayout {
  const v1 = new Map<string, string>();
  let unified: string | null = null;
  let rootIsV2 = false;
  for (const m of mounts) {
    if (m.fsType === 'cgroup2') {
      if (m.mountPoint === root) rootIsV2 = true;
      if (unified === null || m.mountPoint === root) unified = m.mountPoint;
    } else {
      for (const c of m.controllers) if (!v1.has(c)) v1.set(c, m.mountPoint);
    }
  }
  const mode: CgroupMode = rootIsV2 ? 'v2' : v1.size > 0 ? (unified ? 'hybrid' : 'v1') : 'none';
  return { mode, root, v1, unified, favorDynmods: mounts.some((m) => m.favorDynmods) };
}

let cached: CgroupLayout | undefined;

export function detectCgroupLayout(): CgroupLayout {
  if (!cached) {
    let text: string;
    try {
      text = readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      text = '';
    }
    cached = layoutFromMounts(parseMountinfo(text));
  }
  return cached;
}
