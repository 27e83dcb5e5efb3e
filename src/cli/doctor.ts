/**
 * `nomad-driver-exec2 doctor`: what the fingerprint would tell Nomad about
 * this host, and why, one line per fact with OK / WARN / FAIL and what to do.
 * The facts are the fingerprint's own (gatherHostFacts); the decisions are
 * pure functions of them so they are unit-tested without a host.
 */
import { lstatSync, readFileSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_PLUGIN_CONFIG, DEFAULT_STATE_DIR } from '../main/config/config';
import { INIT_HELPER_PATH, NATIVE_BUILD_DIR, PROJECT_ROOT } from '../native/binding';
import { fingerprintFromFacts, gatherHostFacts, REQUIRED_V1_CONTROLLERS, REQUIRED_V2_CONTROLLERS, type HostFacts } from '../main/fingerprint';
import { FingerprintResponse_HealthState as Health } from '../gen/hashicorp/nomad/plugins/drivers/driver';
import { MIN_NODE_VERSION, nodeVersionProblem } from '../main/node-version';
import { PLUGIN_VERSION } from '../main/version';
import { messageOf } from '../shared/errors';

export type Level = 'OK' | 'WARN' | 'FAIL';

export interface DoctorLine {
  level: Level;
  topic: string;
  /** what was found and, for WARN / FAIL, what to do */
  text: string;
}

/** What doctor reads besides the fingerprint's facts. */
export interface DoctorInputs {
  facts: HostFacts;
  nodeVersion: string;
  nodePath: string;
  stateDir: string;
  /** filesystem type holding stateDir (its nearest existing ancestor), null if unknown */
  stateDirFs: string | null;
  /** owner and mode of the files root runs from this install, and of the directories above them */
  installFiles: InstallFile[];
}

export interface InstallFile {
  path: string;
  uid: number;
  mode: number;
  /** part of the install itself (false: a directory above it, e.g. /opt) */
  own: boolean;
}

const LANDLOCK_SCOPES_ABI = 6;
const FAVORDYNMODS_KERNEL: [number, number] = [6, 0];

/** "6.1.0-18-amd64" → [6, 1]; null when unreadable. */
export function kernelVersion(release: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

const atLeast = (v: [number, number], min: [number, number]): boolean => v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1]);

export function kernelLine(release: string): DoctorLine {
  const v = kernelVersion(release);
  if (!v) return { level: 'WARN', topic: 'kernel', text: `cannot read the version of kernel "${release}"; exec2 needs Linux 5.13+ (5.14+ recommended)` };
  if (!atLeast(v, [5, 13])) return { level: 'FAIL', topic: 'kernel', text: `Linux ${release} is older than 5.13, which has no Landlock: boot a 5.14+ kernel` };
  if (!atLeast(v, [5, 14])) return { level: 'WARN', topic: 'kernel', text: `Linux ${release}: runs tasks, but 5.14+ is recommended (cgroup.kill makes stopping a task's processes atomic)` };
  return { level: 'OK', topic: 'kernel', text: `Linux ${release}` };
}

export function landlockLines(f: HostFacts): DoctorLine[] {
  if (f.nativeError) return [{ level: 'FAIL', topic: 'landlock', text: `cannot probe: the native addon did not load (${f.nativeError}); reinstall the release (its build/Release/exec2_native.node)` }];
  if (f.landlockAbi < 1) {
    return [{
      level: 'FAIL',
      topic: 'landlock',
      text: `not available on kernel ${f.kernel} (${f.landlockError ?? 'unknown reason'}): add landlock to the lsm= kernel parameter (e.g. lsm=landlock,lockdown,yama,integrity,apparmor,bpf) on Linux 5.13+; tasks never run unconfined, so the driver is unhealthy without it`,
    }];
  }
  const abi: DoctorLine = { level: 'OK', topic: 'landlock', text: `ABI ${f.landlockAbi}: every filesystem right of this ABI is enforced on tasks` };
  const scopes: DoctorLine = f.landlockAbi >= LANDLOCK_SCOPES_ABI
    ? { level: 'OK', topic: 'landlock scopes', text: `signal scoping on (ABI ${LANDLOCK_SCOPES_ABI}+): a task cannot signal its pid 1 or anything outside its own Landlock domain` }
    : {
        level: 'WARN',
        topic: 'landlock scopes',
        text: `none before ABI ${LANDLOCK_SCOPES_ABI} (Linux 6.12): a task running as root could signal its own pid 1 (other users are kept out by the pid namespace and permissions); a 6.12+ kernel closes that`,
      };
  return [abi, scopes];
}

