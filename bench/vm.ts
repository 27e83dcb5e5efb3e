/**
 * `npm run bench -- --vm [other bench flags]`: the same bench inside the
 * project's pure cgroup v2 test VM (test/vm/), once per kernel (Debian's 6.1
 * and the backports 6.12), so the ratios are read where most Nomad clients
 * run: v2 clones straight into the task cgroup, with no RCU wait on the join.
 * Software emulation (TCG) inflates every absolute time; compare the ratio
 * columns (xb1, xb2, xb2g) and the phase shares, not the microseconds.
 *
 * The guest runs this tree's dist/bench/run.js with the host repo shared
 * read-write, so each kernel's JSON and SVG land in bench/results/ as usual.
 * Defaults to `--quick --only=latency,first,throughput` (about 10 minutes a
 * kernel under TCG, the throughput part 3-4 of them, so the CPU-per-launch
 * ratio against the native launcher is read on v2 too; a full run takes the
 * better part of an hour); any flag given replaces those defaults.
 */
import * as path from 'node:path';
import { findKernel, missingTools, runInVm, SETUP_COMMAND, type KernelName } from '../test/vm/vm';

const REPO = path.resolve(__dirname, '../..');
const DEFAULT_ARGS = ['--quick', '--only=latency,first,throughput'];
const KERNELS: KernelName[] = ['default', 'bpo'];

const say = (s: string): void => void process.stdout.write(`${s}\n`);

/** Runs the bench in one VM per kernel; resolves to the exit status for the bench process. */
export async function benchInVms(forward: string[]): Promise<number> {
  const missing = missingTools();
  if (missing.length > 0) {
    say(`bench --vm: SKIP, missing ${missing.join(', ')}; run ${SETUP_COMMAND} first`);
    return 1;
  }
  const args = forward.length > 0 ? forward : DEFAULT_ARGS;
  const timeoutS = Number(process.env.EXEC2_VM_TIMEOUT ?? 1800);
  let failed = 0;
  for (const name of KERNELS) {
    const found = findKernel(name);
    if ('problem' in found) {
      say(`bench --vm [${name}]: SKIP, ${found.problem}; run ${SETUP_COMMAND} first`);
      failed++;
      continue;
    }
    say(`=== bench in the VM [${name}]: pure cgroup v2, TCG or KVM as available; node dist/bench/run.js ${args.join(' ')}`);
    const r = await runInVm({
      kernel: found.kernel,
      command: [process.execPath, path.join(REPO, 'dist', 'bench', 'run.js'), ...args],
      shares: [REPO],
      cwd: REPO,
      timeoutMs: timeoutS * 1000,
      memMb: 2048,
      cpus: 2,
      onStdout: (b) => process.stdout.write(b),
      onStderr: (b) => process.stderr.write(b),
    });
    say(`=== bench in the VM [${name}]: exit ${r.status}, wall ${(r.wallMs / 1000).toFixed(0)} s, ${r.accel}${r.failure ? `, ${r.failure}` : ''}`);
    if (r.status !== 0) failed++;
  }
  return failed > 0 ? 1 : 0;
}
