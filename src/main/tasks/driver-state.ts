/**
 * driver_state: the opaque bytes Nomad stores with a task handle and gives
 * back in RecoverTask. Self-sufficient (a new plugin process needs nothing
 * else) and versioned; JSON so an operator can read it in Nomad's state.
 */
import type { TaskCgroup } from '../cgroups/task-cgroup';
import type { SandboxBlock } from './sandbox';
import { DriverError } from '../errors';

export const HANDLE_VERSION = 1;
const FORMAT = 'nomad-driver-exec2-ts';

export interface DriverStateV1 {
  format: typeof FORMAT;
  v: 1;
  /** host pid of the task's pid 1 */
  pid: number;
  /** /proc/<pid>/stat starttime (clock ticks since boot): guards against pid reuse */
  pidStartTime: string;
  /** root-only directory holding pid 1's `status` file */
  statusDir: string;
  cgroup: TaskCgroup;
  user: { name: string; uid: number; gid: number };
  /** host path of the task directory */
  taskDir: string;
  startedAt: string;
  /** the cgroup's OOM kill count before this start (cgroups are reused across restarts) */
  oomKillsBefore: number;
  /**
   * The `config {}` attributes that shape the sandbox, so an exec session can
   * reproduce it after an agent restart (Nomad does not persist the block).
   * Absent in handles written before exec support.
   */
  sandbox?: SandboxBlock;
}

export function encodeDriverState(s: Omit<DriverStateV1, 'format' | 'v'>): Uint8Array {
  return Buffer.from(JSON.stringify({ format: FORMAT, v: 1, ...s }));
}

export function decodeDriverState(bytes: Uint8Array, handleVersion: number): DriverStateV1 {
  if (handleVersion !== HANDLE_VERSION) {
    throw new DriverError('INVALID_ARGUMENT', `task handle version ${handleVersion} is not supported by this plugin (expected ${HANDLE_VERSION})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new DriverError('INVALID_ARGUMENT', 'driver_state is not from this driver (not JSON); was the task started by another exec2 implementation?');
  }
  const s = raw as Partial<DriverStateV1>;
  if (s.format !== FORMAT) throw new DriverError('INVALID_ARGUMENT', 'driver_state is not from this driver (unknown format)');
  if (s.v !== 1) throw new DriverError('INVALID_ARGUMENT', `driver_state version ${String(s.v)} is not supported (expected 1)`);
  if (!Number.isInteger(s.pid) || typeof s.pidStartTime !== 'string' || typeof s.statusDir !== 'string' || !s.cgroup || !s.user) {
    throw new DriverError('INVALID_ARGUMENT', 'driver_state is incomplete');
  }
  if (s.sandbox !== undefined && !isSandboxBlock(s.sandbox)) throw new DriverError('INVALID_ARGUMENT', 'driver_state has a malformed sandbox');
  return s as DriverStateV1;
}

function isSandboxBlock(v: unknown): v is SandboxBlock {
  if (!v || typeof v !== 'object') return false;
  const b = v as Record<string, unknown>;
  return Array.isArray(b.unveil) && b.unveil.every((x) => typeof x === 'string')
    && (b.workDir === null || typeof b.workDir === 'string')
    && (b.oomScoreAdj === null || Number.isInteger(b.oomScoreAdj));
}