export function cgroupLine(f: HostFacts): DoctorLine {
  const cg = f.cgroups;
  if (cg.mode === 'none') return { level: 'FAIL', topic: 'cgroups', text: 'no cgroup filesystem is mounted at /sys/fs/cgroup: mount cgroup2 there (systemd does)' };
  if (cg.mode === 'v2') {
    const missing = REQUIRED_V2_CONTROLLERS.filter((c) => !f.v2Controllers.includes(c));
    if (missing.length > 0) return { level: 'FAIL', topic: 'cgroups', text: `v2 at ${cg.root} without controllers ${missing.join(', ')}: enable them in ${cg.root}/cgroup.subtree_control (systemd does by default)` };
    return { level: 'OK', topic: 'cgroups', text: `v2 at ${cg.root}, controllers ${f.v2Controllers.join(' ')}` };
  }
  const missing = REQUIRED_V1_CONTROLLERS.filter((c) => !cg.v1.has(c));
  const kind = cg.mode === 'hybrid' ? `hybrid (v1 controllers, cgroup2 at ${cg.unified ?? '?'} without them; Nomad treats it as v1)` : 'v1';
  if (missing.length > 0) return { level: 'FAIL', topic: 'cgroups', text: `${kind}: controllers ${missing.join(', ')} not mounted: mount them, or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1)` };
  return { level: 'OK', topic: 'cgroups', text: `${kind}, controllers ${REQUIRED_V1_CONTROLLERS.join(' ')} mounted` };
}

export function favordynmodsLine(f: HostFacts): DoctorLine {
  if (f.cgroups.mode === 'v2') return { level: 'OK', topic: 'favordynmods', text: 'not needed on cgroup v2: tasks are cloned straight into their cgroup' };
  if (f.cgroups.mode === 'none') return { level: 'WARN', topic: 'favordynmods', text: 'no cgroups mounted, nothing to check' };
  if (f.cgroups.favorDynmods) return { level: 'OK', topic: 'favordynmods', text: 'on: joining a v1 task cgroup never waits for an RCU grace period' };
  const v = kernelVersion(f.kernel);
  if (v && !atLeast(v, FAVORDYNMODS_KERNEL)) {
    return { level: 'WARN', topic: 'favordynmods', text: `not available before Linux 6.0: a lone launch first waits for an RCU grace period (5-18 ms measured) to join its v1 cgroups; a 6.0+ kernel with favordynmods, or cgroup v2, removes the wait` };
  }
  return {
    level: 'WARN',
    topic: 'favordynmods',
    text: 'off: a lone launch first waits for an RCU grace period (5-18 ms measured) to join its v1 cgroups; boot with cgroup_favordynmods=true (Linux 6.7+) or mount a cgroup hierarchy with favordynmods (docs/operators.md, "Launch latency on cgroup v1 hosts")',
  };
}

const MEMORY_FILESYSTEMS = new Set(['tmpfs', 'ramfs']);

export function stateDirLine(stateDir: string, fsType: string | null): DoctorLine {
  if (fsType === null) return { level: 'WARN', topic: 'state_dir', text: `${stateDir}: cannot tell which filesystem holds it; keep it on tmpfs` };
  if (MEMORY_FILESYSTEMS.has(fsType)) return { level: 'OK', topic: 'state_dir', text: `${stateDir} is on ${fsType}` };
  return {
    level: 'WARN',
    topic: 'state_dir',
    text: `${stateDir} is on ${fsType}, not tmpfs: each task's status directory costs about 10x more to create and remove there (71 vs 7 µs measured); set the plugin's state_dir to a directory on tmpfs (e.g. under /run on systemd hosts)`,
  };
}

