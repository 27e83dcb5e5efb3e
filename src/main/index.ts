/** Entry point of bin/nomad-driver-exec2: the plugin, or a subcommand. */
// First: a too-old Node exits here with one line naming both versions.
import './node-check';
import { PLUGIN_VERSION } from './version';

function main(argv: string[]): void {
  const sub = argv[2];
  if (sub === '--version' || sub === 'version') {
    process.stdout.write(`nomad-driver-exec2 ${PLUGIN_VERSION}\n`);
    return;
  }
  if (sub === 'doctor') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { doctorCommand } = require('../cli/doctor') as typeof import('../cli/doctor');
    process.exitCode = doctorCommand(argv.slice(3));
    return;
  }
  if (sub === 'run') {
    // Loaded lazily: Nomad's short-lived plugin processes never pay for it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runCommand } = require('../cli/run') as typeof import('../cli/run');
    runCommand(argv.slice(3)).then(
      (code) => process.exit(code),
      (err: unknown) => {
        process.stderr.write(`nomad-driver-exec2 run: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(125);
      },
    );
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('./server') as typeof import('./server')).servePlugin();
}

main(process.argv);
