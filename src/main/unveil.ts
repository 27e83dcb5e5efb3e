/**
 * Unveil rules: `mode:path` strings as the exec2 docs define them, and the
 * default path sets. Pure logic; the native init helper turns rules into a
 * Landlock ruleset.
 */
import * as path from 'node:path';

export interface UnveilRule {
  path: string;
  /** a subset of "rwxc", in that order */
  mode: string;
  /** skipped silently when the path does not exist (default sets only) */
  optional: boolean;
  /** the last component must not be a symlink: for paths the task itself can replace */
  noFollow?: boolean;
}

export class UnveilSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnveilSyntaxError';
  }
}

const MODE_ORDER = 'rwxc';

/** Parse `mode:path`; split at the last ':' like exec2. */
export function parseUnveil(spec: string, optional = false): UnveilRule {
  const i = spec.lastIndexOf(':');
  if (i <= 0) throw new UnveilSyntaxError(`unveil "${spec}": expected "mode:path", e.g. "r:/etc/mime.types"`);
  const modeRaw = spec.slice(0, i);
  const p = spec.slice(i + 1);
  for (const ch of modeRaw) {
    if (!MODE_ORDER.includes(ch)) {
      throw new UnveilSyntaxError(`unveil "${spec}": invalid mode "${modeRaw}" (use letters r, w, x, c)`);
    }
  }
  if (!p.startsWith('/')) throw new UnveilSyntaxError(`unveil "${spec}": path "${p}" must be absolute`);
  const mode = [...MODE_ORDER].filter((ch) => modeRaw.includes(ch)).join('');
  return { path: normalisePath(p), mode, optional };
}

export function normalisePath(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** go-landlock's shared-library set, as listed on the exec2 docs page. */
export const SHARED_OBJECT_PATHS = [
  'rx:/lib', 'rx:/lib64', 'rx:/usr/lib', 'rx:/usr/libexec', 'rx:/usr/local/lib', 'rx:/usr/local/lib64',
  'r:/etc/ld.so.conf', 'r:/etc/ld.so.cache', 'r:/etc/ld.so.conf.d',
] as const;

export const IO_PATHS = [
  'rwc:/tmp', 'rw:/dev/null', 'r:/dev/zero', 'r:/dev/fd', 'rw:/dev/stdin', 'rw:/dev/stdout', 'r:/dev/urandom',
  'w:/dev/log', 'r:/usr/share/locale', 'r:/proc/self/cmdline', 'r:/usr/share/zoneinfo',
  'r:/usr/share/common-licenses', 'r:/proc/sys/kernel/ngroups_max', 'r:/proc/sys/kernel/cap_last_cap',
  'r:/proc/sys/vm/overcommit_memory',
] as const;

export const DNS_PATHS = ['r:/etc/hosts', 'r:/hostname', 'r:/etc/services', 'r:/etc/protocols', 'r:/etc/resolv.conf'] as const;

export const CERTIFICATE_PATHS = [
  'r:/etc/ssl/certs', 'r:/etc/pki/tls/certs', 'r:/etc/ssl/ca-bundle.pem', 'r:/etc/pki/tls/cacert.pem',
  'r:/etc/pki/ca-trust-extracted/pem/tls-ca-bundle.pem', 'r:/etc/ssl/cert.pem',
] as const;

/** exec2 also lets tasks run programs from the usual bin directories. */
export const BIN_PATHS = ['rx:/bin', 'rx:/usr/bin', 'rx:/usr/local/bin'] as const;

export const DEFAULT_PATHS: readonly string[] = [...SHARED_OBJECT_PATHS, ...IO_PATHS, ...DNS_PATHS, ...CERTIFICATE_PATHS, ...BIN_PATHS];

/** Parsed once: every launch with defaults uses the same optional rules. */
const DEFAULT_RULES: readonly UnveilRule[] = DEFAULT_PATHS.map((s) => Object.freeze(parseUnveil(s, true)));

export interface TaskDirs {
  /** $NOMAD_TASK_DIR */
  taskDir: string;
  /** $NOMAD_ALLOC_DIR */
  allocDir: string;
  /** $NOMAD_SECRETS_DIR */
  secretsDir: string;
  stdoutPath: string;
  stderrPath: string;
}

export interface UnveilInputs {
  unveilDefaults: boolean;
  pluginPaths: readonly string[];
  taskPaths: readonly string[];
  dirs: TaskDirs;
}

/**
 * The full rule list for one task, in exec2's order: plugin paths, then (with
 * defaults) the task's own directories and the system sets, then the task's
 * unveil list; the log FIFOs are always writable.
 */
export function buildUnveilRules(inputs: UnveilInputs): UnveilRule[] {
  const rules: UnveilRule[] = inputs.pluginPaths.map((s) => parseUnveil(s));
  if (inputs.unveilDefaults) {
    const d = inputs.dirs;
    // The task owns the directory holding local/ and tmp/ (and every task of
    // the allocation can write alloc/logs): it can swap them for symlinks
    // between a start and the next start or exec session, whose rulesets
    // are built as root again. Never follow those.
    rules.push(
      ownPath(parseUnveil(`rwxc:${d.taskDir}`)),
      ownPath(parseUnveil(`rwxc:${d.allocDir}`)),
      parseUnveil(`rx:${d.allocDir}/logs`, true),
      ownPath(parseUnveil(`rwxc:${d.secretsDir}`, true)),
      ownPath(parseUnveil(`rwxc:${path.posix.dirname(d.taskDir)}/tmp`, true)),
    );
    rules.push(...DEFAULT_RULES);
  }
  for (const s of inputs.taskPaths) rules.push(parseUnveil(s));
  for (const fifo of [inputs.dirs.stdoutPath, inputs.dirs.stderrPath]) {
    if (fifo && fifo.startsWith('/') && fifo !== '/dev/null') rules.push(ownPath(parseUnveil(`w:${fifo}`, true)));
  }
  return rules;
}

const ownPath = (r: UnveilRule): UnveilRule => ({ ...r, noFollow: true });

const covers = (rule: UnveilRule, p: string): boolean => p === rule.path || p.startsWith(rule.path === '/' ? '/' : `${rule.path}/`);

/** Is `p` equal to or below one of the rule paths (the working directory check)? */
export function isUnveiled(p: string, rules: readonly UnveilRule[]): boolean {
  const n = normalisePath(p);
  return rules.some((r) => covers(r, n));
}

/** The first rule that would let a task write or create at `p`, if any. */
export function writableRuleFor(p: string, rules: readonly UnveilRule[]): UnveilRule | undefined {
  const n = normalisePath(p);
  return rules.find((r) => (r.mode.includes('w') || r.mode.includes('c')) && covers(r, n));
}
