/**
 * The agent's `plugin { config {} }` block and the job's task `config {}`
 * block: their schemas (sent to Nomad) and their decoding and validation.
 */
import { CtyDecodeError, decodeObject, type CtyValue } from './cty';
import { invalidArgument, invalidConfig, DriverError } from '../../shared/errors';
import { decoderSchema, objectSpec, type BlockDef } from './hclspec';
import { parseUnveil, normalisePath, UnveilSyntaxError } from '../../shared/unveil';
import { parseListenAddress } from './listen-address';
import { DEFAULT_ALLOW_CAPS, parseCapabilityList, resolveAllowList } from '../../shared/capabilities';
import type { Spec } from '../../gen/hashicorp/nomad/plugins/shared/hclspec/hclspec';

export const DEFAULT_STATE_DIR = '/run/nomad-driver-exec2';
/** Nomad's default dynamic workload user range (client `user.dynamic_user_min` / `_max`). */
export const DEFAULT_DYNAMIC_USER_MIN = 80000;
export const DEFAULT_DYNAMIC_USER_MAX = 89999;
/**
 * Default (and ceiling) of a task's pids.max. A little under systemd's
 * per-unit default (DefaultTasksMax = 15% of the kernel's pid limit: 4915
 * for the usual pid_max 32768), far above what ordinary services use
 * (JVMs with large pools run a few hundred threads), and small enough that
 * one task cannot take the host's pids by itself.
 */
export const DEFAULT_PIDS_MAX = 4096;
/** Highest id accepted for the dynamic user range (ids above 2^31-1 confuse tools that keep uids in a signed int). */
export const MAX_DYNAMIC_ID = 2 ** 31 - 1;

export const PLUGIN_CONFIG_BLOCK: BlockDef = {
  unveil_defaults: { type: 'bool', default: 'true' },
  unveil_by_task: { type: 'bool', default: 'false' },
  unveil_paths: { type: { list: 'string' } },
  // Our own: where pid 1 of each task records its exit status (root only).
  state_dir: { type: 'string', default: JSON.stringify(DEFAULT_STATE_DIR) },
  // Our own: Prometheus endpoint (off when unset) and opt-in per-task series.
  metrics_address: { type: 'string' },
  metrics_per_task: { type: 'bool', default: 'false' },
  // Our own: every task gets its own tmp dir mounted over /tmp (false: the host's /tmp, shared).
  private_tmp: { type: 'bool', default: 'true' },
  // Capabilities a task may have at most (Nomad exec's allow_caps and default).
  allow_caps: { type: { list: 'string' }, default: JSON.stringify(DEFAULT_ALLOW_CAPS) },
  // Nomad's dynamic workload user range (client user.dynamic_user_min/max).
  dynamic_user_min: { type: 'number', default: String(DEFAULT_DYNAMIC_USER_MIN) },
  dynamic_user_max: { type: 'number', default: String(DEFAULT_DYNAMIC_USER_MAX) },
  // Our own: default and ceiling of a task's pids.max (0: no limit).
  pids_max: { type: 'number', default: String(DEFAULT_PIDS_MAX) },
  // Our own: Landlock ABI 6+ scopes abstract unix sockets to the task.
  scope_abstract_unix_sockets: { type: 'bool', default: 'true' },
};

export const TASK_CONFIG_BLOCK: BlockDef = {
  command: { type: 'string', required: true },
  args: { type: { list: 'string' } },
  unveil: { type: { list: 'string' } },
  oom_score_adj: { type: 'number' },
  work_dir: { type: 'string' },
  cap_add: { type: { list: 'string' } },
  cap_drop: { type: { list: 'string' } },
  pids_max: { type: 'number' },
};

export const PLUGIN_CONFIG_SPEC: Spec = objectSpec(PLUGIN_CONFIG_BLOCK);
export const TASK_CONFIG_SPEC: Spec = objectSpec(TASK_CONFIG_BLOCK);
export const PLUGIN_CONFIG_SCHEMA = decoderSchema(PLUGIN_CONFIG_BLOCK);
export const TASK_CONFIG_SCHEMA = decoderSchema(TASK_CONFIG_BLOCK);

/**
 * The plugin config of one SetConfig. Never changed once made: the launch
 * planner caches what it derives from it by object identity
 * (src/main/tasks/sandbox.ts). parsePluginConfig freezes the object and its
 * lists at run time (the array types stay mutable for existing callers that
 * pass them where an array is expected; nothing writes to them).
 */
export interface PluginConfig {
  unveilDefaults: boolean;
  unveilByTask: boolean;
  unveilPaths: string[];
  stateDir: string;
  metricsAddress: string | null;
  metricsPerTask: boolean;
  privateTmp: boolean;
  /** allow_caps as capability numbers, sorted */
  allowCaps: number[];
  dynamicUserMin: number;
  dynamicUserMax: number;
  /** 0: no pids limit */
  pidsMax: number;
  scopeAbstractUnixSockets: boolean;
}

