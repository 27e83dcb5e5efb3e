/**
 * What confines a task, computed from its TaskConfig, its `config {}` block
 * and the plugin config: the unveil (Landlock) rules, the environment, the
 * working directory and the network namespace. StartTask uses it to launch
 * the task; exec sessions (`nomad alloc exec`, script checks) use the very
 * same function, so a command exec'd into a task can never be confined
 * differently from the task itself.
 */
import * as path from 'node:path';
import type { TaskConfig } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import { NetworkIsolationSpec_NetworkIsolationMode as NetMode } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import { parseWorkDir, type PluginConfig, type TaskConfigBlock } from '../config/config';
import { failedPrecondition, invalidArgument, messageOf } from '../../shared/errors';
import { planVolumes, type Volume } from './volumes';
import { taskOnlyDirs, type TaskCgroup } from '../../shared/cgroups/task-cgroup';
import type { Compute } from '../../shared/topology';
import { gomaxprocs } from './resources';
import { DEFAULT_RULES, isNormalAbsolute, isUnveiled, isWithin, normalisePath, planUnveil, pluginUnveilRules, pushTaskPathRules, taskDirRules, writableRuleFor, UnveilSyntaxError, type PlannedRule, type UnveilRule } from '../../shared/unveil';
import { taskCapabilities } from '../../shared/capabilities';
import type { CapabilityChoice } from '../../shared/messages';

/** Environment variables exec2 removes besides LD_* (display and mail leftovers). */
const DROPPED_ENV = new Set(['LS_COLORS', 'XAUTHORITY', 'DISPLAY', 'COLORTERM', 'MAIL']);

/** The parts of the `config {}` block that shape the sandbox (kept in driver_state: Nomad does not persist the block). */
export type SandboxBlock = Pick<TaskConfigBlock, 'unveil' | 'workDir' | 'oomScoreAdj' | 'capAdd' | 'capDrop'>;

export interface TaskSandbox {
  /** in resolution order (planUnveil) */
  unveil: PlannedRule[];
  /** the anchor the working directory is resolved beneath, -1 for none */
  cwdBeneath: number;
  /**
   * The task's own /tmp: its tmp dir (`root`/tmp, opened beneath `root`)
   * mounted over /tmp, and the directories below /tmp that must stay
   * reachable at their paths (a dev agent's data dir). null: the host's /tmp.
   */
  tmp: { root: string; keep: string[] } | null;
  /** the plugin's own directories, hidden in the task's mount namespace */
  masks: string[];
  /** directories below which the task (or its allocation) can modify anything: opened only beneath them */
  untrustedRoots: string[];
  /** volume mounts (TaskConfig.mounts) of the task's namespace, below taskRoot */
  volumes: Volume[];
  /** the task environment without USER, LOGNAME and HOME, which depend on the resolved user */
  env: Record<string, string>;
  cwd: string;
  /** host path of the task directory (the parent of NOMAD_TASK_DIR) */
  taskRoot: string;
  /** network namespace to join (GROUP mode), or null for the host's */
  netnsPath: string | null;
  oomScoreAdj: number | null;
  /** capability sets for a uid 0 and for any other user */
  caps: CapabilityChoice;
  scopeAbstractUnixSockets: boolean;
}

/** cap_add / cap_drop against allow_caps, for both outcomes of the user lookup. */
export function capabilityChoice(block: Pick<SandboxBlock, 'capAdd' | 'capDrop'>, config: PluginConfig): CapabilityChoice {
  // Jobs repeat the same few lists: memoised per config (allow_caps) and
  // lists. Only successes are kept, so an error is always computed afresh
  // and reads exactly as before.
  let memo = capsByConfig.get(config);
  if (!memo || memo.allowCaps !== config.allowCaps) {
    memo = { allowCaps: config.allowCaps, choices: new Map() };
    capsByConfig.set(config, memo);
  }
  // Unambiguous for any strings; '' (no JSON text is empty) for the usual no lists at all.
  const key = block.capAdd.length === 0 && block.capDrop.length === 0 ? '' : JSON.stringify([block.capAdd, block.capDrop]);
  let choice = memo.choices.get(key);
  if (!choice) {
    const input = { allow: config.allowCaps, add: block.capAdd, drop: block.capDrop };
    choice = { root: taskCapabilities({ ...input, root: true }), user: taskCapabilities({ ...input, root: false }) };
    // Bounded: the lists come from jobs; a flood of distinct ones must not grow the plugin.
    if (memo.choices.size >= MAX_CAP_MEMO) memo.choices.clear();
    memo.choices.set(key, choice);
  }
  // Copies: the request and driver_state each own their arrays.
  return {
    root: { bounding: choice.root.bounding.slice(), ambient: choice.root.ambient.slice() },
    user: { bounding: choice.user.bounding.slice(), ambient: choice.user.ambient.slice() },
  };
}

