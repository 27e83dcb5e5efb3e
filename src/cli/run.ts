/**
 * `nomad-driver-exec2 run`: one task through the real plugin, the way a
 * Nomad client runs it, with its output streamed to this terminal.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { NomadLikeClient } from '../client/nomad-client';
import { parseRunArgs, UsageError, USAGE, type RunOptions } from './args';
import { messageOf } from '../shared/errors';

export const EXIT_DRIVER_ERROR = 125;
export const EXIT_USAGE = 2;

function errorText(err: unknown): string {
  const se = err as Partial<ServiceError>;
  if (typeof se.code === 'number' && typeof se.details === 'string') return se.details;
  return messageOf(err);
}

const say = (line: string): void => {
  try {
    process.stderr.write(`${line}\n`);
  } catch {
    // terminal gone
  }
};

/** What `run` names everything it makes: <RUN_NAME>-<random> (see docs/operators.md). */
export const RUN_NAME = 'nomad-driver-exec2-run';

/** Signals that end `run`: each stops the task (a second one kills it), then everything made is removed. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function runTask(opts: RunOptions): Promise<number> {
  if (process.getuid?.() !== 0) {
    say('nomad-driver-exec2 run: must run as root (the driver sets users, cgroups and namespaces)');
    return EXIT_DRIVER_ERROR;
  }
  let client: NomadLikeClient | null = null;
  let code: number;
  const wallStart = process.hrtime.bigint();
  let stops = 0;
  let taskId = '';
  let cleaning = false;
  // First Ctrl-C: like `nomad alloc stop` (signal, grace, kill). Second: kill now.
  // A Ctrl-C that lands before StartTask answered is applied once it has.
  const issueStop = (): void => {
    const timeout = stops === 1 ? opts.killTimeoutMs : 0;
    if (stops === 1) say(`nomad-driver-exec2 run: stopping task (${opts.killSignal}, kill after ${timeout} ms; Ctrl-C again to kill now)`);
    client?.stop(taskId, timeout, opts.killSignal).catch((err: unknown) => say(`nomad-driver-exec2 run: stop failed: ${errorText(err)}`));
  };
  // Installed until the cleanup is done: a signal's default action would
  // end this process and leave the plugin, its task and their cgroups behind.
  const onSignal = (): void => {
    if (cleaning) {
      say('nomad-driver-exec2 run: removing what this run made, one moment');
      return;
    }
    stops++;
    if (taskId) issueStop();
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  try {
    client = new NomadLikeClient({ ...(opts.allocRoot ? { baseDir: opts.allocRoot } : {}), name: RUN_NAME, privateSocketDir: true });
    if (client.cgroups.skipReason) throw new Error(client.cgroups.skipReason);
    await client.startPlugin({ unveil_defaults: opts.unveilDefaults, unveil_by_task: opts.unveil.length > 0, unveil_paths: opts.unveilPaths, allow_caps: opts.allowCaps });
    const task = client.prepareTask({
      command: opts.command,
      args: opts.args,
      unveil: opts.unveil,
      cpuMhz: opts.cpuMhz,
      cores: opts.cores > 0 ? Array.from({ length: opts.cores }, (_, i) => i).join(',') : undefined,
      memoryMb: opts.memoryMb,
      memoryMaxMb: opts.memoryMaxMb,
      user: opts.user,
      env: opts.env,
      work_dir: opts.workDir,
      oom_score_adj: opts.oomScoreAdj,
      cap_add: opts.capAdd,
      cap_drop: opts.capDrop,
      pids_max: opts.pidsMax,
      onStdout: (b) => process.stdout.write(b),
      onStderr: (b) => process.stderr.write(b),
    });
    const t0 = process.hrtime.bigint();
    await client.startTask(task);
    const launchMs = Number(process.hrtime.bigint() - t0) / 1e6;
    taskId = task.config.id;
    if (stops > 0) issueStop();
    const r = await client.wait(taskId);
    await Promise.all([task.stdout?.drain(), task.stderr?.drain()]);
    const { exitCode, signal, oomKilled } = r.result;
    code = r.err ? EXIT_DRIVER_ERROR : signal > 0 ? 128 + signal : exitCode;
    if (!opts.quiet) {
      const wall = Number(process.hrtime.bigint() - wallStart) / 1e9;
      say(`exec2: exit ${exitCode}${signal ? ` (signal ${signal})` : ''}, oom ${oomKilled ? 'yes' : 'no'}, wall ${wall.toFixed(2)}s, launch ${launchMs.toFixed(2)}ms${r.err ? `, error: ${r.err}` : ''}`);
    }
  } catch (err) {
    say(`nomad-driver-exec2 run: ${errorText(err)}`);
    code = EXIT_DRIVER_ERROR;
  } finally {
    cleaning = true;
    // Stops what still runs, kills the plugin Nomad's way, removes the
    // cgroups, the data, state and socket dirs (NomadLikeClient.cleanup).
    const leftovers = client ? await client.cleanup().catch((err: unknown) => [errorText(err)]) : [];
    for (const l of leftovers) say(`nomad-driver-exec2 run: cleanup: ${l}`);
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
  return code;
}

export async function runCommand(argv: string[]): Promise<number> {
  let opts: RunOptions;
  try {
    opts = parseRunArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) say(`nomad-driver-exec2 run: ${err.message}`);
      say(USAGE);
      return err.message ? EXIT_USAGE : 0;
    }
    throw err;
  }
  return runTask(opts);
}
