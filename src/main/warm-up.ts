/**
 * A dry run of the main thread's launch planning when the long-lived
 * instance is configured: the first StartTask of a fresh plugin otherwise
 * pays V8's lazy compilation and cold inline caches of every planning
 * function (task config decode, sandbox and unveil plan, cgroup paths, the
 * status dir's hash) while Nomad waits. Pure: no task, no file, nothing on
 * the host; a failure here is ignored (the real launch reports its own).
 */
import type { TaskConfig } from '../gen/hashicorp/nomad/plugins/drivers/driver';
import type { CgroupLayout } from '../shared/cgroups/detect';
import { resolveTaskCgroup, type TaskCgroup } from '../shared/cgroups/task-cgroup';
import { cpuQuotaUs, type Compute } from '../shared/topology';
import { encodeObject } from './config/cty';
import { parseTaskConfig, TASK_CONFIG_SCHEMA, type PluginConfig } from './config/config';
import { memoryLimits } from './tasks/resources';
import { taskSandbox } from './tasks/sandbox';
import { statusDirFor } from './tasks/status-dir';
import { checkUserString, dynamicUser } from './users';

/** A task the planner is run on: an allocation below a directory that is never created. */
function syntheticTask(block: Uint8Array, cpusetCgroup: string): TaskConfig {
  const allocDir = '/nonexistent/exec2-warm-up/alloc/00000000-0000-0000-0000-000000000000';
  const taskRoot = `${allocDir}/warm`;
  return {
    id: '00000000-0000-0000-0000-000000000000/warm/00000000',
    name: 'warm',
    msgpackDriverConfig: Buffer.from(block),
    env: { NOMAD_TASK_DIR: `${taskRoot}/local`, NOMAD_ALLOC_DIR: `${allocDir}/alloc`, NOMAD_SECRETS_DIR: `${taskRoot}/secrets`, PATH: '/usr/bin:/bin' },
    deviceEnv: {},
    resources: {
      allocatedResources: { cpu: { cpuShares: 100 }, memory: { memoryMb: 64, memoryMaxMb: 0 }, networks: [] },
      linuxResources: { cpuPeriod: 0, cpuQuota: 0, cpuShares: 100, memoryLimitBytes: 64 * 2 ** 20, oomScoreAdj: 0, cpusetCpus: '', PercentTicks: 0, cpusetCgroup },
      ports: [],
    },
    mounts: [],
    devices: [],
    user: 'nomad-80000',
    allocDir,
    stdoutPath: `${allocDir}/alloc/logs/.warm.stdout.fifo`,
    stderrPath: `${allocDir}/alloc/logs/.warm.stderr.fifo`,
    taskGroupName: 'warm',
    jobName: 'warm',
    allocId: '00000000-0000-0000-0000-000000000000',
    networkIsolationSpec: undefined,
    dns: undefined,
    jobId: 'warm',
    namespace: 'default',
    nodeName: '',
    nodeId: '',
    parentJobId: '',
  };
}

/** Where Nomad would put a task's cgroup on this layout (only its shape matters here). */
function cpusetCgroupFor(layout: CgroupLayout): string {
  if (layout.mode === 'v2') return `${layout.root}/nomad.slice/share.slice/warm.scope`;
  return `${layout.v1.get('cpuset') ?? '/sys/fs/cgroup/cpuset'}/nomad/share`;
}

/** Runs the planning steps of a launch once, on a synthetic task; returns whether they all ran. */
export function warmPlanner(config: PluginConfig, compute: Compute | null, layout: CgroupLayout): boolean {
  try {
    const block = parseTaskConfig(encodeObject({ command: '/bin/true', args: ['warm'] }, TASK_CONFIG_SCHEMA));
    const cfg = syntheticTask(encodeObject({ command: '/bin/true', args: ['warm'] }, TASK_CONFIG_SCHEMA), cpusetCgroupFor(layout));
    let cgroup: TaskCgroup | null = null;
    try {
      cgroup = resolveTaskCgroup(layout, cfg.resources!.linuxResources!.cpusetCgroup, cfg.allocId, cfg.name);
    } catch {
      // no usable cgroup layout: the sandbox plan runs without one
    }
    taskSandbox(cfg, block, config, [], { cgroup, compute });
    checkUserString(cfg.user);
    dynamicUser(cfg.user, { min: config.dynamicUserMin, max: config.dynamicUserMax });
    memoryLimits(64, 0);
    cpuQuotaUs(100, compute?.mhzPerCore ?? 1000);
    statusDirFor(config.stateDir, cfg.id);
    return true;
  } catch {
    return false;
  }
}
