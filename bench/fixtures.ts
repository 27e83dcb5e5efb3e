/**
 * Nomad-side fixtures for the benchmark, made BEFORE anything is timed, as
 * Nomad's prestart hooks run before StartTask. A "slot" is one allocation's
 * task as Nomad keeps it across restarts: alloc and task directories, the two
 * log FIFOs with a reader (logmon), a real task cgroup (cpu/memory/freezer,
 * cpuset share) made by the Nomad-like client's cgroup fixture, and a base
 * TaskConfig. Every launch from a slot gets a fresh TaskConfig id; the slot's
 * directories, FIFOs and cgroup are reused like Nomad reuses them when it
 * restarts a task.
 *
 * Lighter than NomadLikeClient.prepareTask in one way: no bind-mounted
 * "task view" per task (two mount(8) forks per task); the driver reads
 * NOMAD_TASK_DIR etc. from the env and never looks at how the paths were
 * made, so its work per launch is the same.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TaskConfig } from '../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { encodeTaskConfig, MHZ_PER_CORE, type NomadLikeClient } from '../src/client/nomad-client';
import type { TaskCgroupPaths } from '../src/client/cgroups';
import { FifoReader } from '../src/client/log-reader';

export interface Slot {
  allocId: string;
  name: string;
  allocDir: string;
  /** <alloc>/<task>: the driver's cwd and TMPDIR parent */
  taskRoot: string;
  taskDir: string;
  sharedDir: string;
  secretsDir: string;
  stdoutPath: string;
  stderrPath: string;
  stdout: FifoReader;
  stderr: FifoReader;
  uid: number;
  cgroup: TaskCgroupPaths;
  env: Record<string, string>;
  base: TaskConfig;
  /** complete lines read from stdout, oldest first */
  lines: string[];
  waiters: Array<() => void>;
}

/**
 * The NOMAD_* environment Nomad's task runner gives a task (the part the
 * driver sees in TaskConfig.env), for the bench's slots and the plan
 * micro-benchmark. Pure: builds the map, touches nothing.
 */
export function nomadTaskEnv(t: {
  allocId: string; name: string; index: number; sharedDir: string; taskDir: string; secretsDir: string;
  memoryMb: number; cpuMhz: number; parentCgroup: string;
}): Record<string, string> {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    NOMAD_ALLOC_DIR: t.sharedDir,
    NOMAD_TASK_DIR: t.taskDir,
    NOMAD_SECRETS_DIR: t.secretsDir,
    NOMAD_MEMORY_LIMIT: String(t.memoryMb),
    NOMAD_CPU_LIMIT: String(t.cpuMhz),
    NOMAD_CPU_CORES: ' ',
    NOMAD_ALLOC_ID: t.allocId,
    NOMAD_SHORT_ALLOC_ID: t.allocId.slice(0, 8),
    NOMAD_ALLOC_NAME: `bench.group[${t.index}]`,
    NOMAD_ALLOC_INDEX: String(t.index),
    NOMAD_TASK_NAME: t.name,
    NOMAD_GROUP_NAME: 'group',
    NOMAD_JOB_ID: 'bench',
    NOMAD_JOB_NAME: 'bench',
    NOMAD_JOB_PARENT_ID: '',
    NOMAD_DC: 'dc1',
    NOMAD_REGION: 'global',
    NOMAD_NAMESPACE: 'default',
    NOMAD_PARENT_CGROUP: t.parentCgroup,
  };
}

let nextUid = 81000;

