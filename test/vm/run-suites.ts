/**
 * `npm run test:vm`: boots the test VM once per kernel and runs the pure
 * cgroup v2 suite (dist/test/vm/*.vmtest.js) inside it with mocha, through the
 * same Nomad-like client as the host suites. Prints the guest's mocha output,
 * the wall time per kernel, and closes with the line CI tooling reads:
 *
 *   vm: N passed, N failed
 *
 * A VM that cannot run (qemu, busybox or a kernel missing, boot failure) is a
 * FAILURE under CI=true; elsewhere a loud SKIP with the reason and the set-up
 * command. Exit status: 1 when anything failed.
 *
 * Env: EXEC2_VM_KERNELS (default "default,bpo"), EXEC2_VM_TIMEOUT (seconds per
 * kernel, default 300), EXEC2_VM_GREP (mocha --grep), EXEC2_VM_VERBOSE=1
 * (kernel console), EXEC2_VM_ACCEL (auto|kvm|tcg), EXEC2_VM_TCG_THREAD (single, the
 * default, or multi: one host thread per vCPU), EXEC2_VM_CACHE.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { findKernel, missingTools, runInVm, SETUP_COMMAND, VM_FAILED, VM_TIMEOUT, type KernelName } from './vm';

const REPO = path.resolve(__dirname, '../../..');
const IN_CI = process.env.CI === 'true';
const RESULT_RE = /^exec2-vm-suite-result passed=(\d+) failed=(\d+) skipped=(\d+)$/m;

/**
 * Guest kernel trouble that is the emulator's, not a test result. Software
 * emulation (TCG) occasionally wedges a guest CPU (soft lockup, RCU stall)
 * or crashes the guest kernel outright: seen once in a CI rehearsal as an
 * oops on an idle CPU whose RIP pointed into the middle of a live-patched
 * `nopl`, which then panicked, and as RCU stalls with a vCPU whose timer
 * stopped; all with one host thread per vCPU, which is why TCG now runs
 * single-threaded (vm.ts). Such a run boots once more and says so; the
 * same trouble twice fails the run.
 */
const GUEST_KERNEL_FAULT = /soft lockup|self-detected stall|rcu_preempt detected stalls|Kernel panic - not syncing/;
/** First line of a kernel oops, BUG or panic report. */
const KERNEL_REPORT_HEADLINE = /BUG:|Oops|invalid opcode|general protection fault|Kernel panic|soft lockup|detected stall/;

interface KernelOutcome {
  kernel: KernelName;
  release: string;
  passed: number;
  failed: number;
  skipped: number;
  /** why the kernel's run did not count as tests (skip or VM failure) */
  problem: string | null;
  /** the guest kernel itself stalled or crashed (see GUEST_KERNEL_FAULT) */
  guestKernelFault: boolean;
  skippedKernel: boolean;
  wallMs: number;
  bootMs: number | null;
  accel: string;
}

const say = (s: string): boolean => process.stdout.write(`${s}\n`);

function loudSkip(what: string, reason: string, fix: string): void {
  const bar = '!'.repeat(78);
  say(bar);
  say(`!! SKIP ${what}: ${reason}`);
  say(`!! to run it: ${fix}`);
  say(bar);
}

