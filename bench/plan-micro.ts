/**
 * node dist/bench/plan-micro.js [hot=2000] [cold=200]
 *
 * The main thread's launch plan (src/main/tasks/launch-plan.ts launchPlan,
 * the first phase of every StartTask) in-process, on a TaskConfig shaped
 * like the ones Nomad sends: decoded from protobuf bytes for every call
 * (fresh objects, as grpc-js hands them over), ~40 env vars with the
 * NOMAD_* dirs, a v1 cpuset `share` cgroup, log FIFOs, and the bench
 * plugin's unveil_paths, under a plugin config decoded the way SetConfig
 * decodes it. Prints p50/p90 µs of
 *   hot:  back-to-back calls (what a micro-benchmark usually shows), and
 *   cold: each call after a 2 ms sleep and after touching ~8 MB of other
 *         memory, which evicts the CPU caches the way the plugin's other
 *         work between two StartTasks does.
 * Nothing touches the host: the plan is pure.
 */
import { randomUUID } from 'node:crypto';
import { TaskConfig } from '../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { encodeObject } from '../src/main/config/cty';
import { PLUGIN_CONFIG_SCHEMA, TASK_CONFIG_SCHEMA, parsePluginConfig, type PluginConfig } from '../src/main/config/config';
import { layoutFromMounts } from '../src/shared/cgroups/detect';
import { launchPlan, pluginDirsOf } from '../src/main/tasks/launch-plan';
import { DEFAULT_SOCKET_DIR } from '../src/main/rpc/go-plugin';
import { nomadTaskEnv } from './fixtures';
import { BENCH_BUILD } from './tools';

const HOT = Number(process.argv[2] ?? 2000);
const COLD = Number(process.argv[3] ?? 200);

/** The plugin's socket dir as root (src/main/rpc/go-plugin.ts DEFAULT_SOCKET_DIR). */
const SOCKET_DIR = DEFAULT_SOCKET_DIR;

/** This host's kind of layout: hybrid, v1 controllers each on its own mount. */
const layout = layoutFromMounts([
  ...['cpuset', 'cpu,cpuacct', 'memory', 'pids', 'freezer', 'blkio', 'devices'].map((c) => ({
    mountPoint: `/sys/fs/cgroup/${c}`, fsType: 'cgroup', controllers: c.split(','), favorDynmods: false,
  })),
  { mountPoint: '/sys/fs/cgroup/unified', fsType: 'cgroup2', controllers: [], favorDynmods: false },
]);

function pluginConfig(): PluginConfig {
  return parsePluginConfig(encodeObject({
    unveil_defaults: null, unveil_by_task: null, unveil_paths: [`rx:${BENCH_BUILD}`], state_dir: null,
    metrics_address: '127.0.0.1:9464', metrics_per_task: null, private_tmp: null, allow_caps: null,
    dynamic_user_min: null, dynamic_user_max: null, pids_max: null, scope_abstract_unix_sockets: null,
  }, PLUGIN_CONFIG_SCHEMA));
}

