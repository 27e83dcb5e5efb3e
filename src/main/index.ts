/** Entry point of bin/nomad-driver-exec2. */
import { servePlugin } from './server';

function main(argv: string[]): void {
  const sub = argv[2];
  if (sub === '--version' || sub === 'version') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    process.stdout.write(`nomad-driver-exec2 ${(require('./version') as { PLUGIN_VERSION: string }).PLUGIN_VERSION}\n`);
    return;
  }
  servePlugin();
}

main(process.argv);