/** Distinct (cap_add, cap_drop) pairs remembered per config. */
const MAX_CAP_MEMO = 64;
/** Per config object, like partsByConfig below (same reasoning), with allow_caps as the guard. */
const capsByConfig = new WeakMap<PluginConfig, { allowCaps: readonly number[]; choices: Map<string, CapabilityChoice> }>();

/**
 * The task's environment: `env` without LD_* and DROPPED_ENV. Usually none
 * of those is there, and then a spread copy (one bulk clone, measured 3x
 * faster than adding ~40 variables one by one on a cold launch) gives the
 * same keys, in the same order, with the same values. A "__proto__" key
 * takes the one-by-one path too: assigning it (as that path does) never
 * makes a property, a spread would.
 */
function copyEnv(env: Readonly<Record<string, string>>): Record<string, string> {
  const keys = Object.keys(env);
  let plain = true;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (k.startsWith('LD_') || DROPPED_ENV.has(k) || k === '__proto__') {
      plain = false;
      break;
    }
  }
  if (plain) return { ...env };
  const out: Record<string, string> = {};
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (!k.startsWith('LD_') && !DROPPED_ENV.has(k)) out[k] = env[k]!;
  }
  return out;
}

/** The tmp dir mounted over /tmp may keep this many directories below /tmp reachable (native/protocol.h). */
const MAX_KEEP = 2;

/** Directories in `dirs` not below another one of them (first occurrence order, no duplicates). */
function outermost(dirs: readonly string[]): string[] {
  const unique: string[] = [];
  for (const d of dirs) if (!unique.includes(d)) unique.push(d);
  const out: string[] = [];
  for (const d of unique) {
    let inner = false;
    for (const o of unique) {
      if (o !== d && isWithin(d, o)) {
        inner = true;
        break;
      }
    }
    if (!inner) out.push(d);
  }
  return out;
}

/** The plugin's directories every task's mount namespace hides: its socket dir(s) and state_dir. */
export const hiddenDirs = (config: PluginConfig, pluginDirs: readonly string[]): string[] => outermost([...pluginDirs, config.stateDir]);

function exposureMessage(dir: string, exposing: UnveilRule): string {
  return `the plugin's directory ${dir} (its socket or state_dir) would be exposed by the unveiled path "${exposing.mode}:${exposing.path}"; tasks could reach the plugin or forge their exit status. Drop that unveil entry or move state_dir (default /run/nomad-driver-exec2)`;
}

/** The first of `rules` at or below `dir` (a rule naming the directory or a path inside it). */
function firstWithin(rules: readonly UnveilRule[], dir: string): UnveilRule | undefined {
  for (let i = 0; i < rules.length; i++) if (isWithin(rules[i]!.path, dir)) return rules[i];
  return undefined;
}

/** The first of `rules` that lets a task write or create at the normalised path `n` (writableRuleFor without the normalisation). */
function firstWritable(rules: readonly UnveilRule[], n: string): UnveilRule | undefined {
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if ((r.mode.includes('w') || r.mode.includes('c')) && isWithin(n, r.path)) return r;
  }
  return undefined;
}

/**
 * Why `rules` would expose one of the plugin's directories, or null. The
 * exit status and the plugin's socket are trustworthy only while no task can
 * write there, and a rule naming them (or a path inside) means to show them.
 * Read-only rules above them (r:/) are fine: the mount namespace hides them.
 */
export function exposure(rules: readonly UnveilRule[], hidden: readonly string[]): string | null {
  for (const dir of hidden) {
    const exposing = firstWithin(rules, dir) ?? writableRuleFor(dir, rules);
    if (exposing) return exposureMessage(dir, exposing);
  }
  return null;
}

