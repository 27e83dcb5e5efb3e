/**
 * The release build: compile a clean copy of the tree (so nothing stale in a
 * developer's build/ or dist/ can leak into a release), lay out the versioned
 * tree, pack it as a tarball with its SHA-256 sum, and wrap the same tree in
 * a .deb with dpkg-deb. Decisions live in layout.ts; this file does the I/O.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  artifactBaseName, controlFile, DEB_LIB_DIR, debFileName, DEFAULT_MAINTAINER, NOMAD_PLUGIN_DIR, PACKAGE_NAME,
  productionClosure, releasePackageJson, shipsDistFile, shipsPackageFile, type PackageJson,
} from './layout';

export type Log = (line: string) => void;

function run(cmd: string, args: string[], opts: SpawnSyncOptions & { log?: Log } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}): ${String(r.stderr ?? '').trim().split('\n').slice(-15).join('\n')}`);
  return String(r.stdout ?? '');
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

/** Every file below `dir`, relative, sorted (symlinks listed, not followed). */
function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(dir, r));
    else out.push(r);
  }
  return out;
}

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** `<file>.sha256` in the format `sha256sum -c` reads. */
function writeSum(file: string): string {
  const hex = sha256File(file);
  writeFileSync(`${file}.sha256`, `${hex}  ${path.basename(file)}\n`);
  return hex;
}

/**
 * Copies the tracked files of `sourceRoot` (their working-tree content) to a
 * fresh directory next to a link to its node_modules, and builds there:
 * node-gyp for the addon and the init helper, tsc for src/ only.
 */
export function compileCleanCopy(sourceRoot: string, log: Log): string {
  const tree = mkdtempSync(path.join(os.tmpdir(), 'exec2-release-build-'));
  const files = run('git', ['-C', sourceRoot, 'ls-files', '-z', '--cached']).split('\0').filter(Boolean);
  let copied = 0;
  for (const f of files) {
    const from = path.join(sourceRoot, f);
    if (!existsSync(from)) continue; // deleted in the working tree
    mkdirSync(path.dirname(path.join(tree, f)), { recursive: true });
    cpSync(from, path.join(tree, f), { verbatimSymlinks: true });
    copied++;
  }
  const modules = path.join(sourceRoot, 'node_modules');
  if (!existsSync(modules)) throw new Error(`${modules} is missing: run npm ci first`);
  symlinkSync(realpathSync(modules), path.join(tree, 'node_modules'));
  log(`release: building a clean copy of ${copied} tracked files in ${tree}`);
  const bin = (name: string): string => path.join(tree, 'node_modules', '.bin', name);
  run(bin('node-gyp'), ['rebuild'], { cwd: tree, stdio: ['ignore', 'ignore', 'pipe'] });
  writeFileSync(path.join(tree, 'tsconfig.release.json'), JSON.stringify({
    extends: './tsconfig.json',
    compilerOptions: { sourceMap: false, types: ['node'] },
    include: ['src/**/*.ts', 'native/**/*.ts'],
  }));
  run(bin('tsc'), ['-p', 'tsconfig.release.json'], { cwd: tree });
  return tree;
}

export interface Artifact {
  version: string;
  /** the unpacked tree, `<out>/nomad-driver-exec2-<v>-linux-x64/` */
  dir: string;
  tarball: string;
  sha256: string;
  bytes: number;
  /** SOURCE_DATE_EPOCH of the build: file times in the tarball and the .deb */
  epoch: number;
}

function sourceDateEpoch(tree: string): number {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env && /^\d+$/.test(env)) return Number(env);
  const fromGit = spawnSync('git', ['-C', tree, 'log', '-1', '--format=%ct'], { encoding: 'utf8' });
  return fromGit.status === 0 && /^\d+/.test(fromGit.stdout) ? Number(fromGit.stdout.trim()) : Math.floor(Date.now() / 1000);
}

