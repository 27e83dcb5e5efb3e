/**
 * Pure decisions of the release build: names, versions, which files ship,
 * the production dependency closure, and the Debian control data. No I/O
 * except through the functions passed in, so unit tests cover all of it.
 */
import * as path from 'node:path';

export const PACKAGE_NAME = 'nomad-driver-exec2';
export const PLATFORM = 'linux-x64';
export const DEB_ARCH = 'amd64';
/** Where the .deb puts the tree; /usr/bin/nomad-driver-exec2 links into it. */
export const DEB_LIB_DIR = `usr/lib/${PACKAGE_NAME}`;
/** Nomad's default plugin_dir is <data_dir>/plugins; the nomad package's data_dir is /opt/nomad/data. */
export const NOMAD_PLUGIN_DIR = '/opt/nomad/data/plugins';

/**
 * Declared as dependencies because `npm ci` builds the addon on install, but
 * needed only at build time: node-addon-api is C++ headers for binding.gyp.
 */
export const BUILD_ONLY_DEPENDENCIES = new Set(['node-addon-api']);

/** Versions become file and directory names: only what semver allows. */
const VERSION_RE = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?(?:\+[0-9A-Za-z.]+)?$/;

export function checkVersion(v: string): string {
  if (!VERSION_RE.test(v)) throw new Error(`release version "${v}" is not a semantic version like 1.2.3 or 1.2.3-rc.1`);
  return v;
}

/** `nomad-driver-exec2-<version>-linux-x64`: the tarball's top directory and base name. */
export function artifactBaseName(version: string): string {
  return `${PACKAGE_NAME}-${checkVersion(version)}-${PLATFORM}`;
}

/** Debian sorts `~` before anything, so 1.2.3-rc.1 becomes 1.2.3~rc.1-1 (< 1.2.3-1), as the semver order wants. */
export function debianVersion(version: string, revision = 1): string {
  checkVersion(version);
  return `${version.replace('-', '~')}-${revision}`;
}

/** `nomad-driver-exec2_<debver>_amd64.deb`, the file name upstream's packages use. */
export function debFileName(version: string): string {
  return `${PACKAGE_NAME}_${debianVersion(version)}_${DEB_ARCH}.deb`;
}

/**
 * Compiled JavaScript that runs on a client: dist/src/** .js. Source maps are
 * left out (the launcher turns them off) and so are the tests and the bench.
 */
export function shipsDistFile(rel: string): boolean {
  return rel.startsWith('dist/src/') && rel.endsWith('.js');
}

/** Top-level directories of an npm package that hold its own tests, never loaded by its code. */
const PACKAGE_TEST_DIRS = new Set(['test', 'tests', '__tests__']);

/** Files inside an installed npm package (`rel` relative to it) that no client ever reads. */
export function shipsPackageFile(rel: string): boolean {
  const base = path.posix.basename(rel);
  const parts = rel.split('/');
  if (parts.includes('node_modules')) return false; // copied separately, if in the closure
  if (parts.length > 1 && PACKAGE_TEST_DIRS.has(parts[0]!)) return false;
  if (/\.(d\.[cm]?ts|ts|map|tsbuildinfo)$/.test(base) && !/\.node$/.test(base)) return false;
  return true;
}

export interface PackageJson {
  name?: string;
  version: string;
  description?: string;
  license?: string;
  engines?: Record<string, string>;
  os?: string[];
  bin?: Record<string, string>;
  main?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  scripts?: Record<string, string>;
}

/**
 * The package.json an install carries: what the code reads (name, version)
 * and what a person reads; no scripts (nothing may build on a client) and no
 * development dependencies.
 */
export function releasePackageJson(src: PackageJson, version: string): PackageJson {
  const deps = Object.fromEntries(Object.entries(src.dependencies ?? {}).filter(([n]) => !BUILD_ONLY_DEPENDENCIES.has(n)));
  return {
    name: src.name ?? PACKAGE_NAME,
    version: checkVersion(version),
    description: src.description,
    license: src.license,
    engines: src.engines,
    os: src.os,
    bin: src.bin,
    main: src.main,
    dependencies: deps,
  };
}