/** One allocation's task as Nomad describes it (bench/fixtures.ts's shape, with a real agent's env size). */
function taskBytes(): Uint8Array {
  const allocId = randomUUID();
  const name = 'web';
  const allocDir = `/var/lib/nomad/alloc/${allocId}`;
  const taskRoot = `${allocDir}/${name}`;
  const env: Record<string, string> = {
    ...nomadTaskEnv({ allocId, name, index: 0, sharedDir: `${allocDir}/alloc`, taskDir: `${taskRoot}/local`, secretsDir: `${taskRoot}/secrets`, memoryMb: 300, cpuMhz: 2500, parentCgroup: 'nomad.slice' }),
    // what a real agent adds to the bench slots' variables: ~40 in all
    NOMAD_MEMORY_MAX_LIMIT: '300',
    NOMAD_NODE_ID: randomUUID(),
    NOMAD_NODE_NAME: 'client-1',
    NOMAD_NODE_CLASS: '',
    NOMAD_NODE_POOL: 'default',
    NOMAD_IP_http: '10.0.0.12',
    NOMAD_PORT_http: '24510',
    NOMAD_ADDR_http: '10.0.0.12:24510',
    NOMAD_HOST_IP_http: '10.0.0.12',
    NOMAD_HOST_PORT_http: '24510',
    NOMAD_HOST_ADDR_http: '10.0.0.12:24510',
    NOMAD_ALLOC_PORT_http: '24510',
    NOMAD_ALLOC_IP_http: '10.0.0.12',
    NOMAD_ALLOC_ADDR_http: '10.0.0.12:24510',
    NOMAD_META_owner: 'batch-team',
    NOMAD_META_tier: 'backend',
    NOMAD_UNIX_ADDR: `${taskRoot}/secrets/api.sock`,
    NOMAD_TOKEN: 'b7c9a2e1-0000-4000-8000-000000000000',
    VERSION: '1.4.2',
  };
  const cfg: TaskConfig = {
    id: '',
    name,
    msgpackDriverConfig: Buffer.from(encodeObject({
      command: '/usr/bin/python3', args: ['-m', 'worker', '--queue', 'batch'], unveil: null, oom_score_adj: null,
      work_dir: null, cap_add: null, cap_drop: null, pids_max: null,
    }, TASK_CONFIG_SCHEMA)),
    env,
    deviceEnv: {},
    resources: {
      allocatedResources: { cpu: { cpuShares: 2500 }, memory: { memoryMb: 300, memoryMaxMb: 0 }, networks: [] },
      linuxResources: {
        cpuPeriod: 0, cpuQuota: 0, cpuShares: 2500, memoryLimitBytes: 300 * 2 ** 20,
        oomScoreAdj: 0, cpusetCpus: '', PercentTicks: 0, cpusetCgroup: '/sys/fs/cgroup/cpuset/nomad/share',
      },
      ports: [],
    },
    mounts: [],
    devices: [],
    user: 'nomad-81000',
    allocDir,
    stdoutPath: `${allocDir}/alloc/logs/.${name}.stdout.fifo`,
    stderrPath: `${allocDir}/alloc/logs/.${name}.stderr.fifo`,
    taskGroupName: 'group',
    jobName: 'bench',
    allocId,
    networkIsolationSpec: undefined,
    dns: undefined,
    jobId: 'bench',
    namespace: 'default',
    nodeName: 'client-1',
    nodeId: '',
    parentJobId: '',
  };
  return TaskConfig.encode(cfg).finish();
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleepMs = (ms: number): void => void Atomics.wait(sleeper, 0, 0, ms);
/** Other memory the plugin's work between two launches walks through. */
const other = new Uint8Array(8 * 2 ** 20);
let sink = 0;
function touchOther(): void {
  for (let i = 0; i < other.length; i += 64) {
    other[i] = (other[i]! + 1) & 0xff;
    sink ^= other[i]!;
  }
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function run(label: string, n: number, between: (() => void) | null): number {
  const config = pluginConfig();
  const bytes = taskBytes();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    // A fresh TaskConfig per StartTask, as grpc-js decodes it, with its own id.
    const cfg = TaskConfig.decode(bytes);
    cfg.id = `${cfg.allocId}/${cfg.name}/${(i * 2654435761 >>> 0).toString(16).padStart(8, '0')}`;
    if (between) between();
    const t0 = process.hrtime.bigint();
    launchPlan(cfg, { config, compute: { totalMhz: 5000, cores: 2, mhzPerCore: 2500, usableMhz: 5000 }, pluginDirs: pluginDirsOf(SOCKET_DIR), layout, initPath: '/usr/libexec/exec2-init', receivedNs: t0 });
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  const p50 = quantile(samples, 0.5);
  process.stdout.write(`${label.padEnd(44)} p50 ${p50.toFixed(1).padStart(7)} µs  p90 ${quantile(samples, 0.9).toFixed(1).padStart(7)} µs  (n=${n})\n`);
  return p50;
}

function main(): void {
  // Cold first: the very first calls of this process are what a plugin's
  // first launches look like; then the steady state.
  run('cold (2 ms sleep + 8 MB touched before each)', COLD, () => {
    sleepMs(2);
    touchOther();
  });
  run('hot (back-to-back)', HOT, null);
  run('cold again (after the hot loop: optimised code)', COLD, () => {
    sleepMs(2);
    touchOther();
  });
  if (sink === -1) process.stdout.write('\n');
}

main();