/**
 * What taskSandbox derives from the plugin config and the plugin's own dirs
 * alone, computed once: the hidden dirs, the plugin's unveil_paths parsed,
 * and, per hidden dir, the first plugin rule and the first default rule that
 * would expose it (each part of a task's rule list is searched in list
 * order, so the verdict and the rule it names are those of exposure() on the
 * whole list).
 */
interface PluginPart {
  /** guards against a caller editing a config object it passed before (parsePluginConfig's are frozen) */
  stateDir: string;
  unveilPaths: readonly string[];
  unveilPathsLength: number;
  unveilDefaults: boolean;
  allowCaps: readonly number[];
  pluginDirs: readonly string[];
  hidden: readonly string[];
  /** each hidden dir normalised, as writableRuleFor compares it */
  hiddenNorm: readonly string[];
  /** unveil_paths as rules, or the message its parse failed with (a hand-made config: SetConfig validates them) */
  pluginRules: readonly UnveilRule[];
  pluginError: string | null;
  pluginWithin: ReadonlyArray<UnveilRule | undefined>;
  pluginWritable: ReadonlyArray<UnveilRule | undefined>;
  defaultsWithin: ReadonlyArray<UnveilRule | undefined>;
  defaultsWritable: ReadonlyArray<UnveilRule | undefined>;
}

/**
 * Keyed by the PluginConfig object itself. Safe because a config is never
 * changed after it is made: SetConfig parses a new, frozen object and
 * replaces PluginState.config with it, so a new SetConfig can only ever find
 * its own entries (and the old config's entries are collected with it). A
 * hand-made config edited in place is caught by the guard fields. Per config
 * a few pluginDirs lists at most (the socket dir, the warm-up's none).
 */
const partsByConfig = new WeakMap<PluginConfig, PluginPart[]>();
const MAX_PARTS_PER_CONFIG = 4;