/** Lays out the release tree of `version` from a compiled tree and packs it. */
export function assembleArtifact(tree: string, sourceRoot: string, version: string, outDir: string, log: Log): Artifact {
  const base = artifactBaseName(version);
  const dir = path.join(outDir, base);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const copy = (rel: string, to = rel): void => {
    mkdirSync(path.dirname(path.join(dir, to)), { recursive: true });
    cpSync(path.join(tree, rel), path.join(dir, to), { verbatimSymlinks: true });
  };
  copy('bin/nomad-driver-exec2');
  for (const f of walk(tree, 'dist').filter(shipsDistFile)) copy(f);
  copy('build/Release/exec2_native.node');
  copy('build/Release/exec2-init');
  for (const f of ['README.md', 'CHANGELOG.md']) copy(f);
  for (const f of walk(tree, 'docs')) copy(f);
  const pkg = readJson<PackageJson>(path.join(tree, 'package.json'));
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(releasePackageJson(pkg, version), null, 2)}\n`);

  // Production dependencies, resolved as Node would from the real install.
  const modulesRoot = realpathSync(path.join(sourceRoot, 'node_modules'));
  const projectRoot = path.dirname(modulesRoot);
  const closure = productionClosure(
    projectRoot,
    pkg,
    (d) => existsSync(path.join(d, 'package.json')),
    (d) => readJson<PackageJson>(path.join(d, 'package.json')),
  );
  for (const rel of closure) {
    const from = path.join(projectRoot, rel);
    for (const f of walk(from).filter(shipsPackageFile)) {
      const to = path.join(dir, rel, f);
      mkdirSync(path.dirname(to), { recursive: true });
      cpSync(path.join(from, f), to, { verbatimSymlinks: true });
    }
  }
  log(`release: ${base}: ${closure.length} production packages: ${closure.map((c) => c.replace(/^node_modules\//, '')).join(' ')}`);

  const tarball = path.join(outDir, `${base}.tar.gz`);
  const epoch = sourceDateEpoch(tree);
  run('tar', [
    '--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${epoch}`, '--mode=u+rw,go=rX',
    '-I', 'gzip -9n', '-C', outDir, '-cf', tarball, base,
  ]);
  const sha256 = writeSum(tarball);
  const bytes = statSync(tarball).size;
  log(`release: ${tarball} (${(bytes / 1024 / 1024).toFixed(2)} MiB, sha256 ${sha256})`);
  return { version, dir, tarball, sha256, bytes, epoch };
}

/** dpkg-shlibdeps' Depends for the addon (the init helper is static). */
function shlibsOf(file: string): string {
  const work = mkdtempSync(path.join(os.tmpdir(), 'exec2-shlibs-'));
  try {
    mkdirSync(path.join(work, 'debian'));
    writeFileSync(path.join(work, 'debian', 'control'), `Source: ${PACKAGE_NAME}\n\nPackage: ${PACKAGE_NAME}\nArchitecture: any\n`);
    const out = run('dpkg-shlibdeps', ['-O', file], { cwd: work });
    const m = /^shlibs:Depends=(.*)$/m.exec(out);
    if (!m) throw new Error(`dpkg-shlibdeps printed no shlibs:Depends for ${file}: ${out}`);
    return m[1]!.trim();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const POSTINST = `#!/bin/sh
# Links the driver into Nomad's default plugin_dir (<data_dir>/plugins, with
# the nomad package's data_dir ${path.dirname(NOMAD_PLUGIN_DIR)}), as the official package does.
# A file of another kind already there (a driver copied in by hand) is left
# alone. DPKG_ROOT is set when dpkg installs into another root.
set -e
link="\${DPKG_ROOT:-}${NOMAD_PLUGIN_DIR}/${PACKAGE_NAME}"
case "$1" in
  configure)
    mkdir -p "\${DPKG_ROOT:-}${NOMAD_PLUGIN_DIR}"
    if [ -L "$link" ] || [ ! -e "$link" ]; then
      ln -sfn /usr/bin/${PACKAGE_NAME} "$link"
    else
      echo "${PACKAGE_NAME}: $link exists and is not a symlink; left as it is (point it at /usr/bin/${PACKAGE_NAME})" >&2
    fi
    ;;
esac
exit 0
`;

const POSTRM = `#!/bin/sh
# Removes the plugin_dir link made by postinst, and only that link. Running
# tasks are not touched: they keep running until Nomad stops them.
set -e
link="\${DPKG_ROOT:-}${NOMAD_PLUGIN_DIR}/${PACKAGE_NAME}"
case "$1" in
  remove|purge)
    if [ -L "$link" ] && [ "$(readlink "$link")" = /usr/bin/${PACKAGE_NAME} ]; then
      rm -f "$link"
    fi
    ;;
esac
exit 0
`;

export interface DebPackage {
  file: string;
  sha256: string;
  bytes: number;
}

/** The .deb of an assembled tree, built with dpkg-deb. */
export function buildDeb(artifact: Artifact, outDir: string, log: Log): DebPackage {
  const stage = mkdtempSync(path.join(os.tmpdir(), 'exec2-deb-'));
  try {
    chmodSync(stage, 0o755); // it is the package's "./", i.e. /
    const lib = path.join(stage, DEB_LIB_DIR);
    mkdirSync(path.dirname(lib), { recursive: true });
    cpSync(artifact.dir, lib, { recursive: true, verbatimSymlinks: true });
    mkdirSync(path.join(stage, 'usr/bin'), { recursive: true });
    // Relative, so the package also works unpacked into another root.
    symlinkSync(`../lib/${PACKAGE_NAME}/bin/${PACKAGE_NAME}`, path.join(stage, 'usr/bin', PACKAGE_NAME));
    const doc = path.join(stage, 'usr/share/doc', PACKAGE_NAME);
    mkdirSync(doc, { recursive: true });
    writeFileSync(path.join(doc, 'copyright'), `${PACKAGE_NAME}\nLicense: MPL-2.0 (https://mozilla.org/MPL/2.0/)\nThe bundled npm packages in /${DEB_LIB_DIR}/node_modules carry their own licences beside them.\n`);
    const files = walk(stage);
    let kib = 0;
    const sums: string[] = [];
    for (const f of files) {
      const st = lstatSync(path.join(stage, f));
      kib += Math.ceil(st.size / 1024);
      if (st.isFile()) sums.push(`${md5Of(path.join(stage, f))}  ${f}`);
    }
    const debian = path.join(stage, 'DEBIAN');
    mkdirSync(debian);
    writeFileSync(path.join(debian, 'control'), controlFile({
      version: artifact.version,
      maintainer: process.env.EXEC2_DEB_MAINTAINER || DEFAULT_MAINTAINER,
      installedSizeKiB: kib,
      shlibs: shlibsOf(path.join(lib, 'build/Release/exec2_native.node')),
      description: 'Nomad task driver for exec2 tasks (Landlock, cgroups, namespaces)',
    }));
    writeFileSync(path.join(debian, 'md5sums'), `${sums.join('\n')}\n`);
    for (const [name, text] of [['postinst', POSTINST], ['postrm', POSTRM]] as const) {
      writeFileSync(path.join(debian, name), text);
      chmodSync(path.join(debian, name), 0o755);
    }
    const file = path.join(outDir, debFileName(artifact.version));
    run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, file], { env: { ...process.env, SOURCE_DATE_EPOCH: String(artifact.epoch) } });
    const sha256 = writeSum(file);
    const bytes = statSync(file).size;
    log(`release: ${file} (${(bytes / 1024 / 1024).toFixed(2)} MiB, sha256 ${sha256})`);
    return { file, sha256, bytes };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** md5sums is dpkg's own integrity list (dpkg --verify reads it); MD5 is its format, not a security claim. */
function md5Of(file: string): string {
  return createHash('md5').update(readFileSync(file)).digest('hex');
}
