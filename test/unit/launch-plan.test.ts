/** The pure launch plan: StartTask's TaskConfig + plugin config/state → the worker's launch request. */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { NetworkIsolationSpec_NetworkIsolationMode as NetMode, type TaskConfig } from '../../src/gen/hashicorp/nomad/plugins/drivers/driver';
import type { CgroupLayout } from '../../src/shared/cgroups/detect';
import { DriverError, type DriverErrorCode } from '../../src/shared/errors';
import { DEFAULT_PLUGIN_CONFIG, type PluginConfig } from '../../src/main/config/config';
import { launchedState, launchPlan, pidsLimit, pluginDirsOf, type LaunchPlanInputs } from '../../src/main/tasks/launch-plan';
import { statusDirFor } from '../../src/main/tasks/status-dir';
import { launched, taskConfig, taskResources } from './task-fakes';

const ALLOC = '/var/nomad/alloc/a1';
const V2: CgroupLayout = { mode: 'v2', root: '/sys/fs/cgroup', v1: new Map(), unified: '/sys/fs/cgroup', favorDynmods: false };
const V1: CgroupLayout = {
  mode: 'v1',
  root: '/sys/fs/cgroup',
  v1: new Map([['cpuset', '/sys/fs/cgroup/cpuset'], ['cpu', '/sys/fs/cgroup/cpu'], ['memory', '/sys/fs/cgroup/memory'], ['cpuacct', '/sys/fs/cgroup/cpuacct'], ['pids', '/sys/fs/cgroup/pids']]),
  unified: null,
  favorDynmods: false,
};
const CAP_NET_BIND_SERVICE = 10;

function inputs(over: Partial<LaunchPlanInputs> = {}, config: Partial<PluginConfig> = {}): LaunchPlanInputs {
  return {
    config: { ...DEFAULT_PLUGIN_CONFIG, stateDir: '/run/exec2-state', ...config },
    compute: { totalMhz: 8000, cores: 4, mhzPerCore: 2000, usableMhz: 8000 },
    pluginDirs: ['/run/exec2-sock'],
    layout: V2,
    initPath: '/opt/exec2/exec2-init',
    receivedNs: 123456789n,
    ...over,
  };
}

const cfg = (over: Partial<TaskConfig> = {}, block: Parameters<typeof taskConfig>[2] = { command: '/bin/true' }): TaskConfig => taskConfig(ALLOC, over, block);