function sameDirs(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function pluginPart(config: PluginConfig, pluginDirs: readonly string[]): PluginPart {
  let parts = partsByConfig.get(config);
  if (parts) {
    for (const p of parts) {
      if (p.stateDir === config.stateDir && p.unveilPaths === config.unveilPaths && p.unveilPathsLength === config.unveilPaths.length
        && p.unveilDefaults === config.unveilDefaults && p.allowCaps === config.allowCaps && sameDirs(p.pluginDirs, pluginDirs)) return p;
    }
  } else {
    parts = [];
    partsByConfig.set(config, parts);
  }
  const part = makePluginPart(config, pluginDirs);
  if (parts.length >= MAX_PARTS_PER_CONFIG) parts.length = 0;
  parts.push(part);
  return part;
}

function makePluginPart(config: PluginConfig, pluginDirs: readonly string[]): PluginPart {
  const hidden = Object.freeze(hiddenDirs(config, pluginDirs));
  const hiddenNorm = Object.freeze(hidden.map(normalisePath));
  let pluginRules: readonly UnveilRule[] = [];
  let pluginError: string | null = null;
  try {
    // Frozen: every task's rule list shares these objects.
    pluginRules = Object.freeze(pluginUnveilRules(config.unveilPaths).map((r) => Object.freeze(r)));
  } catch (err) {
    pluginError = messageOf(err);
  }
  const defaults = config.unveilDefaults ? DEFAULT_RULES : [];
  return {
    stateDir: config.stateDir,
    unveilPaths: config.unveilPaths,
    unveilPathsLength: config.unveilPaths.length,
    unveilDefaults: config.unveilDefaults,
    allowCaps: config.allowCaps,
    pluginDirs: Object.freeze([...pluginDirs]),
    hidden,
    hiddenNorm,
    pluginRules,
    pluginError,
    pluginWithin: hidden.map((d) => firstWithin(pluginRules, d)),
    pluginWritable: hiddenNorm.map((n) => firstWritable(pluginRules, n)),
    defaultsWithin: hidden.map((d) => firstWithin(defaults, d)),
    defaultsWritable: hiddenNorm.map((n) => firstWritable(defaults, n)),
  };
}

/**
 * exposure() of the list plugin rules + `dirRules` + defaults + `rest`, with
 * the plugin and default parts' answers from `part`: the same order of
 * search (every part for a rule within the dir, then every part for a
 * writable rule above it), so the same verdict naming the same rule.
 */
function taskExposure(part: PluginPart, dirRules: readonly UnveilRule[], rest: readonly UnveilRule[]): string | null {
  for (let k = 0; k < part.hidden.length; k++) {
    const dir = part.hidden[k]!;
    const n = part.hiddenNorm[k]!;
    const exposing = part.pluginWithin[k] ?? firstWithin(dirRules, dir) ?? part.defaultsWithin[k] ?? firstWithin(rest, dir)
      ?? part.pluginWritable[k] ?? firstWritable(dirRules, n) ?? part.defaultsWritable[k] ?? firstWritable(rest, n);
    if (exposing) return exposureMessage(dir, exposing);
  }
  return null;
}

/** What the sandbox needs from the host besides the task's config. */
export interface SandboxHost {
  /** the task's own cgroup(s): readable by the task (memory.max, cpu.max, ...) */
  cgroup?: TaskCgroup | null;
  /** the node's CPU topology from SetConfig: sizes GOMAXPROCS from `cpu` */
  compute?: Compute | null;
}

/**
 * Read-only rules for the task's own cgroup directories, so runtimes (JVM,
 * Go, Node) can size heaps and threads from memory.max / cpu.max (v1:
 * memory.limit_in_bytes, cpu.cfs_quota_us) instead of the whole host.
 * Only the task's own directories: never a parent, and not v1's shared
 * cpuset `…/share`, whose cgroup.procs lists other allocations' processes.
 * cgroupfs is root-owned and not writable by a task, so these are host
 * paths (no anchor). Optional: a v1 controller dir the host lacks is simply
 * not there to read.
 */
export function cgroupReadRules(cg: TaskCgroup | null | undefined): UnveilRule[] {
  if (!cg) return [];
  // path.normalize only where needed: the v1 dirs are path.join results and
  // v2's is Nomad's path normalised already, so nearly always a no-op.
  return taskOnlyDirs(cg).map((dir) => ({ path: isNormalAbsolute(dir) ? dir : path.normalize(dir), mode: 'r', optional: true }));
}

/**
 * The working directory: the task directory by default; `work_dir` either
 * absolute or relative to the task directory. Checked again here (not only
 * when the config block was decoded): the block may come back from a task
 * handle, which Nomad stores and hands back.
 */
export function resolveWorkDir(workDir: string | null, taskRoot: string): string {
  if (workDir === null) return taskRoot;
  const w = parseWorkDir(workDir, 'task config');
  return path.isAbsolute(w) ? w : path.join(taskRoot, w);
}

/**
 * `pluginDirs`: the plugin's own directories (its socket dir; state_dir is
 * added here), which no task may reach: hidden in every task's mount
 * namespace, and no unveil rule may name them or let a task write there.
 */
export function taskSandbox(cfg: TaskConfig, block: SandboxBlock, config: PluginConfig, pluginDirs: readonly string[] = [], host: SandboxHost = {}): TaskSandbox {
  if (block.unveil.length > 0 && !config.unveilByTask) {
    throw failedPrecondition('task config "unveil" is not allowed: the plugin config has unveil_by_task = false');
  }
  const part = pluginPart(config, pluginDirs);
  const env = cfg.env;
  const taskDir = env.NOMAD_TASK_DIR || path.join(cfg.allocDir, cfg.name, 'local');
  const allocDir = env.NOMAD_ALLOC_DIR || path.join(cfg.allocDir, 'alloc');
  const secretsDir = env.NOMAD_SECRETS_DIR || path.join(cfg.allocDir, cfg.name, 'secrets');
  if (!path.isAbsolute(taskDir)) throw invalidArgument(`task directory "${taskDir}" is not an absolute path`);
  const taskRoot = path.dirname(taskDir);
  // What the task, or another task of its allocation, can modify lives below
  // these: Nomad's allocation dir and the task's own view of its dirs.
  const untrustedRoots = outermost([taskRoot, path.dirname(allocDir), path.dirname(secretsDir), ...(cfg.allocDir ? [path.normalize(cfg.allocDir)] : [])]);

  // The list buildUnveilRules makes, from its parts: the plugin's (parsed
  // once per config), the task's dirs, the default sets (parsed once), the
  // task's own entries and FIFOs. Parse errors come in the same order.
  if (part.pluginError !== null) throw invalidArgument(part.pluginError);
  let dirRules: UnveilRule[] = [];
  const rest: UnveilRule[] = [];
  try {
    if (config.unveilDefaults) dirRules = taskDirRules({ taskDir, allocDir, secretsDir, stdoutPath: cfg.stdoutPath, stderrPath: cfg.stderrPath });
    pushTaskPathRules(rest, block.unveil, { stdoutPath: cfg.stdoutPath, stderrPath: cfg.stderrPath });
  } catch (err) {
    throw invalidArgument(messageOf(err));
  }
  const vols = planVolumes(cfg.mounts ?? [], taskRoot);
  for (const r of vols.rules) rest.push(r);
  for (const r of cgroupReadRules(host.cgroup)) rest.push(r);
  const exposed = taskExposure(part, dirRules, rest);
  if (exposed) throw failedPrecondition(exposed);
  const rules: UnveilRule[] = [...part.pluginRules, ...dirRules, ...(config.unveilDefaults ? DEFAULT_RULES : []), ...rest];
  const cwd = resolveWorkDir(block.workDir, taskRoot);
  if (block.workDir !== null && !isUnveiled(cwd, rules)) {
    throw invalidArgument(`task config: attribute "work_dir": ${cwd} is not inside an unveiled path`);
  }
  let plan;
  try {
    plan = planUnveil(rules, untrustedRoots);
  } catch (err) {
    if (err instanceof UnveilSyntaxError) throw invalidArgument(err.message);
    throw err;
  }

  let tmp: TaskSandbox['tmp'] = null;
  if (config.privateTmp) {
    // Only what the task itself needs at its path (its dirs, its log FIFOs'
    // dir): the task's /tmp grant covers whatever is kept below /tmp.
    const near = [taskRoot];
    for (const p of [cfg.stdoutPath, cfg.stderrPath]) if (p && p !== '/dev/null') near.push(path.dirname(p));
    const keep: string[] = [];
    for (const d of outermost(near)) if (isWithin(d, '/tmp')) keep.push(d);
    if (keep.includes('/tmp') || keep.length > MAX_KEEP) {
      throw failedPrecondition(`the task's directories (${keep.join(', ')}) cannot stay reachable over a private /tmp; set the plugin option private_tmp = false or move Nomad's data_dir out of /tmp`);
    }
    tmp = { root: taskRoot, keep };
  }

  const taskEnv = copyEnv(env);
  // taskRoot is a dirname: normalised unless NOMAD_TASK_DIR was not; only then does path.join have work to do.
  taskEnv.TMPDIR = isNormalAbsolute(taskRoot) ? (taskRoot === '/' ? '/tmp' : `${taskRoot}/tmp`) : path.join(taskRoot, 'tmp');
  // The job's own env wins (it reaches us in cfg.env), like upstream.
  if (!('GOMAXPROCS' in taskEnv)) {
    const res = cfg.resources;
    const procs = gomaxprocs(res?.linuxResources?.cpusetCpus ?? '', res?.allocatedResources?.cpu?.cpuShares || res?.linuxResources?.cpuShares || 0, host.compute?.mhzPerCore ?? null);
    if (procs !== null) taskEnv.GOMAXPROCS = String(procs);
  }

  let netnsPath: string | null = null;
  const net = cfg.networkIsolationSpec;
  if (net && net.mode !== NetMode.HOST) {
    if (net.mode === NetMode.TASK) throw failedPrecondition('network isolation mode TASK is not supported by exec2');
    if (!net.path) throw failedPrecondition(`network isolation mode ${NetMode[net.mode]} needs a namespace path`);
    netnsPath = net.path;
  }
  const caps = capabilityChoice(block, config);
  return { unveil: plan.rules, cwdBeneath: plan.beneath(cwd), tmp, masks: [...part.hidden], untrustedRoots, volumes: vols.volumes, env: taskEnv, cwd, taskRoot, netnsPath, oomScoreAdj: block.oomScoreAdj, caps, scopeAbstractUnixSockets: config.scopeAbstractUnixSockets };
}
