/**
 * driver_state: the opaque bytes Nomad stores with a task handle and gives
 * back in RecoverTask. Self-sufficient (a new plugin process needs nothing
 * else) and versioned; JSON so an operator can read it in Nomad's state.
 */
import type { TaskCgroup } from '../../shared/cgroups/task-cgroup';
import type { SandboxBlock } from './sandbox';
import type { TaskCapabilities } from '../../shared/capabilities';
import { DriverError } from '../../shared/errors';

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
  /**
   * The capability sets the task was started with: exec sessions get
   * exactly these, whatever allow_caps says after a plugin restart. Absent
   * in handles written before capability support.
   */
  caps?: TaskCapabilities;
  /** whether the task's Landlock domain scopes abstract unix sockets (absent: the plugin's current setting) */
  scopeAbstractUnixSockets?: boolean;
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
  if (s.sandbox !== undefined) {
    if (!isSandboxBlock(s.sandbox)) throw new DriverError('INVALID_ARGUMENT', 'driver_state has a malformed sandbox');
    // Handles from before cap_add / cap_drop existed.
    s.sandbox = { ...s.sandbox, capAdd: s.sandbox.capAdd ?? [], capDrop: s.sandbox.capDrop ?? [] };
  }
  if (s.caps !== undefined && !isCapabilities(s.caps)) throw new DriverError('INVALID_ARGUMENT', 'driver_state has malformed capabilities');
  if (s.scopeAbstractUnixSockets !== undefined && typeof s.scopeAbstractUnixSockets !== 'boolean') throw new DriverError('INVALID_ARGUMENT', 'driver_state has a malformed scopeAbstractUnixSockets');
  return s as DriverStateV1;
}

const isCapList = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 63);

function isCapabilities(v: unknown): v is TaskCapabilities {
  if (!v || typeof v !== 'object') return false;
  const c = v as Record<string, unknown>;
  return isCapList(c.bounding) && isCapList(c.ambient);
}

const isStringList = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** capAdd / capDrop may be missing (older handles); decodeDriverState fills them in. */
function isSandboxBlock(v: unknown): v is Omit<SandboxBlock, 'capAdd' | 'capDrop'> & Partial<Pick<SandboxBlock, 'capAdd' | 'capDrop'>> {
  if (!v || typeof v !== 'object') return false;
  const b = v as Record<string, unknown>;
  return isStringList(b.unveil)
    && (b.workDir === null || typeof b.workDir === 'string')
    && (b.oomScoreAdj === null || Number.isInteger(b.oomScoreAdj))
    && (b.capAdd === undefined || isStringList(b.capAdd))
    && (b.capDrop === undefined || isStringList(b.capDrop));
}
