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
import type { Compute } from '../shared/topology';
import { encodeObject } from './config/cty';
import { TASK_CONFIG_SCHEMA, type PluginConfig } from './config/config';
import { launchPlan } from './tasks/launch-plan';

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

/**
 * Runs the launch plan (tasks/launch-plan.ts, the very function StartTask
 * uses) once on a synthetic task; returns whether it planned. Given the
 * plugin's dirs StartTask will pass (pluginDirsOf(socketDir)), this also
 * fills the planner's per-config part (hidden dirs, parsed unveil_paths and
 * their verdict) the first real launch then finds ready.
 */
export function warmPlanner(config: PluginConfig, compute: Compute | null, layout: CgroupLayout, initPath: string, pluginDirs: readonly string[] = []): boolean {
  try {
    const cfg = syntheticTask(encodeObject({ command: '/bin/true', args: ['warm'] }, TASK_CONFIG_SCHEMA), cpusetCgroupFor(layout));
    launchPlan(cfg, { config, compute, pluginDirs, layout, initPath, receivedNs: 0n });
    return true;
  } catch {
    return false;
  }
}
