/**
 * Linux capabilities a task may hold: the name <-> number table (kernel
 * numbering, include/uapi/linux/capability.h) and the pure decision of a
 * task's bounding and ambient sets from the plugin's `allow_caps` and the
 * task's `cap_add` / `cap_drop`. The init helper applies the result; the
 * numbers beyond what the running kernel knows (cap_last_cap) are refused
 * there, at run time.
 */
import { DriverError, failedPrecondition, invalidArgument } from './errors';

/** Kernel capability numbers, lower-case names without the CAP_ prefix. */
export const CAPABILITY_NUMBERS: Readonly<Record<string, number>> = Object.freeze({
  chown: 0,
  dac_override: 1,
  dac_read_search: 2,
  fowner: 3,
  fsetid: 4,
  kill: 5,
  setgid: 6,
  setuid: 7,
  setpcap: 8,
  linux_immutable: 9,
  net_bind_service: 10,
  net_broadcast: 11,
  net_admin: 12,
  net_raw: 13,
  ipc_lock: 14,
  ipc_owner: 15,
  sys_module: 16,
  sys_rawio: 17,
  sys_chroot: 18,
  sys_ptrace: 19,
  sys_pacct: 20,
  sys_admin: 21,
  sys_boot: 22,
  sys_nice: 23,
  sys_resource: 24,
  sys_time: 25,
  sys_tty_config: 26,
  mknod: 27,
  lease: 28,
  audit_write: 29,
  audit_control: 30,
  setfcap: 31,
  mac_override: 32,
  mac_admin: 33,
  syslog: 34,
  wake_alarm: 35,
  block_suspend: 36,
  audit_read: 37,
  perfmon: 38,
  bpf: 39,
  checkpoint_restore: 40,
});

const NAME_OF: readonly string[] = (() => {
  const out: string[] = [];
  for (const [name, n] of Object.entries(CAPABILITY_NUMBERS)) out[n] = name;
  return out;
})();

/** Nomad's `exec` driver default allow list (the capabilities Docker grants by default, minus net_raw). */
export const DEFAULT_ALLOW_CAPS: readonly string[] = Object.freeze([
  'audit_write', 'chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'mknod',
  'net_bind_service', 'setfcap', 'setgid', 'setpcap', 'setuid', 'sys_chroot',
]);

export function capabilityName(n: number): string {
  return NAME_OF[n] ?? `cap_${n}`;
}

export class CapabilityNameError extends Error {
  constructor(readonly entry: string) {
    super(`"${entry}" is not a Linux capability (expected a name such as "net_bind_service" or "CAP_NET_BIND_SERVICE")`);
    this.name = 'CapabilityNameError';
  }
}

/**
 * "CAP_NET_BIND_SERVICE", "net_bind_service", " Net_Bind_Service " all name
 * capability 10. Returns null for "all" (the caller decides where it is
 * allowed); throws CapabilityNameError for anything else.
 */
export function parseCapabilityName(entry: string): number | null {
  const s = entry.trim().toLowerCase();
  if (s === 'all') return null;
  const name = s.startsWith('cap_') ? s.slice(4) : s;
  // Own properties only: "constructor" or "__proto__" must not resolve.
  if (!Object.hasOwn(CAPABILITY_NUMBERS, name)) throw new CapabilityNameError(entry);
  return CAPABILITY_NUMBERS[name]!;
}

export interface CapabilityList {
  /** the list contained "all" */
  all: boolean;
  /** sorted, unique */
  caps: number[];
}

/** Parse a list of names; `where` names the attribute in errors. */
export function parseCapabilityList(list: readonly string[], where: string, allowAll: boolean, mkErr: (m: string) => DriverError): CapabilityList {
  const set = new Set<number>();
  let all = false;
  list.forEach((entry, i) => {
    let n: number | null;
    try {
      n = parseCapabilityName(entry);
    } catch (err) {
      if (err instanceof CapabilityNameError) throw mkErr(`${where}[${i}]: ${err.message}`);
      throw err;
    }
    if (n === null) {
      if (!allowAll) throw mkErr(`${where}[${i}]: "all" is only accepted in cap_drop and allow_caps`);
      all = true;
    } else {
      set.add(n);
    }
  });
  return { all, caps: [...set].sort((a, b) => a - b) };
}

/** `allow_caps` resolved to numbers; "all" means every capability in the table. */
export function resolveAllowList(list: CapabilityList): number[] {
  if (list.all) return Object.values(CAPABILITY_NUMBERS).sort((a, b) => a - b);
  return list.caps;
}

export interface TaskCapabilityInput {
  /** the plugin's allow_caps, as numbers */
  allow: readonly number[];
  add: readonly string[];
  drop: readonly string[];
  /** the task runs as uid 0 */
  root: boolean;
}

export interface TaskCapabilities {
  /** the bounding set the task (and every exec session) runs with, sorted */
  bounding: number[];
  /** raised as ambient for a non-root task (so they survive execve); always [] for root */
  ambient: number[];
}

/**
 * Root tasks: the allowed set (or nothing, with cap_drop = ["all"]) plus
 * cap_add, minus every capability cap_drop names. Non-root tasks: exactly
 * cap_add minus cap_drop, as bounding and ambient set (a dynamic user with
 * cap_add = ["net_bind_service"] can bind port 80 and do nothing else
 * privileged). A cap_add outside allow_caps is FAILED_PRECONDITION: the job
 * is well-formed, but this client's operator has not allowed it (the same
 * job may run on a client that allows it).
 */
export function taskCapabilities(input: TaskCapabilityInput): TaskCapabilities {
  const add = parseCapabilityList(input.add, 'task config: attribute "cap_add"', false, invalidArgument);
  const drop = parseCapabilityList(input.drop, 'task config: attribute "cap_drop"', true, invalidArgument);
  const allowed = new Set(input.allow);
  const refused = add.caps.filter((c) => !allowed.has(c));
  if (refused.length > 0) {
    const names = refused.map(capabilityName).join(', ');
    throw failedPrecondition(`task config: attribute "cap_add": ${names} ${refused.length === 1 ? 'is' : 'are'} not allowed by this client; the plugin option allow_caps permits only: ${[...allowed].sort((a, b) => a - b).map(capabilityName).join(', ') || '(none)'}`, false);
  }
  const dropped = new Set(drop.caps);
  const keep = (c: number): boolean => !dropped.has(c);
  const bounding = new Set<number>(input.root && !drop.all ? input.allow : []);
  for (const c of add.caps) bounding.add(c);
  const result = [...bounding].filter(keep).sort((a, b) => a - b);
  return { bounding: result, ambient: input.root ? [] : result };
}

/** CapBnd / CapEff style hex mask (16 digits), for tests and logs. */
export function capabilityMask(caps: readonly number[]): string {
  let m = 0n;
  for (const c of caps) m |= 1n << BigInt(c);
  return m.toString(16).padStart(16, '0');
}
