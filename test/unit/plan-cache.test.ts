/**
 * The launch plan's per-config caches and fast paths (src/main/tasks/sandbox.ts
 * pluginPart, capabilityChoice's memo, src/shared/unveil.ts): a new config
 * gives a new plan, every security check still refuses, and on thousands of
 * generated inputs — hostile ones included — the results and errors are
 * exactly those of the plan before it was made cheaper (test/unit/reference/,
 * the code of commit 68afbc6). Pure, no root.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Mount, TaskConfig } from '../../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { NetworkIsolationSpec_NetworkIsolationMode as NetMode } from '../../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { encodeObject } from '../../src/main/config/cty';
import { DEFAULT_PLUGIN_CONFIG, PLUGIN_CONFIG_SCHEMA, TASK_CONFIG_SCHEMA, parsePluginConfig, type PluginConfig } from '../../src/main/config/config';
import { launchPlan } from '../../src/main/tasks/launch-plan';
import { capabilityChoice, exposure, hiddenDirs, taskSandbox, type SandboxBlock } from '../../src/main/tasks/sandbox';
import { layoutFromMounts } from '../../src/shared/cgroups/detect';
import type { TaskCgroup } from '../../src/shared/cgroups/task-cgroup';
import { DriverError } from '../../src/shared/errors';
import { taskCapabilities } from '../../src/shared/capabilities';
import { normalisePath, parseUnveil, planUnveil, type UnveilRule } from '../../src/shared/unveil';
import * as v0 from './reference/unveil-v0';
import * as sandboxV0 from './reference/sandbox-v0';

/** Deterministic generator (xorshift32): a failure names its seed and is reproducible. */
function rng(seed: number): { int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean; some<T>(xs: readonly T[], max: number): T[] } {
  let x = seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 2 ** 32;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    int,
    pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]!,
    chance: (p: number) => next() < p,
    some: <T>(xs: readonly T[], max: number): T[] => Array.from({ length: int(max + 1) }, () => xs[int(xs.length)]!),
  };
}

/** The outcome of a call: its value, or the error's class, code and message. */
function outcome<T>(fn: () => T): { ok: T } | { err: string } {
  try {
    return { ok: fn() };
  } catch (err) {
    if (err instanceof DriverError) return { err: `${err.name}/${err.code}: ${err.message}` };
    if (err instanceof Error) return { err: `${err.name}: ${err.message}` };
    throw err;
  }
}

const STATE_DIRS = ['/run/nomad-driver-exec2', '/var/lib/exec2', '/tmp/exec2-state', '/srv/data/state', '/srv/data'];
const PLUGIN_PATHS = ['rx:/opt/bench', 'r:/', 'rwc:/run', 'r:/run/nomad-driver-exec2/x', 'rw:/srv//data/', 'rwc:/tmp/../var', 'x:/usr/local/bin', 'r:/proc/self/status', 'rwc:/var/lib/nomad', 'r:/var/lib/exec2', 'w:/srv/data/state/../log'];
const ALLOC_BASES = ['/var/lib/nomad/alloc', '/tmp/nomad/alloc', '/srv/data/alloc', '/run/nomad-driver-exec2/alloc', '/var/lib//nomad/./alloc', '/a:b/alloc', '/var/lib/nomad/alloc/'];
const TASK_PATHS = ['r:/etc/mime.types', 'rwc:/srv/shared', 'rx:/srv/shared/bin', 'q:/x', 'r:rel', '/noseparator', 'rwc:/run/nomad-driver-exec2', 'r:/var/lib/nomad/alloc/../..', 'rw:/proc/self/attr/current', 'r:/proc/thread-self/mountinfo', 'rwxc:/tmp', 'c:/var/lib/exec2/tasks', 'rrr:/usr//share/', 'w:/srv/data', 'r:/'];
const WORK_DIRS = [null, 'work', 'local/x', '/usr', '/etc/hosts', '/srv/shared/bin/'];
const CAP_ADD = [[], ['net_bind_service'], ['sys_admin'], ['CAP_KILL', 'chown'], ['bogus']];
const CAP_DROP = [[], ['all'], ['chown'], ['ALL', 'kill']];

function genConfig(r: ReturnType<typeof rng>): PluginConfig {
  return {
    ...DEFAULT_PLUGIN_CONFIG,
    unveilDefaults: r.chance(0.7),
    unveilByTask: r.chance(0.7),
    unveilPaths: r.some(PLUGIN_PATHS, 2),
    stateDir: r.pick(STATE_DIRS),
    privateTmp: r.chance(0.5),
    allowCaps: r.chance(0.8) ? DEFAULT_PLUGIN_CONFIG.allowCaps : [21, 5],
  };
}

