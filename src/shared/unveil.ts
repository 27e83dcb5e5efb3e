/**
 * Unveil rules: `mode:path` strings as the exec2 docs define them, and the
 * default path sets. Pure logic; the native init helper turns rules into a
 * Landlock ruleset.
 */
import * as path from 'node:path';
import type { UnveilRule as NativeUnveilRule } from '../native/binding';

export interface UnveilRule {
  path: string;
  /** a subset of "rwxc", in that order */
  mode: string;
  /** skipped silently when the path does not exist (default sets only) */
  optional: boolean;
}

/** A rule as the init helper resolves it (native UnveilRule): see planUnveil. */
export type PlannedRule = Required<NativeUnveilRule>;

export class UnveilSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnveilSyntaxError';
  }
}

/** Parse `mode:path`; split at the last ':' like exec2. */
export function parseUnveil(spec: string, optional = false): UnveilRule {
  const i = spec.lastIndexOf(':');
  if (i <= 0) throw new UnveilSyntaxError(`unveil "${spec}": expected "mode:path", e.g. "r:/etc/mime.types"`);
  const modeRaw = spec.slice(0, i);
  const p = spec.slice(i + 1);
  // Code units, not code points: a surrogate is not one of r, w, x, c either way.
  for (let k = 0; k < modeRaw.length; k++) {
    const c = modeRaw.charCodeAt(k);
    if (c !== 0x72 && c !== 0x77 && c !== 0x78 && c !== 0x63) {
      throw new UnveilSyntaxError(`unveil "${spec}": invalid mode "${modeRaw}" (use letters r, w, x, c)`);
    }
  }
  if (!p.startsWith('/')) throw new UnveilSyntaxError(`unveil "${spec}": path "${p}" must be absolute`);
  return { path: normalisePath(p), mode: letters(modeRaw), optional };
}

/**
 * Whether `p` is an absolute path that path.posix.normalize returns
 * unchanged and that has no trailing slash: no empty component ("//"), no
 * "." or ".." component. Such a path is its own normalisePath, which every
 * launch's rules (Nomad's dirs, the default sets) almost always are; the
 * check is one pass over the characters and allocates nothing.
 */
export function isNormalAbsolute(p: string): boolean {
  const n = p.length;
  if (n === 0 || p.charCodeAt(0) !== 0x2f) return false;
  if (n === 1) return true;
  if (p.charCodeAt(n - 1) === 0x2f) return false;
  // At each '/', look at the component that follows it.
  for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) {
    const a = i + 1 < n ? p.charCodeAt(i + 1) : -1;
    if (a === 0x2f) return false; // "//"
    if (a === 0x2e) {
      const b = i + 2 < n ? p.charCodeAt(i + 2) : 0x2f;
      if (b === 0x2f) return false; // "/." component
      if (b === 0x2e && (i + 3 >= n || p.charCodeAt(i + 3) === 0x2f)) return false; // "/.." component
    }
  }
  return true;
}

