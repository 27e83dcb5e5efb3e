/**
 * What `nomad-driver-exec2 run` was asked to do, from its command line
 * (args.ts) or a job file (jobfile.ts); its own module so that neither of
 * those two needs to import the other.
 */

/** A command line or job file `run` cannot accept; the message says why (empty: print the usage). */
export class UsageError extends Error {}

export interface RunOptions {
  command: string;
  args: string[];
  unveil: string[];
  cpuMhz: number;
  cores: number;
  memoryMb: number;
  memoryMaxMb: number;
  user: string | undefined;
  env: Record<string, string>;
  workDir: string | undefined;
  oomScoreAdj: number | undefined;
  capAdd: string[];
  capDrop: string[];
  pidsMax: number | undefined;
  /** plugin allow_caps; undefined = the plugin's default */
  allowCaps: string[] | undefined;
  killTimeoutMs: number;
  killSignal: string;
  unveilDefaults: boolean;
  unveilPaths: string[];
  allocRoot: string | undefined;
  quiet: boolean;
}