export function nodeLine(version: string, execPath: string): DoctorLine {
  const problem = nodeVersionProblem(version);
  if (problem) return { level: 'FAIL', topic: 'node', text: `Node.js ${version} at ${execPath}, needs >= ${MIN_NODE_VERSION}: install Node.js 20 (20.19+) or 22 and put it on the Nomad agent's PATH, or set EXEC2_NODE` };
  return { level: 'OK', topic: 'node', text: `Node.js ${version} at ${execPath} (needs >= ${MIN_NODE_VERSION})` };
}

export function nativeLines(f: HostFacts): DoctorLine[] {
  return [
    f.nativeError
      ? { level: 'FAIL', topic: 'native addon', text: `${f.nativeError}; reinstall the release artifact or package, which ships it prebuilt` }
      : { level: 'OK', topic: 'native addon', text: 'loaded' },
    f.initHelperError
      ? { level: 'FAIL', topic: 'init helper', text: `${f.initHelperError}; reinstall the release artifact or package, which ships it prebuilt` }
      : { level: 'OK', topic: 'init helper', text: 'present and executable' },
  ];
}

/**
 * Pure: the plugin runs as root and every task's pid 1 is exec2-init, so
 * anyone who can replace a file of the install, or rename within a directory
 * above it, runs code as root. All must be root's and not group/world-writable.
 */
export function installLine(files: InstallFile[]): DoctorLine {
  const unsafe = files.filter((f) => f.uid !== 0 || (f.mode & 0o022) !== 0);
  const desc = (fs: InstallFile[]): string => fs.map((f) => `${f.path} (uid ${f.uid}, mode ${(f.mode & 0o7777).toString(8)})`).join(', ');
  const own = unsafe.filter((f) => f.own);
  if (own.length > 0) return { level: 'FAIL', topic: 'install', text: `writable by someone other than root, who could then run code as root in the plugin and every task: ${desc(own)}; chown root:root and chmod go-w them` };
  if (unsafe.length > 0) return { level: 'WARN', topic: 'install', text: `a directory above the install is writable by someone other than root, who could swap the install (and whatever else is below it): ${desc(unsafe)}; chmod go-w it` };
  return { level: 'OK', topic: 'install', text: `owned by root and not writable by others, up to / (${files.length} files and directories checked)` };
}

/** Pure: every line doctor prints, the fingerprint's verdict last. */
export function doctorReport(inp: DoctorInputs): DoctorLine[] {
  const f = inp.facts;
  const lines: DoctorLine[] = [];
  if (f.platform !== 'linux') lines.push({ level: 'FAIL', topic: 'platform', text: `exec2 needs Linux (this is ${f.platform})` });
  lines.push(f.uid === 0
    ? { level: 'OK', topic: 'user', text: 'root' }
    : { level: 'FAIL', topic: 'user', text: `uid ${f.uid}: the driver must run as root (Nomad clients run as root); run doctor as root to see what the plugin sees` });
  lines.push(kernelLine(f.kernel), ...landlockLines(f), cgroupLine(f), favordynmodsLine(f), stateDirLine(inp.stateDir, inp.stateDirFs), nodeLine(inp.nodeVersion, inp.nodePath), ...nativeLines(f), installLine(inp.installFiles));
  const fp = fingerprintFromFacts(f, { ...DEFAULT_PLUGIN_CONFIG, stateDir: inp.stateDir });
  const healthy = fp.health === Health.HEALTHY;
  const name = healthy ? 'healthy' : fp.health === Health.UNDETECTED ? 'undetected' : 'unhealthy';
  lines.push({ level: healthy ? 'OK' : 'FAIL', topic: 'fingerprint', text: `Nomad would see the driver ${name}: "${fp.healthDescription}"` });
  return lines;
}

export function formatReport(lines: DoctorLine[]): string {
  const width = Math.max(...lines.map((l) => l.topic.length));
  return lines.map((l) => `${l.level.padEnd(4)}  ${l.topic.padEnd(width)}  ${l.text}`).join('\n') + '\n';
}

