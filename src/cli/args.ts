/** Command-line parsing for `nomad-driver-exec2 run`. */
import { parseArgs } from 'node:util';
import { optionsFromJob } from './jobfile';
import { UsageError, type RunOptions } from './run-options';
import { messageOf } from '../shared/errors';

export { UsageError, type RunOptions } from './run-options';

export const USAGE = `usage: nomad-driver-exec2 run [options] -- COMMAND [ARGS...]
       nomad-driver-exec2 run [options] JOB.json

Runs one task through the real plugin over gRPC, as a Nomad client would.
JOB.json is a job in Nomad's JSON form (nomad job run -output job.hcl);
its first exec2 task runs, with its config, env, user, resources,
kill_timeout and kill_signal.

task options (the job's config and resources):
  --unveil MODE:PATH     unveil a path to this task (repeatable), e.g. r:/etc/mime.types
  --cpu MHZ              CPU bandwidth in MHz (default 100)
  --cores N              reserve N whole cores instead of --cpu
  --memory MB            memory limit in MiB (default 300)
  --memory-max MB        hard limit with --memory as the soft reservation (--memory-max=-1: none)
  --user NAME            run as this user (default: a dynamic user nomad-<n>)
  --env K=V              add to the task environment (repeatable)
  --work-dir DIR         working directory, absolute or relative to the task dir (inside an unveiled path)
  --oom-score-adj N      0-1000
  --cap-add CAP          add a capability (repeatable; must be allowed, see --allow-cap)
  --cap-drop CAP         drop a capability, or "all" (repeatable)
  --pids-max N           the task's pids.max (at most the plugin's 4096)
  --kill-timeout DUR     grace period on Ctrl-C before the kill (default 5s)
  --kill-signal SIG      signal sent on Ctrl-C (default SIGINT)
plugin options:
  --no-unveil-defaults   do not unveil the default system paths
  --unveil-path MODE:PATH  unveil a path to every task (plugin unveil_paths, repeatable)
  --allow-cap CAP        plugin allow_caps (repeatable; default: Nomad exec's list)
other:
  --alloc-dir DIR        where to make the allocation directory (default: a temp dir)
  --quiet                no summary line
Exit status: the task's exit code, 128+N if a signal ended it, 125 if the
driver could not run it, 2 for bad usage.`;

export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
  if (!m) throw new UsageError(`invalid duration "${s}" (use e.g. 500ms, 5s, 1m)`);
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

function int(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} expects a whole number >= ${min}, got "${v}"`);
  return Number(v);
}

export function parseRunArgs(argv: string[]): RunOptions {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        unveil: { type: 'string', multiple: true },
        cpu: { type: 'string' },
        cores: { type: 'string' },
        memory: { type: 'string' },
        'memory-max': { type: 'string' },
        user: { type: 'string' },
        env: { type: 'string', multiple: true },
        'work-dir': { type: 'string' },
        'oom-score-adj': { type: 'string' },
        'cap-add': { type: 'string', multiple: true },
        'cap-drop': { type: 'string', multiple: true },
        'pids-max': { type: 'string' },
        'allow-cap': { type: 'string', multiple: true },
        'kill-timeout': { type: 'string' },
        'kill-signal': { type: 'string' },
        'no-unveil-defaults': { type: 'boolean' },
        'unveil-path': { type: 'string', multiple: true },
        'alloc-dir': { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError(messageOf(err));
  }
  if (values.help) throw new UsageError('');
  const [command, ...args] = positionals;
  const jobFile = !argv.includes('--') && args.length === 0 && command?.endsWith('.json') ? command : null;
  if (!command) throw new UsageError('missing COMMAND (put it after --) or a job file');
  const env: Record<string, string> = {};
  for (const kv of values.env ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--env expects K=V, got "${kv}"`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const cores = int('cores', values.cores, 0);
  if (cores > 0 && values.cpu !== undefined) throw new UsageError('--cpu and --cores cannot be used together');
  const parsed: RunOptions = {
    command,
    args,
    unveil: values.unveil ?? [],
    cpuMhz: int('cpu', values.cpu, 100, 1),
    cores,
    memoryMb: int('memory', values.memory, 300, 10),
    // -1: Nomad 2.0's reserve-only oversubscription (no hard limit)
    memoryMaxMb: values['memory-max'] === '-1' ? -1 : int('memory-max', values['memory-max'], 0),
    user: values.user,
    env,
    workDir: values['work-dir'],
    oomScoreAdj: values['oom-score-adj'] === undefined ? undefined : int('oom-score-adj', values['oom-score-adj'], 0),
    capAdd: values['cap-add'] ?? [],
    capDrop: values['cap-drop'] ?? [],
    pidsMax: values['pids-max'] === undefined ? undefined : int('pids-max', values['pids-max'], 0, 1),
    allowCaps: values['allow-cap'],
    killTimeoutMs: values['kill-timeout'] === undefined ? 5000 : parseDuration(values['kill-timeout']),
    killSignal: values['kill-signal'] ?? 'SIGINT',
    unveilDefaults: !values['no-unveil-defaults'],
    unveilPaths: values['unveil-path'] ?? [],
    allocRoot: values['alloc-dir'],
    quiet: values.quiet ?? false,
  };
  return jobFile ? optionsFromJob(jobFile, parsed) : parsed;
}