function genCgroup(r: ReturnType<typeof rng>, allocId: string): TaskCgroup | null {
  const k = r.int(4);
  if (k === 0) return null;
  if (k === 1) return { mode: 'v2', dir: r.pick(['/sys/fs/cgroup/nomad.slice/share.slice/x.scope', '/sys/fs/cgroup/nomad.slice/x.scope/']) };
  const dirs: Record<string, string> = { cpuset: r.pick(['/sys/fs/cgroup/cpuset/nomad/share', `/sys/fs/cgroup/cpuset/nomad/reserve/${allocId}.t`]), memory: `/sys/fs/cgroup/memory/nomad/${allocId}.t`, pids: `/sys/fs/cgroup/pids/nomad/${allocId}.t` };
  return { mode: 'v1', dirs, created: [] };
}

function genTask(r: ReturnType<typeof rng>, i: number): { cfg: TaskConfig; block: SandboxBlock; cgroup: TaskCgroup | null } {
  const allocId = `a${i}`;
  const allocDir = `${r.pick(ALLOC_BASES)}/${allocId}`;
  const name = r.pick(['t', 'web', '..', 'x/y']);
  // Sometimes variables the task must not get, an integer-like name (ordered first) or an own
  // "__proto__" (JSON.parse makes one; Nomad's decoded map cannot).
  const env: Record<string, string> = r.chance(0.2) ? JSON.parse('{"PATH":"/usr/bin","__proto__":"x","LANG":"C"}') as Record<string, string> : { PATH: '/usr/bin:/bin', LANG: 'C' };
  if (r.chance(0.3)) env.LD_PRELOAD = '/x.so';
  if (r.chance(0.3)) env.DISPLAY = ':0';
  if (r.chance(0.3)) env['7'] = 'seven';
  if (r.chance(0.8)) env.NOMAD_TASK_DIR = r.chance(0.05) ? 'local' : r.pick([`${allocDir}/${name}/local`, `${allocDir}/t/local/`, `${allocDir}//t/./local`, '/tmp/t/local']);
  if (r.chance(0.8)) env.NOMAD_ALLOC_DIR = r.pick([`${allocDir}/alloc`, `${allocDir}/alloc/`, '/tmp/alloc']);
  if (r.chance(0.8)) env.NOMAD_SECRETS_DIR = r.pick([`${allocDir}/${name}/secrets`, `${allocDir}/t/../t/secrets`]);
  if (r.chance(0.2)) env.GOMAXPROCS = '3';
  const logs = `${allocDir}/alloc/logs`;
  const mounts: Mount[] = r.chance(0.25)
    ? r.some([
      { taskPath: '/data', hostPath: '/srv/vol', readonly: false, propagationMode: '', selinuxLabel: '', requestName: 'v' },
      { taskPath: 'ro/', hostPath: '/srv/ro', readonly: true, propagationMode: 'private', selinuxLabel: '', requestName: 'r' },
      { taskPath: 'local', hostPath: '/srv/x', readonly: false, propagationMode: '', selinuxLabel: '', requestName: 'bad' },
    ], 2)
    : [];
  const cfg = {
    id: `${allocId}/${name}/0`,
    name,
    allocDir,
    allocId,
    env,
    stdoutPath: r.pick([`${logs}/.t.stdout.fifo`, '', '/dev/null', 'rel.fifo', '/tmp/logs/.t.stdout.fifo']),
    stderrPath: r.pick([`${logs}/.t.stderr.fifo`, '', '/tmp/other/.t.stderr.fifo']),
    mounts,
    resources: r.chance(0.5) ? { linuxResources: { cpusetCpus: r.pick(['', '0-1']), cpuShares: 500 }, allocatedResources: { cpu: { cpuShares: 1500 } } } : undefined,
    networkIsolationSpec: r.chance(0.2) ? { mode: r.pick([NetMode.HOST, NetMode.GROUP, NetMode.TASK]), path: r.pick(['', '/var/run/netns/x']), labels: {}, hostsConfig: undefined } : undefined,
  } as unknown as TaskConfig;
  const block: SandboxBlock = {
    unveil: r.chance(0.3) ? r.some(TASK_PATHS, 3) : [],
    workDir: r.chance(0.6) ? null : r.pick(WORK_DIRS),
    oomScoreAdj: r.chance(0.5) ? 300 : null,
    capAdd: r.chance(0.5) ? [] : r.pick(CAP_ADD),
    capDrop: r.pick(CAP_DROP),
  };
  return { cfg, block, cgroup: genCgroup(r, allocId) };
}