/** Pure: the filesystem type of the mount that holds `target` (longest mount point prefix). */
export function filesystemOf(target: string, mountinfo: string): string | null {
  let best: { point: string; fs: string } | null = null;
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const point = (line.slice(0, sep).split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const fs = line.slice(sep + 3).split(' ')[0] ?? '';
    const inside = point === '/' || target === point || target.startsWith(`${point}/`);
    // Later lines win on equal points: a mount stacked over another hides it.
    if (inside && (!best || point.length >= best.point.length)) best = { point, fs };
  }
  return best?.fs ?? null;
}

/** The real path of `p`'s nearest existing ancestor (state_dir may not exist yet). */
function existingRealPath(p: string): string {
  for (let dir = p; ; dir = path.dirname(dir)) {
    try {
      return realpathSync(dir);
    } catch {
      if (dir === '/') return '/';
    }
  }
}

/** The files root executes or loads from this install, and every directory above them up to /. */
function installFiles(): InstallFile[] {
  const paths = new Set<string>();
  const roots = [PROJECT_ROOT, path.join(PROJECT_ROOT, 'node_modules')].map((r) => {
    try {
      return realpathSync(r);
    } catch {
      return r;
    }
  });
  const isOwn = (p: string): boolean => roots.some((r) => p === r || p.startsWith(`${r}/`));
  for (const f of [INIT_HELPER_PATH, path.join(NATIVE_BUILD_DIR, 'exec2_native.node'), path.join(PROJECT_ROOT, 'dist', 'src', 'main', 'index.js'), path.join(PROJECT_ROOT, 'node_modules')]) {
    let p: string;
    try {
      p = realpathSync(f);
    } catch {
      continue; // missing: the native lines say so
    }
    paths.add(p);
    for (let d = path.dirname(p); ; d = path.dirname(d)) {
      paths.add(d);
      if (d === '/') break;
    }
  }
  const out: InstallFile[] = [];
  for (const p of [...paths].sort()) {
    try {
      const st = lstatSync(p);
      // The sticky bit on a directory (/tmp) stops others from renaming what root owns in it.
      const mode = st.isDirectory() && (st.mode & 0o1000) !== 0 ? st.mode & ~0o022 : st.mode;
      out.push({ path: p, uid: st.uid, mode, own: isOwn(p) });
    } catch {
      // vanished meanwhile
    }
  }
  return out;
}

export const DOCTOR_USAGE = `usage: nomad-driver-exec2 doctor [--state-dir DIR]

Prints what the driver's fingerprint would tell Nomad about this host and
why: one line per fact, OK / WARN / FAIL and what to do. Run it as root, the
way Nomad runs the plugin. --state-dir: the plugin's state_dir if it is not
the default ${DEFAULT_STATE_DIR}.
Exit status: 0 when nothing FAILs, 1 when something does, 2 for bad usage.`;

export function doctorCommand(argv: string[]): number {
  let stateDir = DEFAULT_STATE_DIR;
  try {
    const { values } = parseArgs({ args: argv, strict: true, options: { 'state-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      process.stdout.write(`${DOCTOR_USAGE}\n`);
      return 0;
    }
    if (values['state-dir'] !== undefined) {
      if (!path.isAbsolute(values['state-dir'])) throw new Error(`--state-dir must be an absolute path, got "${values['state-dir']}"`);
      stateDir = path.normalize(values['state-dir']);
    }
  } catch (err) {
    process.stderr.write(`nomad-driver-exec2 doctor: ${messageOf(err)}\n${DOCTOR_USAGE}\n`);
    return 2;
  }
  let mountinfo: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    mountinfo = '';
  }
  const lines = doctorReport({
    facts: gatherHostFacts(),
    nodeVersion: process.versions.node,
    nodePath: process.execPath,
    stateDir,
    stateDirFs: mountinfo ? filesystemOf(existingRealPath(stateDir), mountinfo) : null,
    installFiles: installFiles(),
  });
  process.stdout.write(`nomad-driver-exec2 ${PLUGIN_VERSION} doctor\n${formatReport(lines)}`);
  return lines.some((l) => l.level === 'FAIL') ? 1 : 0;
}