export const DEFAULT_PLUGIN_CONFIG: PluginConfig = Object.freeze({
  unveilDefaults: true,
  unveilByTask: false,
  unveilPaths: Object.freeze([]) as unknown as string[],
  stateDir: DEFAULT_STATE_DIR,
  metricsAddress: null,
  metricsPerTask: false,
  privateTmp: true,
  allowCaps: Object.freeze(resolveAllowList(parseCapabilityList(DEFAULT_ALLOW_CAPS, 'allow_caps', true, invalidConfig))) as number[],
  dynamicUserMin: DEFAULT_DYNAMIC_USER_MIN,
  dynamicUserMax: DEFAULT_DYNAMIC_USER_MAX,
  pidsMax: DEFAULT_PIDS_MAX,
  scopeAbstractUnixSockets: true,
});

export interface TaskConfigBlock {
  command: string;
  args: string[];
  unveil: string[];
  oomScoreAdj: number | null;
  /** absolute, or relative to the task directory (never starting with "..") */
  workDir: string | null;
  capAdd: string[];
  capDrop: string[];
  /** null: the plugin's pids_max */
  pidsMax: number | null;
}

function decode(bytes: Uint8Array, schema: typeof PLUGIN_CONFIG_SCHEMA, what: string, mkErr: (m: string) => DriverError) {
  try {
    return decodeObject(bytes, schema, what);
  } catch (err) {
    if (err instanceof CtyDecodeError) throw mkErr(err.message);
    throw err;
  }
}

const strings = (v: CtyValue): string[] => (v === null ? [] : (v as string[]));

function checkUnveilList(list: string[], where: string, mkErr: (m: string) => DriverError): void {
  list.forEach((s, i) => {
    try {
      parseUnveil(s);
    } catch (err) {
      if (err instanceof UnveilSyntaxError) throw mkErr(`${where}[${i}]: ${err.message}`);
      throw err;
    }
  });
}

export function parsePluginConfig(bytes: Uint8Array): PluginConfig {
  const what = 'plugin config';
  const v = decode(bytes, PLUGIN_CONFIG_SCHEMA, what, invalidConfig);
  const unveilPaths = strings(v.unveil_paths ?? null);
  checkUnveilList(unveilPaths, `${what}: attribute "unveil_paths"`, invalidConfig);
  const stateDir = (v.state_dir as string | null) ?? DEFAULT_STATE_DIR;
  if (!stateDir.startsWith('/')) throw invalidConfig(`${what}: attribute "state_dir": "${stateDir}" must be an absolute path`);
  const metricsAddress = (v.metrics_address as string | null) || null;
  if (metricsAddress !== null) parseListenAddress(metricsAddress);
  const allowCaps = v.allow_caps === null || v.allow_caps === undefined
    ? DEFAULT_PLUGIN_CONFIG.allowCaps
    : Object.freeze(resolveAllowList(parseCapabilityList(strings(v.allow_caps), `${what}: attribute "allow_caps"`, true, invalidConfig))) as number[];
  const intAttr = (name: string, dflt: number, min: number, max: number): number => {
    const raw = v[name];
    if (raw === null || raw === undefined) return dflt;
    const n = raw as number;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw invalidConfig(`${what}: attribute "${name}": ${n} is not an integer between ${min} and ${max}`);
    return n;
  };
  // Never 0: a dynamic user must not be able to become root.
  const dynamicUserMin = intAttr('dynamic_user_min', DEFAULT_DYNAMIC_USER_MIN, 1, MAX_DYNAMIC_ID);
  const dynamicUserMax = intAttr('dynamic_user_max', DEFAULT_DYNAMIC_USER_MAX, 1, MAX_DYNAMIC_ID);
  if (dynamicUserMin > dynamicUserMax) throw invalidConfig(`${what}: dynamic_user_min (${dynamicUserMin}) is above dynamic_user_max (${dynamicUserMax})`);
  const pidsMax = intAttr('pids_max', DEFAULT_PIDS_MAX, 0, 2 ** 22);
  // Frozen: see PluginConfig.
  return Object.freeze({
    unveilDefaults: (v.unveil_defaults as boolean | null) ?? true,
    unveilByTask: (v.unveil_by_task as boolean | null) ?? false,
    unveilPaths: Object.freeze(unveilPaths) as string[],
    stateDir: normalisePath(stateDir),
    metricsAddress,
    metricsPerTask: (v.metrics_per_task as boolean | null) ?? false,
    privateTmp: (v.private_tmp as boolean | null) ?? true,
    allowCaps,
    dynamicUserMin,
    dynamicUserMax,
    pidsMax,
    scopeAbstractUnixSockets: (v.scope_abstract_unix_sockets as boolean | null) ?? true,
  });
}

