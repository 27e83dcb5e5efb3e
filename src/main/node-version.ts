/**
 * Which Node.js versions run the plugin. Loaded before anything else by the
 * entry point, so it uses no `node:` imports and no recent syntax: on an old
 * Node it must still run far enough to say, in one line, what is wrong.
 */

/** Oldest supported release: the engines field of package.json says the same (a unit test checks). */
export const MIN_NODE_VERSION = '20.19.0';

function parts(v: string): number[] {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [];
}

/** Pure: null when `found` is supported, else the one line to print. */
export function nodeVersionProblem(found: string, min: string = MIN_NODE_VERSION): string | null {
  const f = parts(found);
  const n = parts(min);
  if (f.length !== 3) return `nomad-driver-exec2: cannot read the Node.js version "${found}"; needs Node.js >= ${min}`;
  for (let i = 0; i < 3; i++) {
    if (f[i]! > n[i]!) return null;
    if (f[i]! < n[i]!) return `nomad-driver-exec2: Node.js ${f.join('.')} found (${process.execPath}), needs Node.js >= ${min}`;
  }
  return null;
}
