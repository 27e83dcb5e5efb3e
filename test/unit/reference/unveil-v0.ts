/**
 * The launch plan's unveil code as it was before the plan was made cheaper
 * (commit 68afbc6, src/shared/unveil.ts): kept verbatim as the oracle of
 * test/unit/plan-cache.test.ts, which checks that the fast version gives the
 * same rules and the same errors on many generated inputs. Not used by the
 * driver.
 */
import * as path from 'node:path';
import type { UnveilRule as NativeUnveilRule } from '../../../src/native/binding';

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
 * unveil list; the log FIFOs are always writable. planUnveil decides how
 * each is resolved.
 */
export function buildUnveilRules(inputs: UnveilInputs): UnveilRule[] {
  const rules: UnveilRule[] = inputs.pluginPaths.map((s) => parseUnveil(s));
  if (inputs.unveilDefaults) {
    const d = inputs.dirs;
    rules.push(
      parseUnveil(`rwxc:${d.taskDir}`),
      parseUnveil(`rwxc:${d.allocDir}`),
      parseUnveil(`rx:${d.allocDir}/logs`, true),
      parseUnveil(`rwxc:${d.secretsDir}`, true),
      parseUnveil(`rwxc:${path.posix.dirname(d.taskDir)}/tmp`, true),
    );
    rules.push(...DEFAULT_RULES);
  }
  for (const s of inputs.taskPaths) rules.push(parseUnveil(s));
  for (const fifo of [inputs.dirs.stdoutPath, inputs.dirs.stderrPath]) {
    if (fifo && fifo.startsWith('/') && fifo !== '/dev/null') rules.push(parseUnveil(`w:${fifo}`, true));
  }
  return rules;
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
const letters = (mode: string): string => [...MODE_ORDER].filter((ch) => mode.includes(ch)).join('');
const hasAll = (mode: string, of: string): boolean => [...of].every((ch) => mode.includes(ch));

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
  // 1. /proc/self
  const expanded: UnveilRule[] = [];
  for (const r of input) {
    if (!PROC_SELF.test(r.path)) {
      expanded.push(r);
      continue;
    }
    if (r.mode.includes('r')) expanded.push({ path: '/proc', mode: 'r', optional: true });
    const rest = r.mode.replace('r', '');
    if (rest) expanded.push({ ...r, mode: rest });
  }
  // 2. one entry per path: the union of letters; optional only if every copy is
  interface Entry { path: string; mode: string; optional: boolean; anchor: boolean }
  const byPath = new Map<string, Entry>();
  for (const r of expanded) {
    const e = byPath.get(r.path);
    if (e) {
      e.mode = letters(e.mode + r.mode);
      e.optional = e.optional && r.optional;
    } else {
      byPath.set(r.path, { path: r.path, mode: r.mode, optional: r.optional, anchor: false });
    }
  }
  for (const root of untrustedRoots) {
    const e = byPath.get(root);
    if (e) e.anchor = true;
    else byPath.set(root, { path: root, mode: '', optional: false, anchor: true });
  }
  for (const e of byPath.values()) if (e.mode.includes('c')) e.anchor = true;

  // 3. drop what an ancestor already grants (an anchor-only root: when an
  //    ancestor anchor resolves everything below it safely anyway)
  //    An entry's ancestors are its path's prefixes: look each one up rather
  //    than compare every pair (a job may send thousands of rules).
  const grantedAbove = (e: Entry): boolean => {
    for (let p = e.path; p !== '/';) {
      p = path.posix.dirname(p);
      const a = byPath.get(p);
      if (a && !a.optional && (e.mode === '' ? a.anchor : a.mode !== '' && hasAll(a.mode, e.mode))) return true;
    }
    return false;
  };
  const kept = [...byPath.values()].filter((e) => !grantedAbove(e));

  // 4. anchors first (shallower first), each rule beneath its nearest anchor
  const depths = new Map<Entry, number>(kept.map((e) => [e, depth(e.path)]));
  kept.sort((x, y) => depths.get(x)! - depths.get(y)!);
  if (kept.length > MAX_RULES) throw new UnveilSyntaxError(`unveil: ${kept.length} rules; at most ${MAX_RULES} are supported`);
  const anchors: string[] = [];
  const nearest = (p: string, strict: boolean): number => {
    let best = -1;
    anchors.forEach((a, k) => {
      if ((strict ? isBelow(p, a) : isWithin(p, a)) && (best < 0 || a.length > anchors[best]!.length)) best = k;
    });
    return best;
  };
  const rules: PlannedRule[] = kept.map((e) => {
    const planned: PlannedRule = { path: e.path, mode: e.mode, optional: e.optional, anchor: e.anchor, beneath: nearest(e.path, true) };
    if (e.anchor) anchors.push(e.path);
    return planned;
  });
  if (anchors.length > MAX_ANCHORS) {
    throw new UnveilSyntaxError(`unveil: ${anchors.length} writable ("c") paths and task directories; at most ${MAX_ANCHORS} are supported`);
  }
  return { rules, beneath: (p) => nearest(normalisePath(p), false) };
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