/** Make n slots. FIFOs are made with one mkfifo(1) call for all of them. */
export function makeSlots(nomad: NomadLikeClient, n: number, tag: string, opts: { cpuMhz?: number; memoryMb?: number; fifoOwner?: 'root' | 'task' } = {}): Slot[] {
  const slots: Omit<Slot, 'stdout' | 'stderr'>[] = [];
  for (let i = 0; i < n; i++) {
    const allocId = randomUUID();
    const name = `${tag}${i}`;
    const uid = nextUid++;
    const allocDir = path.join(nomad.allocRoot, allocId);
    const sharedDir = path.join(allocDir, 'alloc');
    const taskRoot = path.join(allocDir, name);
    mkdirSync(allocDir, { mode: 0o755 });
    for (const d of ['', 'logs', 'tmp', 'data']) mkdirSync(path.join(sharedDir, d), { recursive: true });
    for (const d of ['logs', 'tmp', 'data']) chmodSync(path.join(sharedDir, d), 0o777);
    for (const d of ['', 'local', 'tmp', 'secrets', 'private']) mkdirSync(path.join(taskRoot, d), { recursive: true });
    chmodSync(taskRoot, 0o777);
    chmodSync(path.join(taskRoot, 'local'), 0o777);
    chmodSync(path.join(taskRoot, 'tmp'), 0o1777);
    chownSync(path.join(taskRoot, 'secrets'), uid, uid);
    chmodSync(path.join(taskRoot, 'secrets'), 0o710);
    const cgroup = nomad.cgroups.createTask(allocId, name);
    const cpuMhz = opts.cpuMhz ?? 2500;
    const memoryMb = opts.memoryMb ?? 300;
    const taskDir = path.join(taskRoot, 'local');
    const secretsDir = path.join(taskRoot, 'secrets');
    const env = nomadTaskEnv({ allocId, name, index: i, sharedDir, taskDir, secretsDir, memoryMb, cpuMhz, parentCgroup: nomad.cgroups.parent });
    const stdoutPath = path.join(sharedDir, 'logs', `.${name}.stdout.fifo`);
    const stderrPath = path.join(sharedDir, 'logs', `.${name}.stderr.fifo`);
    const base: TaskConfig = {
      id: '',
      name,
      msgpackDriverConfig: Buffer.alloc(0),
      env,
      deviceEnv: {},
      resources: {
        allocatedResources: { cpu: { cpuShares: cpuMhz }, memory: { memoryMb, memoryMaxMb: 0 }, networks: [] },
        linuxResources: {
          cpuPeriod: 0, cpuQuota: 0, cpuShares: cpuMhz, memoryLimitBytes: memoryMb * 1024 * 1024,
          oomScoreAdj: 0, cpusetCpus: '', PercentTicks: 0, cpusetCgroup: cgroup.cpusetCgroup,
        },
        ports: [],
      },
      mounts: [],
      devices: [],
      user: `nomad-${uid}`,
      allocDir,
      stdoutPath,
      stderrPath,
      taskGroupName: 'group',
      jobName: 'bench',
      allocId,
      networkIsolationSpec: undefined,
      dns: undefined,
      jobId: 'bench',
      namespace: 'default',
      nodeName: os.hostname(),
      nodeId: randomUUID(),
      parentJobId: '',
    };
    slots.push({ allocId, name, allocDir, taskRoot, taskDir, sharedDir, secretsDir, stdoutPath, stderrPath, uid, cgroup, env, base, lines: [], waiters: [] });
  }
  // One mkfifo(1) for all FIFOs (like logmon, root-owned 0600; the driver chowns them).
  const fifos = slots.flatMap((s) => [s.stdoutPath, s.stderrPath]);
  for (let i = 0; i < fifos.length; i += 500) execFileSync('mkfifo', ['-m', '0600', ...fifos.slice(i, i + 500)]);
  return slots.map((s) => {
    if (opts.fifoOwner === 'task') for (const f of [s.stdoutPath, s.stderrPath]) chownSync(f, s.uid, s.uid);
    const slot = s as Slot;
    let partial = '';
    slot.stdout = new FifoReader(s.stdoutPath, (b) => {
      partial += b.toString('utf8');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        slot.lines.push(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
      for (const w of slot.waiters.splice(0)) w();
    }, false);
    slot.stderr = new FifoReader(s.stderrPath, undefined, false);
    return slot;
  });
}

/** The next complete stdout line of the slot's task. */
export async function nextLine(slot: Slot, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (slot.lines.length === 0) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no output from ${slot.name} within ${timeoutMs} ms`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      slot.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  return slot.lines.shift()!;
}

/** A TaskConfig for one launch from this slot: fresh id, the given command. */
export function taskConfig(slot: Slot, command: string, args: string[] = []): TaskConfig {
  return {
    ...slot.base,
    id: `${slot.allocId}/${slot.name}/${randomBytes(4).toString('hex')}`,
    msgpackDriverConfig: Buffer.from(encodeTaskConfig({ command, args })),
  };
}

/** The task environment the driver builds (spec §7.4 step 5), as KEY=VALUE. */
export function taskEnv(slot: Slot): string[] {
  const env = { ...slot.env, TMPDIR: path.join(slot.taskRoot, 'tmp'), USER: `nomad-${slot.uid}`, HOME: '/nonexistent' };
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

export function closeSlot(slot: Slot): void {
  slot.stdout.close();
  slot.stderr.close();
}

export { MHZ_PER_CORE };
