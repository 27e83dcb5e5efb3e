/**
 * mocha reporter for the suite inside the VM: the spec reporter, plus one
 * machine-readable line that run-suites.ts picks out of the guest's output
 * (deliberately not in the `vm: N passed, N failed` form: that line is the
 * runner's own summary across kernels).
 */
import Mocha from 'mocha';

/** run-suites.ts matches this prefix */
const RESULT_PREFIX = 'exec2-vm-suite-result';

class VmSuiteReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = runner.stats;
      if (s) process.stdout.write(`${RESULT_PREFIX} passed=${s.passes} failed=${s.failures} skipped=${s.pending}\n`);
    });
  }
}

export = VmSuiteReporter;
