/**
 * Side effect on import: exit with one line on stderr when this Node.js is
 * too old. Imported first by the entry point, before any module that an old
 * Node could fail to load with a less helpful message.
 */
import { nodeVersionProblem } from './node-version';

const problem = nodeVersionProblem(process.versions.node);
if (problem !== null) {
  process.stderr.write(problem + '\n');
  process.exit(1);
}
