/**
 * The sandbox plan as it was before the plan was made cheaper (commit
 * 68afbc6, src/main/tasks/sandbox.ts), on the unveil code of that commit
 * (./unveil-v0): the oracle of test/unit/plan-cache.test.ts. Not used by the
 * driver.
 */
import * as path from 'node:path';
import type { TaskConfig } from '../../../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { NetworkIsolationSpec_NetworkIsolationMode as NetMode } from '../../../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { parseWorkDir, type PluginConfig, type TaskConfigBlock } from '../../../src/main/config/config';
import { failedPrecondition, invalidArgument, messageOf } from '../../../src/shared/errors';
import { planVolumes, type Volume } from '../../../src/main/tasks/volumes';
import { taskOnlyDirs, type TaskCgroup } from '../../../src/shared/cgroups/task-cgroup';
import type { Compute } from '../../../src/shared/topology';
import { gomaxprocs } from '../../../src/main/tasks/resources';
import { buildUnveilRules, isUnveiled, isWithin, planUnveil, writableRuleFor, UnveilSyntaxError, type PlannedRule, type UnveilRule } from './unveil-v0';
import { taskCapabilities } from '../../../src/shared/capabilities';
import type { CapabilityChoice } from '../../../src/shared/messages';

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
  const input = { allow: config.allowCaps, add: block.capAdd, drop: block.capDrop };
  return { root: taskCapabilities({ ...input, root: true }), user: taskCapabilities({ ...input, root: false }) };
}

/** The tmp dir mounted over /tmp may keep this many directories below /tmp reachable (native/protocol.h). */
const MAX_KEEP = 2;

/** Directories in `dirs` not below another one of them. */
const outermost = (dirs: readonly string[]): string[] =>
  [...new Set(dirs)].filter((d, _i, all) => !all.some((o) => o !== d && isWithin(d, o)));

/** The plugin's directories every task's mount namespace hides: its socket dir(s) and state_dir. */
export const hiddenDirs = (config: PluginConfig, pluginDirs: readonly string[]): string[] => outermost([...pluginDirs, config.stateDir]);

/**
 * Why `rules` would expose one of the plugin's directories, or null. The
 * exit status and the plugin's socket are trustworthy only while no task can
 * write there, and a rule naming them (or a path inside) means to show them.
 * Read-only rules above them (r:/) are fine: the mount namespace hides them.
 */
export function exposure(rules: readonly UnveilRule[], hidden: readonly string[]): string | null {
  for (const dir of hidden) {
    const exposing = rules.find((r) => isWithin(r.path, dir)) ?? writableRuleFor(dir, rules);
    if (exposing) {
      return `the plugin's directory ${dir} (its socket or state_dir) would be exposed by the unveiled path "${exposing.mode}:${exposing.path}"; tasks could reach the plugin or forge their exit status. Drop that unveil entry or move state_dir (default /run/nomad-driver-exec2)`;
    }
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
  return taskOnlyDirs(cg).map((dir) => ({ path: path.normalize(dir), mode: 'r', optional: true }));
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
  const env = cfg.env;
  const taskDir = env.NOMAD_TASK_DIR || path.join(cfg.allocDir, cfg.name, 'local');
  const allocDir = env.NOMAD_ALLOC_DIR || path.join(cfg.allocDir, 'alloc');
  const secretsDir = env.NOMAD_SECRETS_DIR || path.join(cfg.allocDir, cfg.name, 'secrets');
  if (!path.isAbsolute(taskDir)) throw invalidArgument(`task directory "${taskDir}" is not an absolute path`);
  const taskRoot = path.dirname(taskDir);
  // What the task, or another task of its allocation, can modify lives below
  // these: Nomad's allocation dir and the task's own view of its dirs.
  const untrustedRoots = outermost([taskRoot, path.dirname(allocDir), path.dirname(secretsDir), ...(cfg.allocDir ? [path.normalize(cfg.allocDir)] : [])]);

  let rules: UnveilRule[];
  try {
    rules = buildUnveilRules({
      unveilDefaults: config.unveilDefaults,
      pluginPaths: config.unveilPaths,
      taskPaths: block.unveil,
      dirs: { taskDir, allocDir, secretsDir, stdoutPath: cfg.stdoutPath, stderrPath: cfg.stderrPath },
    });
  } catch (err) {
    throw invalidArgument(messageOf(err));
  }
  const vols = planVolumes(cfg.mounts ?? [], taskRoot);
  rules.push(...vols.rules);
  rules.push(...cgroupReadRules(host.cgroup));
  const hidden = hiddenDirs(config, pluginDirs);
  const exposed = exposure(rules, hidden);
  if (exposed) throw failedPrecondition(exposed);
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
    const fifoDirs = [cfg.stdoutPath, cfg.stderrPath].filter((p) => p && p !== '/dev/null').map((p) => path.dirname(p));
    const keep = outermost([taskRoot, ...fifoDirs]).filter((d) => isWithin(d, '/tmp'));
    if (keep.includes('/tmp') || keep.length > MAX_KEEP) {
      throw failedPrecondition(`the task's directories (${keep.join(', ')}) cannot stay reachable over a private /tmp; set the plugin option private_tmp = false or move Nomad's data_dir out of /tmp`);
    }
    tmp = { root: taskRoot, keep };
  }

  const taskEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('LD_') && !DROPPED_ENV.has(k)) taskEnv[k] = v;
  taskEnv.TMPDIR = path.join(taskRoot, 'tmp');
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
  return { unveil: plan.rules, cwdBeneath: plan.beneath(cwd), tmp, masks: hidden, untrustedRoots, volumes: vols.volumes, env: taskEnv, cwd, taskRoot, netnsPath, oomScoreAdj: block.oomScoreAdj, caps, scopeAbstractUnixSockets: config.scopeAbstractUnixSockets };
}