/**
 * `work_dir`: absolute, or relative to the task directory (the parent of
 * NOMAD_TASK_DIR: "local" is $NOMAD_TASK_DIR itself, upstream exec2 PR #97).
 * A relative value stays relative here (the sandbox anchors it at the task
 * directory) and may not climb out of it with "..".
 */
export function parseWorkDir(w: string, what: string): string {
  const attr = `${what}: attribute "work_dir"`;
  if (w === '') throw invalidArgument(`${attr} must not be empty (leave it unset for the task directory)`);
  if (w.includes('\0')) throw invalidArgument(`${attr} contains a NUL byte`);
  if (w.startsWith('/')) return normalisePath(w);
  const rel = normalisePath(w);
  if (rel === '..' || rel.startsWith('../')) throw invalidArgument(`${attr}: "${w}" leaves the task directory; a relative work_dir must stay inside it`);
  return rel;
}

/**
 * The task config block of `bytes`. Nomad sends the same bytes for every
 * launch of the same task (a batch job's thousands of runs), so decoded
 * blocks are remembered by their exact bytes: the same bytes always decode
 * to the same block, so a hit is the result a decode would give. Each call
 * gets its own copy (callers keep the lists in requests and driver_state).
 * Only successes are kept (an error is decoded afresh and reads the same),
 * only small payloads, and only a bounded number: the bytes come from jobs.
 */
export function parseTaskConfig(bytes: Uint8Array): TaskConfigBlock {
  if (bytes.length > BLOCK_MEMO_MAX_BYTES) return decodeTaskConfig(bytes);
  const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1'); // one char per byte: distinct bytes, distinct keys
  let block = blockMemo.get(key);
  if (!block) {
    block = decodeTaskConfig(bytes);
    if (blockMemo.size >= BLOCK_MEMO_ENTRIES) blockMemo.clear();
    blockMemo.set(key, block);
  }
  return { ...block, args: block.args.slice(), unveil: block.unveil.slice(), capAdd: block.capAdd.slice(), capDrop: block.capDrop.slice() };
}

const BLOCK_MEMO_MAX_BYTES = 4096;
const BLOCK_MEMO_ENTRIES = 128;
const blockMemo = new Map<string, TaskConfigBlock>();

function decodeTaskConfig(bytes: Uint8Array): TaskConfigBlock {
  const what = 'task config';
  const v = decode(bytes, TASK_CONFIG_SCHEMA, what, invalidArgument);
  const command = v.command as string;
  if (command.trim() === '') throw invalidArgument(`${what}: attribute "command" must not be empty`);
  if (command.includes('\0')) throw invalidArgument(`${what}: attribute "command" contains a NUL byte`);
  const args = strings(v.args ?? null);
  args.forEach((a, i) => {
    if (a.includes('\0')) throw invalidArgument(`${what}: attribute "args"[${i}] contains a NUL byte`);
  });
  const unveil = strings(v.unveil ?? null);
  checkUnveilList(unveil, `${what}: attribute "unveil"`, invalidArgument);
  let oomScoreAdj: number | null = null;
  if (v.oom_score_adj !== null && v.oom_score_adj !== undefined) {
    const n = v.oom_score_adj as number;
    // Negative values would shield a task from the OOM killer at the host's expense.
    if (!Number.isInteger(n) || n < 0 || n > 1000) {
      throw invalidArgument(`${what}: attribute "oom_score_adj": ${n} is not an integer between 0 and 1000`);
    }
    oomScoreAdj = n;
  }
  let workDir: string | null = null;
  if (v.work_dir !== null && v.work_dir !== undefined) {
    workDir = parseWorkDir(v.work_dir as string, what);
  }
  const capAdd = strings(v.cap_add ?? null);
  const capDrop = strings(v.cap_drop ?? null);
  // Names are checked here (INVALID_ARGUMENT naming the attribute); whether
  // cap_add is allowed depends on the plugin config (taskCapabilities).
  parseCapabilityList(capAdd, `${what}: attribute "cap_add"`, false, invalidArgument);
  parseCapabilityList(capDrop, `${what}: attribute "cap_drop"`, true, invalidArgument);
  let pidsMax: number | null = null;
  if (v.pids_max !== null && v.pids_max !== undefined) {
    const n = v.pids_max as number;
    if (!Number.isSafeInteger(n) || n < 1 || n > 2 ** 22) throw invalidArgument(`${what}: attribute "pids_max": ${n} is not an integer between 1 and ${2 ** 22}`);
    pidsMax = n;
  }
  return { command, args, unveil, oomScoreAdj, workDir, capAdd, capDrop, pidsMax };
}