export function normalisePath(p: string): string {
  if (isNormalAbsolute(p)) return p;
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
export const DEFAULT_RULES: readonly UnveilRule[] = Object.freeze(DEFAULT_PATHS.map((s) => Object.freeze(parseUnveil(s, true))));

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

/** The plugin's unveil_paths as rules (the first part of every task's list). */
export function pluginUnveilRules(pluginPaths: readonly string[]): UnveilRule[] {
  const rules: UnveilRule[] = [];
  for (const s of pluginPaths) rules.push(parseUnveil(s));
  return rules;
}

/** With unveil_defaults: the task's own directories, which come right after the plugin paths and before DEFAULT_RULES. */
export function taskDirRules(d: TaskDirs): UnveilRule[] {
  return [
    parseUnveil(`rwxc:${d.taskDir}`),
    parseUnveil(`rwxc:${d.allocDir}`),
    parseUnveil(`rx:${d.allocDir}/logs`, true),
    parseUnveil(`rwxc:${d.secretsDir}`, true),
    parseUnveil(`rwxc:${path.posix.dirname(d.taskDir)}/tmp`, true),
  ];
}

/** The end of the list: the task's unveil entries, then its log FIFOs (always writable), appended to `rules`. */
export function pushTaskPathRules(rules: UnveilRule[], taskPaths: readonly string[], dirs: Pick<TaskDirs, 'stdoutPath' | 'stderrPath'>): UnveilRule[] {
  for (const s of taskPaths) rules.push(parseUnveil(s));
  for (const fifo of [dirs.stdoutPath, dirs.stderrPath]) {
    if (fifo && fifo.startsWith('/') && fifo !== '/dev/null') rules.push(parseUnveil(`w:${fifo}`, true));
  }
  return rules;
}

/**
 * The full rule list for one task, in exec2's order: plugin paths, then (with
 * defaults) the task's own directories and the system sets, then the task's
 * unveil list; the log FIFOs are always writable. planUnveil decides how
 * each is resolved. (The sandbox assembles the same list from the same
 * parts, with the plugin's part parsed once per config.)
 */
export function buildUnveilRules(inputs: UnveilInputs): UnveilRule[] {
  const rules = pluginUnveilRules(inputs.pluginPaths);
  if (inputs.unveilDefaults) {
    rules.push(...taskDirRules(inputs.dirs));
    rules.push(...DEFAULT_RULES);
  }
  return pushTaskPathRules(rules, inputs.taskPaths, inputs.dirs);
}

/** Landlock and the init helper's limits (native/protocol.h). */
export const MAX_RULES = 4096;
export const MAX_ANCHORS = 64;

/** `p` equal to or below `dir`. */
export const isWithin = (p: string, dir: string): boolean =>
  // no `${dir}/` per call: the plan compares every rule with every anchor on each launch
  p === dir || (dir === '/' ? p.startsWith('/') : p.length > dir.length && p.charCodeAt(dir.length) === 0x2f && p.startsWith(dir));
const isBelow = (p: string, dir: string): boolean => p !== dir && isWithin(p, dir);
const covers = (rule: UnveilRule, p: string): boolean => isWithin(p, rule.path);
/** Components below `/`: the number of slashes (normalised paths), without a split per call (the sort below calls it per comparison). */
const depth = (p: string): number => {
  if (p === '/') return 0;
  let n = 0;
  for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) n++;
  return n;
};
/** The letters of `mode` among r, w, x, c, once each, in that order (a declaration: parseUnveil runs at load time for DEFAULT_RULES). */
function letters(mode: string): string {
  let out = '';
  if (mode.includes('r')) out += 'r';
  if (mode.includes('w')) out += 'w';
  if (mode.includes('x')) out += 'x';
  if (mode.includes('c')) out += 'c';
  return out;
}
function hasAll(mode: string, of: string): boolean {
  for (let i = 0; i < of.length; i++) if (!mode.includes(of.charAt(i))) return false;
  return true;
}

/** /proc/self/... and /proc/thread-self/...: per-process paths. */
const PROC_SELF = /^\/proc\/(self|thread-self)(\/|$)/;

export interface UnveilPlan {
  /** in resolution order: every anchor before the rules resolved beneath it */
  rules: PlannedRule[];
  /** the anchor a path is resolved beneath (or is), -1 when none: for the working directory */
  beneath(p: string): number;
}

/**
 * How the init helper resolves each rule, as root, every time it builds a
 * ruleset (each start and each exec session). Pure.
 *
 * - Anchors: every directory the task can modify (a rule with "c") and the
 *   task's and allocation's roots (`untrustedRoots`), which the task or
 *   another task of its allocation may fill with symlinks at any moment.
 *   Every rule below an anchor is resolved from the anchor's fd without
 *   following any symlink (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so a
 *   planted symlink fails the launch instead of widening the rule. Paths
 *   above every anchor belong to the host and are opened as they are.
 * - A rule that grants nothing beyond a non-optional ancestor rule is
 *   dropped (rx:<alloc>/logs below rwxc:<alloc>).
 * - "r" on /proc/self/... (or thread-self) becomes "r" on the task's private
 *   /proc: a rule names an inode, and every process of the task has its own
 *   /proc/<pid> inodes, so only /proc itself reaches all of them. The task's
 *   pid namespace limits /proc/<pid> to the task's own processes; other
 *   letters keep the precise rule (first process only).
 */
