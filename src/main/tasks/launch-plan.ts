/**
 * StartTask's decisions, as pure functions: the worker's launch request from
 * the TaskConfig and the plugin's config and state, and the driver_state a
 * successful launch records. No I/O and no clock (the caller passes the
 * receive time in), so every branch is a unit test.
 */
import type { TaskConfig } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import type { LaunchRequest, LaunchSuccess } from '../../shared/messages';
import { CgroupError, resolveTaskCgroup, type Limits, type TaskCgroup } from '../../shared/cgroups/task-cgroup';
import type { CgroupLayout } from '../../shared/cgroups/detect';
import { failedPrecondition } from '../../shared/errors';
import { cpuQuotaUs, type Compute } from '../../shared/topology';
import { parseTaskConfig, type PluginConfig } from '../config/config';
import { checkUserString, dynamicUser } from '../users';
import type { DriverStateV1 } from './driver-state';
import { memoryLimits } from './resources';
import { taskSandbox, type SandboxBlock } from './sandbox';
import { statusDirFor } from './status-dir';

/** What the plan depends on besides the task's own config. */
export interface LaunchPlanInputs {
  config: PluginConfig;
  /** the node's CPU topology from SetConfig (null: not sent yet) */
  compute: Compute | null;
  /** the plugin's own directories besides state_dir (its socket dir), which tasks must never reach */
  pluginDirs: readonly string[];
  layout: CgroupLayout;
  initPath: string;
  /** CLOCK_MONOTONIC ns when StartTask arrived (process.hrtime.bigint()) */
  receivedNs: bigint;
}

export interface LaunchPlan {
  req: LaunchRequest;
  /** host path of the task directory */
  taskDir: string;
  /** the config {} parts kept in driver_state for exec sessions after a restart */
  block: SandboxBlock;
  /** the task asks for CPU but Nomad sent no topology: its bandwidth cannot be limited (worth a warning) */
  cpuUnlimited: boolean;
}

/** The plugin's directories besides state_dir: its socket dir once known. */
export function pluginDirsOf(socketDir: string | null): string[] {
  return socketDir ? [socketDir] : [];
}

/**
 * The task's pids.max: its own pids_max, which may not exceed the plugin's
 * (a job author must not lift the operator's bound), else the plugin's.
 * 0 = no limit (only when the operator set pids_max = 0).
 */
export function pidsLimit(task: number | null, plugin: number): number {
  if (task === null) return plugin;
  if (plugin > 0 && task > plugin) throw failedPrecondition(`task config: attribute "pids_max": ${task} is above this client's limit of ${plugin} (the plugin option pids_max)`, false);
  return task;
}

/** The task's cgroup from Nomad's cpuset path; a path Nomad could not have meant is FAILED_PRECONDITION. */
function taskCgroupOf(cfg: TaskConfig, layout: CgroupLayout): TaskCgroup {
  try {
    return resolveTaskCgroup(layout, cfg.resources?.linuxResources?.cpusetCgroup ?? '', cfg.allocId, cfg.name);
  } catch (err) {
    if (err instanceof CgroupError) throw failedPrecondition(err.message);
    throw err;
  }
}

/**
 * The launch request for `cfg`. Throws the DriverError StartTask answers
 * with; the checks run in this order (the first failing one is reported):
 * config block, cgroup, sandbox (unveil, dirs, network), user, pids_max,
 * dynamic user range.
 */
export function launchPlan(cfg: TaskConfig, inputs: LaunchPlanInputs): LaunchPlan {
  const { config, compute } = inputs;
  const block = parseTaskConfig(cfg.msgpackDriverConfig);
  const lin = cfg.resources?.linuxResources;
  const alloc = cfg.resources?.allocatedResources;
  const cgroup = taskCgroupOf(cfg, inputs.layout);
  const sandbox = taskSandbox(cfg, block, config, inputs.pluginDirs, { cgroup, compute });
  checkUserString(cfg.user);

  const cpuMhz = alloc?.cpu?.cpuShares || lin?.cpuShares || 0;
  const limits: Limits = {
    cpuQuotaUs: compute ? cpuQuotaUs(cpuMhz, compute.mhzPerCore) : 0,
    cpuShares: cpuMhz,
    cpusetCpus: lin?.cpusetCpus ?? '',
    ...memoryLimits(alloc?.memory?.memoryMb ?? 0, alloc?.memory?.memoryMaxMb ?? 0),
    pidsMax: pidsLimit(block.pidsMax, config.pidsMax),
  };

  const dyn = dynamicUser(cfg.user, { min: config.dynamicUserMin, max: config.dynamicUserMax });
  const req: LaunchRequest = {
    kind: 'launch',
    taskId: cfg.id,
    user: { name: cfg.user, resolved: dyn ? { uid: dyn.uid, gid: dyn.gid, groups: dyn.groups, home: dyn.home } : null },
    dynamicUser: dyn !== null,
    cgroup,
    limits,
    stdoutPath: cfg.stdoutPath || '/dev/null',
    stderrPath: cfg.stderrPath || '/dev/null',
    chownFifos: true,
    statusDir: statusDirFor(config.stateDir, cfg.id),
    netnsPath: sandbox.netnsPath,
    tmp: sandbox.tmp,
    masks: sandbox.masks,
    untrustedRoots: sandbox.untrustedRoots,
    volumes: sandbox.volumes,
    taskRoot: sandbox.taskRoot,
    argv: [block.command, ...block.args],
    env: sandbox.env,
    cwd: sandbox.cwd,
    cwdBeneath: sandbox.cwdBeneath,
    unveil: sandbox.unveil,
    oomScoreAdj: sandbox.oomScoreAdj,
    initPath: inputs.initPath,
    caps: sandbox.caps,
    scopeAbstractUnixSockets: sandbox.scopeAbstractUnixSockets,
    receivedNs: inputs.receivedNs.toString(),
  };
  return {
    req,
    taskDir: sandbox.taskRoot,
    block: { unveil: block.unveil, workDir: block.workDir, oomScoreAdj: block.oomScoreAdj, capAdd: block.capAdd, capDrop: block.capDrop },
    cpuUnlimited: !compute && cpuMhz > 0,
  };
}

/**
 * The driver_state of a task the worker launched: everything a new plugin
 * process needs to adopt it. Its capabilities are the set for the uid the
 * worker resolved (root or not).
 */
export function launchedState(plan: LaunchPlan, reply: LaunchSuccess, startedAt: Date): DriverStateV1 {
  const { req } = plan;
  return {
    format: 'nomad-driver-exec2-ts',
    v: 1,
    pid: reply.pid,
    pidStartTime: reply.pidStartTime ?? '0',
    statusDir: req.statusDir,
    cgroup: reply.cgroup,
    user: { name: req.user.name, uid: reply.uid, gid: reply.gid },
    taskDir: plan.taskDir,
    startedAt: startedAt.toISOString(),
    oomKillsBefore: reply.oomKillsBefore,
    sandbox: plan.block,
    caps: reply.uid === 0 ? req.caps.root : req.caps.user,
    scopeAbstractUnixSockets: req.scopeAbstractUnixSockets,
  };
}
