/**
 * Run one command in the test VM, by hand:
 *
 *   node dist/test/vm/run.js [--kernel default|bpo] [--share DIR]... [--cwd DIR]
 *        [--env K=V]... [--timeout SECONDS] [--mem MB] [--cpus N] [-v] -- COMMAND...
 *
 * The checkout is always shared read-write (at the same path) and is the
 * default working directory. The exit status is the command's; 124: the
 * timeout fired; 125: the VM could not run (the reason is printed).
 */
import * as path from 'node:path';
import { findKernel, missingTools, runInVm, SETUP_COMMAND, VM_FAILED, type KernelName } from './vm';

const REPO = path.resolve(__dirname, '../../..');

function usage(msg: string): never {
  process.stderr.write(`run: ${msg}\nusage: node dist/test/vm/run.js [--kernel default|bpo] [--share DIR]... [--cwd DIR] [--env K=V]... [--timeout S] [--mem MB] [--cpus N] [-v] -- COMMAND...\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let kernelName: KernelName = 'default';
  const shares = [REPO];
  const env: Record<string, string> = {};
  let cwd: string | undefined;
  let timeoutMs: number | undefined;
  let memMb: number | undefined;
  let cpus: number | undefined;
  let verbose = false;
  for (;;) {
    const a = argv.shift();
    if (a === undefined) usage('no command');
    if (a === '--') break;
    const val = (): string => argv.shift() ?? usage(`${a} needs a value`);
    if (a === '--kernel') {
      const k = val();
      if (k !== 'default' && k !== 'bpo') usage(`unknown kernel ${k}`);
      kernelName = k;
    } else if (a === '--share') shares.push(path.resolve(val()));
    else if (a === '--cwd') cwd = path.resolve(val());
    else if (a === '--env') {
      const kv = val();
      env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
    } else if (a === '--timeout') timeoutMs = Number(val()) * 1000;
    else if (a === '--mem') memMb = Number(val());
    else if (a === '--cpus') cpus = Number(val());
    else if (a === '-v' || a === '--verbose') verbose = true;
    else usage(`unknown option ${a}`);
  }
  if (!argv.length) usage('no command');
  const missing = missingTools();
  const found = findKernel(kernelName);
  if (missing.length || 'problem' in found) {
    process.stderr.write(`run: cannot boot the VM: ${[...missing.map((m) => `missing ${m}`), ...('problem' in found ? [found.problem] : [])].join('; ')}\n  install: ${SETUP_COMMAND} (as root)\n`);
    process.exit(VM_FAILED);
  }
  const r = await runInVm({
    kernel: found.kernel, command: argv, shares: [...new Set(shares)], cwd: cwd ?? process.cwd(), env, timeoutMs, memMb, cpus, verbose,
    onStdout: (b) => process.stdout.write(b),
    onStderr: (b) => process.stderr.write(b),
  });
  if (r.failure) {
    process.stderr.write(`run: ${r.failure}\n`);
    if (r.status === VM_FAILED) process.stderr.write(r.console.split('\n').slice(-40).map((l) => `  console: ${l}\n`).join(''));
  }
  if (verbose) process.stderr.write(`run: ${found.kernel.release} (${r.accel}): status ${r.status}, wall ${(r.wallMs / 1000).toFixed(1)} s, boot ${r.bootMs ?? '?'} ms\n`);
  process.exitCode = r.status;
}

void main();