export function planUnveil(input: readonly UnveilRule[], untrustedRoots: readonly string[]): UnveilPlan {
  // 1. /proc/self, and 2. one entry per path: the union of letters; optional
  //    only if every copy is. One pass; entries keep the order of first
  //    appearance, which the stable sort in 4. preserves.
  const byPath = new Map<string, Entry>();
  for (let i = 0; i < input.length; i++) {
    const r = input[i]!;
    // The regex only for what can match it (most rules are not below /proc).
    if (!r.path.startsWith('/proc/') || !PROC_SELF.test(r.path)) {
      mergeEntry(byPath, r.path, r.mode, r.optional);
      continue;
    }
    if (r.mode.includes('r')) mergeEntry(byPath, '/proc', 'r', true);
    const rest = r.mode.replace('r', '');
    if (rest) mergeEntry(byPath, r.path, rest, r.optional);
  }
  for (const root of untrustedRoots) {
    // A relative root would be opened relative to the init helper's cwd, and
    // has no ancestor chain ending at "/" (dirname(".") is ".").
    if (!root.startsWith('/')) throw new UnveilSyntaxError(`unveil: the task directory "${root}" is not an absolute path`);
    const e = byPath.get(root);
    if (e) e.anchor = true;
    else byPath.set(root, newEntry(root, '', false, true));
  }

  // 3. drop what an ancestor already grants (an anchor-only root: when an
  //    ancestor anchor resolves everything below it safely anyway)
  //    An entry's ancestors are its path's prefixes: look each one up rather
  //    than compare every pair (a job may send thousands of rules).
  const kept: Entry[] = [];
  for (const e of byPath.values()) {
    if (e.mode.includes('c')) e.anchor = true;
  }
  for (const e of byPath.values()) if (!grantedAbove(byPath, e)) kept.push(e);

  // 4. anchors first (shallower first), each rule beneath its nearest anchor
  for (const e of kept) e.depth = depth(e.path);
  kept.sort(byDepth);
  if (kept.length > MAX_RULES) throw new UnveilSyntaxError(`unveil: ${kept.length} rules; at most ${MAX_RULES} are supported`);
  const anchors: string[] = [];
  const rules: PlannedRule[] = new Array<PlannedRule>(kept.length);
  for (let i = 0; i < kept.length; i++) {
    const e = kept[i]!;
    rules[i] = { path: e.path, mode: e.mode, optional: e.optional, anchor: e.anchor, beneath: nearestAnchor(anchors, e.path, true) };
    if (e.anchor) anchors.push(e.path);
  }
  if (anchors.length > MAX_ANCHORS) {
    throw new UnveilSyntaxError(`unveil: ${anchors.length} writable ("c") paths and task directories; at most ${MAX_ANCHORS} are supported`);
  }
  return { rules, beneath: (p) => nearestAnchor(anchors, normalisePath(p), false) };
}

/** planUnveil's working entry for one path. */
interface Entry { path: string; mode: string; optional: boolean; anchor: boolean; depth: number }

function newEntry(p: string, mode: string, optional: boolean, anchor: boolean): Entry {
  return { path: p, mode, optional, anchor, depth: 0 };
}

function mergeEntry(byPath: Map<string, Entry>, p: string, mode: string, optional: boolean): void {
  const e = byPath.get(p);
  if (e) {
    e.mode = letters(e.mode + mode);
    e.optional = e.optional && optional;
  } else {
    byPath.set(p, newEntry(p, mode, optional, false));
  }
}

const byDepth = (x: Entry, y: Entry): number => x.depth - y.depth;

/**
 * Some ancestor of `e` grants it already. For a normalised absolute path
 * (nearly every one) the parent is the prefix before the last '/', which is
 * what path.posix.dirname returns for such a path; any other path walks
 * with dirname itself, so the chain of lookups is the same either way.
 */
function grantedAbove(byPath: Map<string, Entry>, e: Entry): boolean {
  const simple = isNormalAbsolute(e.path);
  for (let p = e.path; p !== '/';) {
    let parent: string;
    if (simple) {
      const i = p.lastIndexOf('/');
      parent = i <= 0 ? '/' : p.slice(0, i);
    } else {
      parent = path.posix.dirname(p);
    }
    if (parent === p) break; // no way up (only a relative path, which no rule or root is)
    p = parent;
    const a = byPath.get(p);
    if (a && !a.optional && (e.mode === '' ? a.anchor : a.mode !== '' && hasAll(a.mode, e.mode))) return true;
  }
  return false;
}

/** Index of the longest anchor `p` is below (strict) or within, -1 for none; the first such on a tie, like a forward scan keeping only longer ones. */
function nearestAnchor(anchors: readonly string[], p: string, strict: boolean): number {
  let best = -1;
  let bestLen = -1;
  for (let k = 0; k < anchors.length; k++) {
    const a = anchors[k]!;
    if ((strict ? isBelow(p, a) : isWithin(p, a)) && (best < 0 || a.length > bestLen)) {
      best = k;
      bestLen = a.length;
    }
  }
  return best;
}

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
