/**
 * `run job.json`: the JSON form of a Nomad job (what `nomad job run -output`
 * prints) turned into run options for its first exec2 task. Only what exec2
 * uses is read; anything else in the job is ignored.
 */
import { readFileSync } from 'node:fs';
import { UsageError, type RunOptions } from './run-options';
import { messageOf } from '../shared/errors';

interface JsonTask {
  Name?: string;
  Driver?: string;
  User?: string;
  Config?: { command?: unknown; args?: unknown; unveil?: unknown; oom_score_adj?: unknown; work_dir?: unknown; cap_add?: unknown; cap_drop?: unknown; pids_max?: unknown };
  Env?: Record<string, unknown> | null;
  Resources?: { CPU?: number; Cores?: number; MemoryMB?: number; MemoryMaxMB?: number } | null;
  KillTimeout?: number | null;
  KillSignal?: string;
}

const strings = (v: unknown, what: string): string[] => {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new UsageError(`job file: ${what} must be a list of strings`);
  return v as string[];
};

export function optionsFromJob(file: string, base: RunOptions | null = null): RunOptions {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`job file ${file}: ${messageOf(err)}`);
  }
  const job = ((doc as { Job?: unknown }).Job ?? doc) as { TaskGroups?: Array<{ Tasks?: JsonTask[] }> };
  const tasks = (job.TaskGroups ?? []).flatMap((g) => g.Tasks ?? []);
  const task = tasks.find((t) => t.Driver === 'exec2');
  if (!task) throw new UsageError(`job file ${file}: no task with Driver "exec2"`);
  const cfg = task.Config ?? {};
  if (typeof cfg.command !== 'string' || cfg.command === '') throw new UsageError(`job file: task "${task.Name ?? '?'}" has no config.command`);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(task.Env ?? {})) env[k] = String(v);
  const res = task.Resources ?? {};
  return {
    ...(base ?? ({} as RunOptions)),
    command: cfg.command,
    args: strings(cfg.args, 'config.args'),
    unveil: strings(cfg.unveil, 'config.unveil'),
    oomScoreAdj: typeof cfg.oom_score_adj === 'number' ? cfg.oom_score_adj : undefined,
    workDir: typeof cfg.work_dir === 'string' ? cfg.work_dir : undefined,
    capAdd: strings(cfg.cap_add, 'config.cap_add'),
    capDrop: strings(cfg.cap_drop, 'config.cap_drop'),
    pidsMax: typeof cfg.pids_max === 'number' ? cfg.pids_max : undefined,
    allowCaps: base?.allowCaps,
    user: task.User || undefined,
    env: { ...env, ...(base?.env ?? {}) },
    cpuMhz: res.Cores ? 100 : res.CPU ?? 100,
    cores: res.Cores ?? 0,
    memoryMb: res.MemoryMB ?? 300,
    memoryMaxMb: res.MemoryMaxMB ?? 0,
    // Nomad's JSON carries durations in nanoseconds.
    killTimeoutMs: typeof task.KillTimeout === 'number' ? Math.round(task.KillTimeout / 1e6) : 5000,
    killSignal: task.KillSignal || 'SIGINT',
    unveilDefaults: base?.unveilDefaults ?? true,
    unveilPaths: base?.unveilPaths ?? [],
    allocRoot: base?.allocRoot,
    quiet: base?.quiet ?? false,
  };
}
