/**
 * Volume mounts (`volume` / `volume_mount`, host and CSI): what Nomad hands
 * in TaskConfig.mounts, turned into bind mounts of the task's own mount
 * namespace. Pure.
 *
 * exec2 has no root filesystem of its own, so a destination means a path in
 * the task's directory: `destination = "/data"` (or `"data"`) is
 * `$NOMAD_TASK_DIR/../data`, next to `local/` and `secrets/`, made if it is
 * missing. The host path is never unveiled; the destination is, `r` for a
 * read-only mount, `rwc` otherwise.
 */
import * as path from 'node:path';
import type { Mount } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import { failedPrecondition, invalidArgument } from '../../shared/errors';
import { parseUnveil, type UnveilRule } from '../../shared/unveil';

export interface Volume {
  /** absolute host path (Nomad resolved it from the volume) */
  hostPath: string;
  /** absolute path below the task root */
  dest: string;
  readonly: boolean;
  /** true: no propagation ("private", Nomad's default); false: host mounts below it reach the task ("host-to-task") */
  private: boolean;
}

/** The task's own directories: a volume may go below them, never over them. */
const RESERVED = ['local', 'secrets', 'tmp', 'alloc', 'private'];

/** At most this many volumes per task (native/protocol.h). */
export const MAX_VOLUMES = 32;

export function planVolumes(mounts: readonly Mount[], taskRoot: string): { volumes: Volume[]; rules: UnveilRule[] } {
  // Most tasks have no volume: nothing to check, sort or parse.
  if (mounts.length === 0) return { volumes: [], rules: [] };
  if (mounts.length > MAX_VOLUMES) throw invalidArgument(`task has ${mounts.length} volume mounts; at most ${MAX_VOLUMES} are supported`);
  const volumes = mounts.map((m, i): Volume => {
    const what = `volume mount ${i} (${m.requestName || m.taskPath})`;
    if (m.selinuxLabel) throw failedPrecondition(`${what}: SELinux labels ("${m.selinuxLabel}") are not supported by the exec2 driver (it confines tasks with Landlock)`);
    const mode = m.propagationMode || 'private';
    if (mode === 'bidirectional') throw failedPrecondition(`${what}: propagation_mode "bidirectional" is not supported: mounts made by the task would reach the host`);
    if (mode !== 'private' && mode !== 'host-to-task') throw invalidArgument(`${what}: unknown propagation_mode "${mode}" (private or host-to-task)`);
    if (!path.isAbsolute(m.hostPath) || m.hostPath.includes('\0')) throw invalidArgument(`${what}: host path "${m.hostPath}" must be an absolute path`);
    if (!m.taskPath || m.taskPath.includes('\0')) throw invalidArgument(`${what}: destination "${m.taskPath}" is empty or contains a NUL byte`);
    const rel = path.posix.normalize(m.taskPath.replace(/^\/+/, ''));
    if (rel === '.' || rel === '..' || rel.startsWith('../')) throw invalidArgument(`${what}: destination "${m.taskPath}" must lie inside the task directory`);
    if (RESERVED.includes(rel.replace(/\/+$/, ''))) throw failedPrecondition(`${what}: destination "${m.taskPath}" would hide the task's own ${rel} directory; mount below it or elsewhere`);
    return { hostPath: path.posix.normalize(m.hostPath), dest: path.posix.join(taskRoot, rel.replace(/\/+$/, '')), readonly: m.readonly, private: mode === 'private' };
  });
  // Outer destinations first: one volume may be mounted inside another.
  volumes.sort((a, b) => a.dest.split('/').length - b.dest.split('/').length);
  const dests = new Set<string>();
  for (const v of volumes) {
    if (dests.has(v.dest)) throw invalidArgument(`two volume mounts share the destination ${v.dest}`);
    dests.add(v.dest);
  }
  return { volumes, rules: volumes.map((v) => parseUnveil(`${v.readonly ? 'r' : 'rwc'}:${v.dest}`)) };
}