describe('launch plan caches and fast paths', () => {
  const task = (over: Partial<TaskConfig> = {}): TaskConfig => {
    const allocDir = '/var/lib/nomad/alloc/a1';
    return {
      id: 'a1/t/0', name: 't', allocDir, allocId: 'a1', mounts: [], stdoutPath: `${allocDir}/alloc/logs/.t.stdout.fifo`, stderrPath: `${allocDir}/alloc/logs/.t.stderr.fifo`,
      env: { NOMAD_TASK_DIR: `${allocDir}/t/local`, NOMAD_ALLOC_DIR: `${allocDir}/alloc`, NOMAD_SECRETS_DIR: `${allocDir}/t/secrets` },
      ...over,
    } as unknown as TaskConfig;
  };
  const block: SandboxBlock = { unveil: [], workDir: null, oomScoreAdj: null, capAdd: [], capDrop: [] };
  const config = (attrs: Record<string, unknown>): PluginConfig => parsePluginConfig(encodeObject(attrs as Parameters<typeof encodeObject>[0], PLUGIN_CONFIG_SCHEMA));

  describe('a new SetConfig gives the new plan', () => {
    it('different unveil_paths: the second config\'s rules, not the first\'s', () => {
      const a = config({ unveil_paths: ['rx:/opt/a'] });
      const b = config({ unveil_paths: ['rx:/opt/b'] });
      const paths = (c: PluginConfig) => taskSandbox(task(), block, c, ['/run/nomad-driver-exec2/sockets']).unveil.map((r) => r.path);
      assert.ok(paths(a).includes('/opt/a'));
      assert.ok(paths(b).includes('/opt/b') && !paths(b).includes('/opt/a'));
      assert.ok(paths(a).includes('/opt/a') && !paths(a).includes('/opt/b'), 'the first config still plans its own rules');
    });

    it('different state_dir: new status dir and mask, and a plugin rule exposing the new state_dir is refused', () => {
      const a = config({ state_dir: '/srv/exec2-a', unveil_paths: ['rwc:/srv/exec2-b'] });
      const b = config({ state_dir: '/srv/exec2-b', unveil_paths: ['rwc:/srv/exec2-b'] });
      const layout = layoutFromMounts([{ mountPoint: '/sys/fs/cgroup', fsType: 'cgroup2', controllers: [], favorDynmods: false }]);
      const cfg = task({ resources: { linuxResources: { cpusetCgroup: '/sys/fs/cgroup/nomad.slice/x.scope' } } } as unknown as Partial<TaskConfig>);
      cfg.msgpackDriverConfig = Buffer.from(encodeObject({ command: '/bin/true' }, TASK_CONFIG_SCHEMA));
      cfg.user = 'nomad-80000';
      const inputs = (c: PluginConfig) => ({ config: c, compute: null, pluginDirs: [], layout, initPath: '/x', receivedNs: 0n });
      const planA = launchPlan(cfg, inputs(a));
      assert.match(planA.req.statusDir, /^\/srv\/exec2-a\/tasks\/a1_t_0\.[0-9a-f]{64}$/);
      assert.deepEqual(planA.req.masks, ['/srv/exec2-a']);
      assert.throws(() => launchPlan(cfg, inputs(b)), (e: DriverError) => e.code === 'FAILED_PRECONDITION' && /\/srv\/exec2-b .*"rwc:\/srv\/exec2-b"/.test(e.message));
      assert.equal(launchPlan(cfg, inputs(a)).req.statusDir, planA.req.statusDir, 'and the first config still plans as before');
    });

    it('a config edited in place (hand-made, not from parsePluginConfig) is not served stale values', () => {
      const c: PluginConfig = { ...DEFAULT_PLUGIN_CONFIG, unveilPaths: ['rx:/opt/a'] };
      assert.ok(taskSandbox(task(), block, c).unveil.some((r) => r.path === '/opt/a'));
      c.unveilPaths = ['rx:/opt/z'];
      c.stateDir = '/srv/s';
      const after = taskSandbox(task(), block, c);
      assert.ok(after.unveil.some((r) => r.path === '/opt/z') && !after.unveil.some((r) => r.path === '/opt/a'));
      assert.deepEqual(after.masks, ['/srv/s']);
    });

    it('configs from SetConfig are frozen, so what the cache keys on cannot change under it', () => {
      const c = config({ unveil_paths: ['rx:/opt/a'] });
      assert.ok(Object.isFrozen(c) && Object.isFrozen(c.unveilPaths) && Object.isFrozen(c.allowCaps));
      assert.ok(Object.isFrozen(DEFAULT_PLUGIN_CONFIG) && Object.isFrozen(DEFAULT_PLUGIN_CONFIG.unveilPaths));
    });
  });

  describe('every check still refuses, on every launch', () => {
    it('a plugin rule exposing state_dir: refused each time, where exposure() on the whole list says', () => {
      const c = config({ unveil_paths: ['rwc:/run'] });
      for (let i = 0; i < 3; i++) {
        assert.throws(() => taskSandbox(task(), block, c, ['/run/nomad-driver-exec2/sockets']), (e: DriverError) => e.code === 'FAILED_PRECONDITION' && e.message === exposure([parseUnveil('rwc:/run')], hiddenDirs(c, ['/run/nomad-driver-exec2/sockets'])));
      }
    });

    it('a task entry naming the socket dir or state_dir, or climbing into it with ..', () => {
      const c = { ...DEFAULT_PLUGIN_CONFIG, unveilByTask: true };
      for (const entry of ['r:/run/nomad-driver-exec2/sockets', 'r:/run/nomad-driver-exec2', 'rwc:/var/lib/../../run/nomad-driver-exec2/tasks', 'rw:/run']) {
        assert.throws(() => taskSandbox(task(), { ...block, unveil: [entry] }, c, ['/run/nomad-driver-exec2/sockets']), (e: DriverError) => e.code === 'FAILED_PRECONDITION', entry);
      }
    });

    it('a relative alloc_dir is INVALID_ARGUMENT (the planner no longer loops forever on its "." ancestor)', () => {
      assert.throws(() => taskSandbox(task({ allocDir: 'rel' }), block, DEFAULT_PLUGIN_CONFIG), (e: DriverError) => e.code === 'INVALID_ARGUMENT' && /"rel" is not an absolute path/.test(e.message));
      const env = { NOMAD_TASK_DIR: '/var/lib/nomad/alloc/a1/t/local', NOMAD_SECRETS_DIR: '/var/lib/nomad/alloc/a1/t/secrets' };
      assert.throws(() => taskSandbox(task({ allocDir: '', env }), block, { ...DEFAULT_PLUGIN_CONFIG, unveilDefaults: false }), (e: DriverError) => e.code === 'INVALID_ARGUMENT');
      assert.throws(() => planUnveil([], ['.']), /is not an absolute path/);
    });
  });

  describe('capabilities per (allow_caps, cap_add, cap_drop)', () => {
    it('the same sets as taskCapabilities, in arrays of its own each time', () => {
      const b = { capAdd: ['net_bind_service'], capDrop: ['chown'] };
      const first = capabilityChoice(b, DEFAULT_PLUGIN_CONFIG);
      const input = { allow: DEFAULT_PLUGIN_CONFIG.allowCaps, add: b.capAdd, drop: b.capDrop };
      assert.deepEqual(first, { root: taskCapabilities({ ...input, root: true }), user: taskCapabilities({ ...input, root: false }) });
      first.root.bounding.push(21);
      first.user.ambient.length = 0;
      const second = capabilityChoice(b, DEFAULT_PLUGIN_CONFIG);
      assert.deepEqual(second, { root: taskCapabilities({ ...input, root: true }), user: taskCapabilities({ ...input, root: false }) });
    });

    it('a new allow_caps gives new sets; a refused cap_add is refused every time', () => {
      const b = { capAdd: ['sys_admin'], capDrop: [] };
      assert.throws(() => capabilityChoice(b, DEFAULT_PLUGIN_CONFIG), (e: DriverError) => e.code === 'FAILED_PRECONDITION');
      const wide = { ...DEFAULT_PLUGIN_CONFIG, allowCaps: [...DEFAULT_PLUGIN_CONFIG.allowCaps, 21].sort((x, y) => x - y) };
      assert.ok(capabilityChoice(b, wide).user.bounding.includes(21));
      assert.throws(() => capabilityChoice(b, DEFAULT_PLUGIN_CONFIG), (e: DriverError) => e.code === 'FAILED_PRECONDITION');
    });

    it('lists that join to the same string are different keys', () => {
      const c = { ...DEFAULT_PLUGIN_CONFIG };
      assert.ok(capabilityChoice({ capAdd: ['kill', 'chown'], capDrop: [] }, c).user.bounding.length === 2);
      assert.throws(() => capabilityChoice({ capAdd: ['kill","chown'], capDrop: [] }, c), (e: DriverError) => e.code === 'INVALID_ARGUMENT');
    });
  });

  describe('the same results and errors as before (differential, generated inputs)', () => {
    it('taskSandbox on 4,000 generated configs and tasks equals the plan of commit 68afbc6', () => {
      const r = rng(0x5eed);
      const configs = Array.from({ length: 40 }, () => genConfig(r));
      let errors = 0;
      for (let i = 0; i < 4000; i++) {
        const config = r.pick(configs); // reused objects: cache hits and misses both
        const pluginDirs = r.pick([[], ['/run/nomad-driver-exec2/sockets'], ['/tmp/sock'], ['/srv/data/state/sock', '/opt/x']]);
        const { cfg, block: b, cgroup } = genTask(r, i);
        const host = { cgroup, compute: r.chance(0.5) ? { totalMhz: 5000, cores: 2, mhzPerCore: 2500, usableMhz: 5000 } : null };
        const now = outcome(() => taskSandbox(cfg, b, config, pluginDirs, host));
        const then = outcome(() => sandboxV0.taskSandbox(cfg, b, config, pluginDirs, host));
        assert.deepEqual(now, then, `case ${i}`);
        if ('err' in now) {
          errors++;
          if (process.env.PLAN_CACHE_DEBUG) process.stdout.write(`${now.err.slice(0, 90)}\n`);
        }
      }
      // Both branches are exercised in earnest.
      assert.ok(errors > 400 && errors < 3400, `${errors} of 4000 cases were errors`);
    });

    it('planUnveil and exposure on generated rule lists (unnormalised hand-made rules, /proc/self, duplicates)', () => {
      const r = rng(42);
      const paths = ['/', '/a', '/a/b', '/a/b/c', '/a//b', '/a/b/', '/a/./b', '/a/../b', '/proc/self/x', '/proc/thread-self', '/proc/selfish', '/tmp', '/tmp/t', '/run/nomad-driver-exec2', '/run'];
      const modes = ['', 'r', 'w', 'rw', 'rx', 'c', 'rwc', 'rwxc', 'rr', 'wr'];
      for (let i = 0; i < 3000; i++) {
        const rules: UnveilRule[] = r.some(paths, 8).map((p) => ({ path: p, mode: r.pick(modes), optional: r.chance(0.3) }));
        const roots = r.some(['/a', '/a/b', '/tmp/t', '/x/y', '/'], 3);
        const now = outcome(() => planUnveil(rules, roots));
        const then = outcome(() => v0.planUnveil(rules, roots));
        assert.deepEqual('ok' in now ? now.ok.rules : now, 'ok' in then ? then.ok.rules : then, `case ${i}`);
        if ('ok' in now && 'ok' in then) {
          for (const p of paths) assert.equal(now.ok.beneath(p), then.ok.beneath(p), `case ${i} beneath ${p}`);
        }
        const hidden = r.some(['/run/nomad-driver-exec2', '/tmp', '/a/b', '/a/b/'], 2);
        assert.equal(exposure(rules, hidden), sandboxV0.exposure(rules, hidden), `case ${i} exposure`);
      }
    });

    it('parseUnveil and normalisePath on every short string over a hostile alphabet', () => {
      const alphabet = ['/', '.', 'a', ':', 'r', 'c', 'w', '\u00e9'];
      const strings = [''];
      for (let len = 1; len <= 5; len++) {
        for (let n = 0; n < alphabet.length ** len; n++) {
          let s = '';
          for (let k = 0, m = n; k < len; k++, m = Math.floor(m / alphabet.length)) s += alphabet[m % alphabet.length];
          strings.push(s);
        }
      }
      for (const s of strings) {
        assert.equal(normalisePath(s), v0.normalisePath(s), JSON.stringify(s));
        assert.equal(normalisePath(`/${s}`), path.posix.normalize(`/${s}`).replace(/(.)\/$/, '$1'), JSON.stringify(s));
        assert.deepEqual(outcome(() => parseUnveil(s)), outcome(() => v0.parseUnveil(s)), JSON.stringify(s));
        assert.deepEqual(outcome(() => parseUnveil(`rw:${s}`, true)), outcome(() => v0.parseUnveil(`rw:${s}`, true)), JSON.stringify(s));
      }
    });
  });
});