function planFails(c: TaskConfig, i: LaunchPlanInputs, code: DriverErrorCode, message: RegExp): void {
  assert.throws(() => launchPlan(c, i), (err: unknown) => {
    assert.ok(err instanceof DriverError, `a DriverError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

describe('launch plan (pure)', () => {
  describe('the request', () => {
    it('carries the command, the task id, the status dir below state_dir, the init helper and the receive time it was given', () => {
      const { req, taskDir } = launchPlan(cfg({}, { command: '/bin/echo', args: ['a', 'b'] }), inputs());
      assert.equal(req.kind, 'launch');
      assert.equal(req.taskId, 'a1/web/1');
      assert.deepEqual(req.argv, ['/bin/echo', 'a', 'b']);
      assert.equal(req.statusDir, statusDirFor('/run/exec2-state', 'a1/web/1'));
      assert.equal(req.initPath, '/opt/exec2/exec2-init');
      assert.equal(req.receivedNs, '123456789');
      assert.equal(req.chownFifos, true);
      assert.equal(taskDir, path.join(ALLOC, 'web'));
      assert.equal(req.taskRoot, taskDir);
    });

    it('is a function of its inputs: the same inputs give the same request', () => {
      assert.deepEqual(launchPlan(cfg(), inputs()), launchPlan(cfg(), inputs()));
    });

    it('sends output to /dev/null when Nomad gives no log paths', () => {
      const { req } = launchPlan(cfg({ stdoutPath: '', stderrPath: '' }), inputs());
      assert.equal(req.stdoutPath, '/dev/null');
      assert.equal(req.stderrPath, '/dev/null');
    });

    it('hides the plugin socket dir and state_dir from the task', () => {
      const { req } = launchPlan(cfg(), inputs());
      assert.deepEqual([...req.masks].sort(), ['/run/exec2-sock', '/run/exec2-state']);
      assert.deepEqual(pluginDirsOf(null), []);
      assert.deepEqual(pluginDirsOf('/s'), ['/s']);
    });

    it('keeps the sandbox-shaping config attributes for driver_state', () => {
      const { block } = launchPlan(cfg({}, { command: '/bin/true', work_dir: 'local', oom_score_adj: 300, cap_drop: ['all'] }), inputs());
      assert.deepEqual(block, { unveil: [], workDir: 'local', oomScoreAdj: 300, capAdd: [], capDrop: ['all'] });
    });
  });

  describe('user', () => {
    it('leaves an account name to the worker to look up', () => {
      const { req } = launchPlan(cfg({ user: 'nobody' }), inputs());
      assert.deepEqual(req.user, { name: 'nobody', resolved: null });
      assert.equal(req.dynamicUser, false);
    });

    it('resolves a dynamic workload user in range without any lookup', () => {
      const { req } = launchPlan(cfg({ user: 'nomad-80001' }), inputs({}, { dynamicUserMin: 80000, dynamicUserMax: 80010 }));
      assert.deepEqual(req.user, { name: 'nomad-80001', resolved: { uid: 80001, gid: 80001, groups: [], home: '/nonexistent' } });
      assert.equal(req.dynamicUser, true);
    });

    it('refuses a dynamic user outside the range, an empty user and a user name with a slash (INVALID_ARGUMENT)', () => {
      planFails(cfg({ user: 'nomad-79999' }), inputs({}, { dynamicUserMin: 80000, dynamicUserMax: 80010 }), 'INVALID_ARGUMENT', /dynamic workload users must have an id in 80000-80010/);
      planFails(cfg({ user: '' }), inputs(), 'INVALID_ARGUMENT', /user must be set/);
      planFails(cfg({ user: '../root' }), inputs(), 'INVALID_ARGUMENT', /is not a valid user name/);
    });
  });

  describe('pids', () => {
    it('uses the plugin pids_max unless the task sets a lower one', () => {
      assert.equal(launchPlan(cfg(), inputs({}, { pidsMax: 4096 })).req.limits.pidsMax, 4096);
      assert.equal(launchPlan(cfg({}, { command: '/bin/true', pids_max: 100 }), inputs({}, { pidsMax: 4096 })).req.limits.pidsMax, 100);
      assert.equal(pidsLimit(5000, 0), 5000, 'an operator without a bound lets the task choose');
    });

    it('refuses a task pids_max above the plugin bound (FAILED_PRECONDITION, not recoverable)', () => {
      planFails(cfg({}, { command: '/bin/true', pids_max: 5000 }), inputs({}, { pidsMax: 4096 }), 'FAILED_PRECONDITION', /"pids_max": 5000 is above this client's limit of 4096/);
      assert.throws(() => pidsLimit(5000, 4096), (e: DriverError) => e.recoverable === false);
    });
  });

  describe('cgroup', () => {
    it('uses the v2 path Nomad gives as it is', () => {
      assert.deepEqual(launchPlan(cfg(), inputs()).req.cgroup, { mode: 'v2', dir: '/sys/fs/cgroup/nomad.slice/a1.web.scope' });
    });

    it('derives the v1 controller dirs (with the driver\'s own cpuacct and pids) from the shared cpuset path', () => {
      const c = cfg({ resources: taskResources({ cpusetCgroup: '/sys/fs/cgroup/cpuset/nomad/share' }) });
      const cg = launchPlan(c, inputs({ layout: V1 })).req.cgroup;
      assert.equal(cg.mode, 'v1');
      assert.deepEqual(cg.mode === 'v1' ? cg.dirs : null, {
        cpuset: '/sys/fs/cgroup/cpuset/nomad/share',
        cpu: '/sys/fs/cgroup/cpu/nomad/a1.web',
        memory: '/sys/fs/cgroup/memory/nomad/a1.web',
        cpuacct: '/sys/fs/cgroup/cpuacct/nomad/a1.web',
        pids: '/sys/fs/cgroup/pids/nomad/a1.web',
      });
    });

    it('refuses a missing cgroup path or one outside the cgroup root (FAILED_PRECONDITION)', () => {
      planFails(cfg({ resources: taskResources({ cpusetCgroup: '' }) }), inputs(), 'FAILED_PRECONDITION', /no task cgroup was given/);
      planFails(cfg({ resources: taskResources({ cpusetCgroup: '/tmp/evil' }) }), inputs(), 'FAILED_PRECONDITION', /is not below \/sys\/fs\/cgroup/);
    });
  });

  describe('cpu and memory limits', () => {
    it('turns the task MHz into a CFS quota with the node topology', () => {
      const plan = launchPlan(cfg(), inputs());
      assert.equal(plan.req.limits.cpuShares, 500);
      assert.equal(plan.req.limits.cpuQuotaUs, 25000, '500 MHz of 2000 MHz cores: a quarter of the 100 ms period');
      assert.equal(plan.cpuUnlimited, false);
    });

    it('without topology sets no quota and says the CPU is not limited', () => {
      const plan = launchPlan(cfg(), inputs({ compute: null }));
      assert.equal(plan.req.limits.cpuQuotaUs, 0);
      assert.equal(plan.cpuUnlimited, true);
    });

    it('makes memory_max_mb the hard limit and memory_mb the soft one', () => {
      const { limits } = launchPlan(cfg({ resources: taskResources({ memoryMb: 256, memoryMaxMb: 512 }) }), inputs()).req;
      assert.deepEqual({ max: limits.memoryMax, low: limits.memoryLow }, { max: 512 * 2 ** 20, low: 256 * 2 ** 20 });
    });
  });

  describe('unveil plan', () => {
    it('anchors the allocation dir (granting nothing itself) and resolves the task dirs and the working directory beneath it', () => {
      const { req } = launchPlan(cfg(), inputs());
      // anchors are numbered in list order; `beneath` names one by that number
      const anchors = req.unveil.filter((r) => r.anchor).map((r) => r.path);
      const allocAnchor = anchors.indexOf(ALLOC);
      assert.ok(allocAnchor >= 0, 'the allocation dir is an anchor');
      assert.deepEqual({ ...req.unveil.find((r) => r.path === ALLOC) }, { path: ALLOC, mode: '', optional: false, anchor: true, beneath: -1 });
      const local = req.unveil.find((r) => r.path === path.join(ALLOC, 'web', 'local'));
      assert.deepEqual({ mode: local?.mode, anchor: local?.anchor, beneath: local?.beneath }, { mode: 'rwxc', anchor: true, beneath: allocAnchor }, 'local/ is writable, so an anchor itself, opened beneath the alloc dir');
      for (const r of req.unveil) {
        if (r.beneath >= 0) assert.ok((r.path + '/').startsWith(anchors[r.beneath] + '/'), `${r.path} lies below the anchor it is resolved beneath`);
        else assert.ok(!r.path.startsWith(ALLOC + '/'), `${r.path} below the alloc dir is never opened by its host path`);
      }
      assert.equal(req.cwd, path.join(ALLOC, 'web'));
      assert.equal(req.cwdBeneath, allocAnchor);
      assert.deepEqual(req.untrustedRoots, [ALLOC]);
    });

    it('refuses task unveil entries when unveil_by_task is off (FAILED_PRECONDITION)', () => {
      planFails(cfg({}, { command: '/bin/true', unveil: ['r:/srv'] }), inputs({}, { unveilByTask: false }), 'FAILED_PRECONDITION', /unveil_by_task = false/);
    });

    it('refuses a rule that would expose state_dir (FAILED_PRECONDITION)', () => {
      planFails(cfg({}, { command: '/bin/true', unveil: ['rw:/run'] }), inputs({}, { unveilByTask: true }), 'FAILED_PRECONDITION', /would be exposed by the unveiled path "rw:\/run"/);
    });

    it('refuses a work_dir outside the unveiled paths (INVALID_ARGUMENT)', () => {
      planFails(cfg({}, { command: '/bin/true', work_dir: '/srv' }), inputs(), 'INVALID_ARGUMENT', /"work_dir": \/srv is not inside an unveiled path/);
    });
  });

  describe('capabilities', () => {
    it('plans both outcomes of the user lookup: root keeps allow_caps in its bounding set, others get only cap_add, ambient', () => {
      const { caps } = launchPlan(cfg({}, { command: '/bin/true', cap_add: ['net_bind_service'] }), inputs({}, { allowCaps: [CAP_NET_BIND_SERVICE, 0] })).req;
      assert.deepEqual(caps.root, { bounding: [0, CAP_NET_BIND_SERVICE], ambient: [] });
      assert.deepEqual(caps.user, { bounding: [CAP_NET_BIND_SERVICE], ambient: [CAP_NET_BIND_SERVICE] });
    });

    it('refuses a cap_add outside allow_caps (FAILED_PRECONDITION)', () => {
      planFails(cfg({}, { command: '/bin/true', cap_add: ['sys_admin'] }), inputs({}, { allowCaps: [CAP_NET_BIND_SERVICE] }), 'FAILED_PRECONDITION', /"cap_add": sys_admin is not allowed by this client/);
    });
  });

  describe('environment', () => {
    it('drops LD_* and display leftovers, sets TMPDIR to the task tmp and GOMAXPROCS from the CPU share', () => {
      const c = cfg();
      c.env = { ...c.env, LD_PRELOAD: '/x.so', DISPLAY: ':0', KEEP: 'yes' };
      const { env } = launchPlan(c, inputs()).req;
      assert.equal(env.LD_PRELOAD, undefined);
      assert.equal(env.DISPLAY, undefined);
      assert.equal(env.KEEP, 'yes');
      assert.equal(env.TMPDIR, path.join(ALLOC, 'web', 'tmp'));
      assert.equal(env.GOMAXPROCS, '1', '500 MHz on 2000 MHz cores rounds up to one');
    });

    it('keeps the job\'s own GOMAXPROCS', () => {
      const c = cfg();
      c.env = { ...c.env, GOMAXPROCS: '7' };
      assert.equal(launchPlan(c, inputs()).req.env.GOMAXPROCS, '7');
    });
  });

  describe('volumes and network', () => {
    it('mounts a volume below the task root and grants it in the unveil plan', () => {
      const c = cfg({ mounts: [{ taskPath: '/data', hostPath: '/srv/data', readonly: true, propagationMode: 'private', selinuxLabel: '', requestName: '' }] });
      const { req } = launchPlan(c, inputs());
      assert.deepEqual(req.volumes, [{ hostPath: '/srv/data', dest: path.join(ALLOC, 'web', 'data'), readonly: true, private: true }]);
      assert.ok(req.unveil.some((r) => r.path === path.join(ALLOC, 'web', 'data')), 'the mount point is unveiled');
    });

    it('joins a group network namespace and refuses TASK mode (FAILED_PRECONDITION)', () => {
      const group = cfg({ networkIsolationSpec: { mode: NetMode.GROUP, path: '/var/run/netns/a1', labels: {}, hostsConfig: undefined } });
      assert.equal(launchPlan(group, inputs()).req.netnsPath, '/var/run/netns/a1');
      assert.equal(launchPlan(cfg(), inputs()).req.netnsPath, null);
      const task = cfg({ networkIsolationSpec: { mode: NetMode.TASK, path: '/x', labels: {}, hostsConfig: undefined } });
      planFails(task, inputs(), 'FAILED_PRECONDITION', /mode TASK is not supported/);
    });
  });

  describe('errors in order', () => {
    it('reports a malformed config block before anything else (INVALID_ARGUMENT)', () => {
      planFails(cfg({ user: '', msgpackDriverConfig: Buffer.from([0xc1]), resources: taskResources({ cpusetCgroup: '' }) }), inputs(), 'INVALID_ARGUMENT', /task config/);
    });

    it('reports the cgroup before the user', () => {
      planFails(cfg({ user: '', resources: taskResources({ cpusetCgroup: '' }) }), inputs(), 'FAILED_PRECONDITION', /no task cgroup/);
    });
  });

  describe('driver_state of the launched task', () => {
    it('records what the worker resolved, the plan\'s task dir and block, and the caps for the resolved uid', () => {
      const plan = launchPlan(cfg({}, { command: '/bin/true', cap_add: ['net_bind_service'] }), inputs({}, { allowCaps: [CAP_NET_BIND_SERVICE] }));
      const startedAt = new Date('2026-01-02T03:04:05.000Z');
      const user = launchedState(plan, launched(plan.req, { uid: 1000, gid: 1001, oomKillsBefore: 3 }), startedAt);
      assert.deepEqual({ pid: user.pid, pst: user.pidStartTime, user: user.user, dir: user.taskDir, at: user.startedAt, oom: user.oomKillsBefore, caps: user.caps },
        { pid: 4242, pst: '777', user: { name: 'nobody', uid: 1000, gid: 1001 }, dir: plan.taskDir, at: '2026-01-02T03:04:05.000Z', oom: 3, caps: plan.req.caps.user });
      assert.deepEqual(user.sandbox, plan.block);
      const root = launchedState(plan, launched(plan.req, { uid: 0, gid: 0, pidStartTime: null }), startedAt);
      assert.deepEqual(root.caps, plan.req.caps.root);
      assert.equal(root.pidStartTime, '0', 'an unreadable start time is recorded as 0');
    });
  });
});
