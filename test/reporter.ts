/**
 * mocha's spec reporter plus one closing line in the plain form CI tooling
 * reads: `host: N passed, N failed, N skipped`.
 */
import Mocha from 'mocha';

class Exec2Reporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = runner.stats;
      if (!s) return;
      process.stdout.write(`host: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
    });
  }
}

export = Exec2Reporter;