/**
 * The production dependency closure as Node resolves it: for each dependency
 * of a package, the nearest `node_modules/<name>` at or above that package's
 * directory. `exists(dir)` says whether a package directory is installed;
 * `read(dir)` gives its package.json. Missing optional dependencies (other
 * platforms' prebuilt binaries) are skipped; a missing required one is an
 * error. Returns package directories relative to `root`, sorted.
 */
export function productionClosure(root: string, rootPkg: PackageJson, exists: (dir: string) => boolean, read: (dir: string) => PackageJson): string[] {
  const found = new Set<string>();
  const resolveFrom = (fromDir: string, name: string): string | null => {
    for (let dir = fromDir; ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', name);
      if (exists(candidate)) return candidate;
      if (dir === root || !dir.startsWith(root)) return null;
    }
  };
  const visit = (pkgDir: string, pkg: PackageJson, skip: Set<string>): void => {
    const wanted: Array<[string, boolean]> = [
      ...Object.keys(pkg.dependencies ?? {}).filter((n) => !skip.has(n)).map((n): [string, boolean] => [n, false]),
      ...Object.keys(pkg.optionalDependencies ?? {}).map((n): [string, boolean] => [n, true]),
    ];
    for (const [name, optional] of wanted) {
      const dir = resolveFrom(pkgDir, name);
      if (dir === null) {
        if (optional) continue;
        throw new Error(`production dependency "${name}" of ${path.relative(root, pkgDir) || 'the project'} is not installed (run npm ci first)`);
      }
      const rel = path.relative(root, dir);
      if (found.has(rel)) continue;
      found.add(rel);
      visit(dir, read(dir), new Set());
    }
  };
  visit(root, rootPkg, BUILD_ONLY_DEPENDENCIES);
  return [...found].sort();
}

/** Debian requires a Maintainer; the project has no mail address, so `.invalid` says so (EXEC2_DEB_MAINTAINER overrides). */
export const DEFAULT_MAINTAINER = 'nomad-driver-exec2 maintainers <maintainers@nomad-driver-exec2.invalid>';

export interface ControlInput {
  version: string;
  maintainer: string;
  installedSizeKiB: number;
  /** from dpkg-shlibdeps for the addon, e.g. "libc6 (>= 2.34), libstdc++6 (>= 5)" */
  shlibs: string;
  description: string;
}

/**
 * Node must be >= 20.19. Debian 12's own nodejs is 18 and does not satisfy
 * this; Debian 13's (20.19) and NodeSource's nodejs 20.x/22.x packages do.
 * A Node installed outside dpkg satisfies nothing: docs/operators.md says
 * to use the tarball then (or an equivs package).
 */
export const NODE_DEPENDS = 'nodejs (>= 20.19)';

export function controlFile(c: ControlInput): string {
  const depends = [NODE_DEPENDS, ...c.shlibs.split(',').map((s) => s.trim()).filter(Boolean)].join(', ');
  const [summary, ...rest] = c.description.split('\n');
  const long = rest.length ? rest : ['Runs driver = "exec2" tasks as their own user, in their Nomad cgroup,', 'in fresh namespaces, under Landlock. Linked into /opt/nomad/data/plugins.'];
  return [
    `Package: ${PACKAGE_NAME}`,
    `Version: ${debianVersion(c.version)}`,
    `Architecture: ${DEB_ARCH}`,
    `Maintainer: ${c.maintainer}`,
    `Installed-Size: ${c.installedSizeKiB}`,
    `Depends: ${depends}`,
    'Section: admin',
    'Priority: optional',
    `Description: ${summary}`,
    ...long.map((l) => (l.trim() === '' ? ' .' : ` ${l}`)),
    '',
  ].join('\n');
}