async function runKernel(name: KernelName, suites: string[], mocha: string, reporter: string): Promise<KernelOutcome> {
  const outcome: KernelOutcome = { kernel: name, release: '?', passed: 0, failed: 0, skipped: 0, problem: null, guestKernelFault: false, skippedKernel: false, wallMs: 0, bootMs: null, accel: '-' };
  const missing = missingTools();
  const found = findKernel(name);
  const problems = [...missing.map((m) => `missing ${m}`), ...('problem' in found ? [found.problem] : [])];
  if (problems.length || !('kernel' in found)) {
    outcome.problem = problems.join('; ');
    if (IN_CI) {
      say(`vm[${name}]: FAILED: cannot boot the VM under CI=true: ${outcome.problem} (set-up: sudo ${SETUP_COMMAND})`);
      outcome.failed = 1;
    } else {
      loudSkip(`VM suite on the ${name} kernel`, outcome.problem, `sudo ${SETUP_COMMAND}`);
      outcome.skippedKernel = true;
    }
    return outcome;
  }
  const kernel = found.kernel;
  outcome.release = kernel.release;
  say(`\n=== vm[${name}]: ${kernel.release} (Landlock ABI ${kernel.landlockAbi} expected), pure cgroup v2 ===`);
  const args = [mocha, '--no-config', '--no-package', '--reporter', reporter, '--timeout', '180000', '--slow', '20000', '--exit'];
  if (process.env.EXEC2_VM_GREP) args.push('--grep', process.env.EXEC2_VM_GREP);
  const timeoutS = Number(process.env.EXEC2_VM_TIMEOUT ?? 300);
  const r = await runInVm({
    kernel,
    command: [process.execPath, ...args, ...suites],
    shares: [REPO],
    cwd: REPO,
    timeoutMs: timeoutS * 1000,
    verbose: process.env.EXEC2_VM_VERBOSE === '1',
    onStdout: (b) => process.stdout.write(b),
    onStderr: (b) => process.stderr.write(b),
  });
  outcome.wallMs = r.wallMs;
  outcome.bootMs = r.bootMs;
  outcome.accel = r.accel;
  const m = RESULT_RE.exec(r.stdout);
  if (m) {
    outcome.passed = Number(m[1]);
    outcome.failed = Number(m[2]);
    outcome.skipped = Number(m[3]);
  }
  if (r.status === VM_FAILED || r.status === VM_TIMEOUT || !m) {
    outcome.problem = r.failure ?? (m ? `mocha exited with ${r.status}` : `no result from mocha in the guest (exit status ${r.status})`);
    say(`vm[${name}]: ${r.status === VM_TIMEOUT ? 'TIMEOUT' : 'VM FAILURE'}: ${outcome.problem}`);
    if (r.console) {
      const lines = r.console.trim().split('\n');
      // The first lines of a kernel report name its cause; the tail is its trace.
      const headlines = lines.filter((l) => KERNEL_REPORT_HEADLINE.test(l)).slice(0, 5);
      say([...headlines, ...(headlines.length ? ['...'] : []), ...lines.slice(-30)].map((l) => `  console: ${l}`).join('\n'));
    }
    outcome.guestKernelFault = GUEST_KERNEL_FAULT.test(r.console ?? '');
    // a broken VM run counts as a failure everywhere: it was meant to run
    outcome.failed += 1;
  } else if (r.failure) {
    say(`vm[${name}]: ${r.failure}`);
  }
  if (outcome.skipped > 0 && IN_CI) {
    say(`vm[${name}]: ${outcome.skipped} test(s) skipped inside the VM under CI=true: counted as failures`);
    outcome.failed += outcome.skipped;
  }
  return outcome;
}

async function main(): Promise<void> {
  const started = Date.now();
  const dir = __dirname;
  const suites = readdirSync(dir).filter((f) => f.endsWith('.vmtest.js')).sort().map((f) => path.join(dir, f));
  const names = (process.env.EXEC2_VM_KERNELS ?? 'default,bpo').split(',').map((k) => k.trim()).filter(Boolean);
  for (const k of names) if (k !== 'default' && k !== 'bpo') throw new Error(`EXEC2_VM_KERNELS: unknown kernel "${k}" (default, bpo)`);
  const kernels = names as KernelName[];

  let mocha = '';
  let buildProblem = '';
  try {
    mocha = require.resolve('mocha/bin/mocha.js', { paths: [REPO] });
  } catch {
    buildProblem = 'mocha is not installed (npm ci)';
  }
  const reporter = path.join(dir, 'vm-reporter.js');
  if (!suites.length) buildProblem ||= `no *.vmtest.js in ${dir} (npm run build:ts)`;
  for (const f of ['build/Release/exec2_native.node', 'build/Release/exec2-init']) {
    if (!existsSync(path.join(REPO, f))) buildProblem ||= `${f} is not built (npm run build)`;
  }
  if (buildProblem) {
    // not a missing VM: the checkout itself is incomplete, which fails everywhere
    say(`vm: cannot run the VM suites: ${buildProblem}`);
    say('vm: 0 passed, 1 failed');
    process.exitCode = 1;
    return;
  }

  const outcomes: KernelOutcome[] = [];
  for (const k of kernels) {
    let o = await runKernel(k, suites, mocha, reporter);
    if (o.guestKernelFault) {
      say(`vm[${k}]: the guest kernel itself stalled or crashed (see its report above); booting it once more, a second fault fails the run`);
      o = await runKernel(k, suites, mocha, reporter);
    }
    outcomes.push(o);
  }

  say('\n=== VM suites ===');
  for (const o of outcomes) {
    const time = o.skippedKernel ? 'not run' : `wall ${(o.wallMs / 1000).toFixed(1)} s${o.bootMs !== null ? `, guest boot ${(o.bootMs / 1000).toFixed(1)} s` : ''}, ${o.accel}`;
    const state = o.skippedKernel ? `SKIPPED (${o.problem})` : `${o.passed} passed, ${o.failed} failed, ${o.skipped} skipped`;
    say(`vm[${o.kernel}] ${o.release}: ${state}; ${time}`);
  }
  say(`vm: total wall ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const passed = outcomes.reduce((n, o) => n + o.passed, 0);
  const failed = outcomes.reduce((n, o) => n + o.failed, 0);
  say(`vm: ${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

main().catch((err: unknown) => {
  say(`vm: runner error: ${(err as Error).stack ?? String(err)}`);
  say('vm: 0 passed, 1 failed');
  process.exitCode = 1;
});
