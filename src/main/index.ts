/** Entry point of bin/nomad-driver-exec2: the plugin, or a subcommand. */
// First: a too-old Node exits here with one line naming both versions.
import './node-check';
import { PLUGIN_VERSION } from './version';
import { messageOf } from '../shared/errors';

function main(argv: string[]): void {
  const sub = argv[2];
  if (sub === '--version' || sub === 'version') {
    process.stdout.write(`nomad-driver-exec2 ${PLUGIN_VERSION}\n`);
    return;
  }
  if (sub === 'doctor') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only for this subcommand, like `run` below
    const { doctorCommand } = require('../cli/doctor') as typeof import('../cli/doctor');
    process.exitCode = doctorCommand(argv.slice(3));
    return;
  }
  if (sub === 'run') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily: Nomad's short-lived plugin processes never pay for it
    const { runCommand } = require('../cli/run') as typeof import('../cli/run');
    runCommand(argv.slice(3)).then(
      (code) => process.exit(code),
      (err: unknown) => {
        process.stderr.write(`nomad-driver-exec2 run: ${messageOf(err)}\n`);
        process.exit(125);
      },
    );
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- not loaded for `version` and the subcommands above
  (require('./server') as typeof import('./server')).servePlugin();
}

main(process.argv);
