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
import type { PluginConfig, TaskConfigBlock } from '../config';
import { failedPrecondition, invalidArgument } from '../errors';
import { buildUnveilRules, isUnveiled, writableRuleFor, type UnveilRule } from '../unveil';
import { taskCapabilities } from '../capabilities';
import type { CapabilityChoice } from '../../workers/messages';

/** Environment variables exec2 removes besides LD_* (display and mail leftovers). */
const DROPPED_ENV = new Set(['LS_COLORS', 'XAUTHORITY', 'DISPLAY', 'COLORTERM', 'MAIL']);

/** The parts of the `config {}` block that shape the sandbox (kept in driver_state: Nomad does not persist the block). */
export type SandboxBlock = Pick<TaskConfigBlock, 'unveil' | 'workDir' | 'oomScoreAdj' | 'capAdd' | 'capDrop'>;

export interface TaskSandbox {
  unveil: UnveilRule[];
  /** the task environment without USER and HOME, which depend on the resolved user */
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

export function taskSandbox(cfg: TaskConfig, block: SandboxBlock, config: PluginConfig): TaskSandbox {
  if (block.unveil.length > 0 && !config.unveilByTask) {
    throw failedPrecondition('task config "unveil" is not allowed: the plugin config has unveil_by_task = false');
  }
  const env = cfg.env;
  const taskDir = env.NOMAD_TASK_DIR || path.join(cfg.allocDir, cfg.name, 'local');
  const allocDir = env.NOMAD_ALLOC_DIR || path.join(cfg.allocDir, 'alloc');
  const secretsDir = env.NOMAD_SECRETS_DIR || path.join(cfg.allocDir, cfg.name, 'secrets');
  if (!path.isAbsolute(taskDir)) throw invalidArgument(`task directory "${taskDir}" is not an absolute path`);
  const taskRoot = path.dirname(taskDir);

  let unveil;
  try {
    unveil = buildUnveilRules({
      unveilDefaults: config.unveilDefaults,
      pluginPaths: config.unveilPaths,
      taskPaths: block.unveil,
      dirs: { taskDir, allocDir, secretsDir, stdoutPath: cfg.stdoutPath, stderrPath: cfg.stderrPath },
    });
  } catch (err) {
    throw invalidArgument((err as Error).message);
  }
  // The exit status is trustworthy only while no task can write where pid 1 records it.
  const exposing = writableRuleFor(config.stateDir, unveil);
  if (exposing) {
    throw failedPrecondition(`plugin state_dir ${config.stateDir} lies inside the unveiled path "${exposing.mode}:${exposing.path}"; tasks could forge their exit status. Move state_dir (default /run/nomad-driver-exec2) or drop that unveil entry`);
  }
  const cwd = block.workDir ?? taskRoot;
  if (block.workDir && !isUnveiled(block.workDir, unveil)) {
    throw invalidArgument(`task config: attribute "work_dir": ${block.workDir} is not inside an unveiled path`);
  }

  const taskEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('LD_') && !DROPPED_ENV.has(k)) taskEnv[k] = v;
  taskEnv.TMPDIR = path.join(taskRoot, 'tmp');

  let netnsPath: string | null = null;
  const net = cfg.networkIsolationSpec;
  if (net && net.mode !== NetMode.HOST) {
    if (net.mode === NetMode.TASK) throw failedPrecondition('network isolation mode TASK is not supported by exec2');
    if (!net.path) throw failedPrecondition(`network isolation mode ${NetMode[net.mode]} needs a namespace path`);
    netnsPath = net.path;
  }
  const caps = capabilityChoice(block, config);
  return { unveil, env: taskEnv, cwd, taskRoot, netnsPath, oomScoreAdj: block.oomScoreAdj, caps, scopeAbstractUnixSockets: config.scopeAbstractUnixSockets };
}
