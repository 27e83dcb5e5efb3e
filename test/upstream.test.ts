/**
 * What upstream exec2 and Nomad 2.x added (issue 15), through the real plugin
 * on the real kernel: relative work_dir, GOMAXPROCS, LOGNAME, a task reading
 * its own cgroup limits, memory_max = -1, and Init/Shutdown/Fingerprint as
 * Nomad 2.x's client expects them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { FingerprintResponse_HealthState as Health, type FingerprintResponse } from '../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { encodePluginConfig, type NomadLikeClient, topology, type TaskInput } from '../src/client/nomad-client';
import { call, PluginProcess } from '../src/client/plugin-process';
import { runToEnd as runHarnessTask } from './harness/run-to-end';
import { startNomadOrSkip } from './harness/skip';
import { expectStatus } from './harness/assert-status';

/** v1 memory.limit_in_bytes for "no limit": LONG_MAX rounded down to a page. */
const V1_UNLIMITED_MIN = 2n ** 62n;

describe('upstream exec2 / Nomad 2.x additions (real kernel, through the plugin)', function () {
  this.timeout(120_000);
  let nomad: NomadLikeClient;

  before(async function () {
    nomad = await startNomadOrSkip(this, { unveil_by_task: true });
  });

  after(async () => {
    if (!nomad) return;
    const leftovers = await nomad.cleanup();
    assert.deepEqual(leftovers, [], 'cgroups left behind');
  });

  const runToEnd = (input: TaskInput) => runHarnessTask(nomad, input);
  const envOf = (out: string): Map<string, string> => new Map(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]));

  describe('relative work_dir (upstream PR #97)', () => {
    it('work_dir = "local" starts the task in $NOMAD_TASK_DIR; unset stays the task dir', async () => {
      const r = await runToEnd({ command: 'pwd', work_dir: 'local' });
      assert.equal(r.exit, 0, r.err);
      assert.equal(r.out.trim(), r.task.env.NOMAD_TASK_DIR);
      const d = await runToEnd({ command: 'pwd' });
      assert.equal(d.out.trim(), path.dirname(d.task.env.NOMAD_TASK_DIR!));
    });

    it('an exec session runs in the same relative work_dir', async () => {
      const { task } = await nomad.run({ command: 'sleep', args: ['30'], work_dir: 'local' });
      try {
        const e = await nomad.exec(task.config.id, ['pwd']);
        assert.equal(e.result.exitCode, 0, e.stderr);
        assert.equal(e.stdout.trim(), task.env.NOMAD_TASK_DIR);
      } finally {
        await nomad.destroy(task.config.id, true);
        nomad.releaseTask(task);
      }
    });

    it('refuses a work_dir that climbs out of the task dir (INVALID_ARGUMENT naming the attribute) and keeps serving', async () => {
      for (const w of ['..', '../other', 'local/../../other']) {
        const t = nomad.prepareTask({ command: 'pwd', work_dir: w });
        try {
          await expectStatus(nomad.startTask(t), grpc.status.INVALID_ARGUMENT, /attribute "work_dir": ".*" leaves the task directory/);
        } finally {
          nomad.releaseTask(t);
        }
      }
      const ok = await runToEnd({ command: 'true' });
      assert.equal(ok.exit, 0);
    });
  });

  describe('task environment', () => {
    it('sets LOGNAME with USER (both the job user)', async () => {
      const r = await runToEnd({ command: 'env' });
      const env = envOf(r.out);
      assert.equal(env.get('USER'), `nomad-${r.task.uid}`);
      assert.equal(env.get('LOGNAME'), env.get('USER'));
    });

    it('LOGNAME follows the user, not the job env, and exec sessions get it too', async () => {
      const { task } = await nomad.run({ command: 'sleep', args: ['30'], env: { LOGNAME: 'root' } });
      try {
        const e = await nomad.exec(task.config.id, ['sh', '-c', 'echo "$LOGNAME"']);
        assert.equal(e.stdout.trim(), `nomad-${task.uid}`);
      } finally {
        await nomad.destroy(task.config.id, true);
        nomad.releaseTask(task);
      }
    });

    it('GOMAXPROCS (upstream PR #98, exec2#82): cores = 1 → 1, cpu = 1000 → 1, cpu = 3000 → 2 (2500 MHz per core), the job\'s own value kept', async () => {
      const gomax = async (input: Omit<TaskInput, 'command'>): Promise<string | undefined> => envOf((await runToEnd({ command: 'env', ...input })).out).get('GOMAXPROCS');
      assert.equal(await gomax({ cores: '0' }), '1');
      assert.equal(await gomax({ cpuMhz: 1000 }), '1');
      assert.equal(await gomax({ cpuMhz: 3000 }), '2');
      assert.equal(await gomax({ cpuMhz: 1000, env: { GOMAXPROCS: '7' } }), '7');
    });
  });

  describe("the task's own cgroup (upstream adds r:<cpuset_cgroup>)", () => {
    // The task finds its cgroup the way runtimes do: /proc/self/cgroup.
    const script = `
      set -e
      if [ "$MODE" = v2 ]; then
        p=$(sed -n 's/^0:://p' /proc/self/cgroup)
        d=/sys/fs/cgroup$p
        echo "mem=$(cat "$d/memory.max")"
        echo "low=$(cat "$d/memory.low")"
        echo "cpu=$(cat "$d/cpu.max")"
      else
        pm=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/self/cgroup | cut -d: -f3)
        pc=$(grep -E '^[0-9]+:([^:]*,)?cpu(,[^:]*)?:' /proc/self/cgroup | cut -d: -f3)
        d=$MEM_MOUNT$pm
        echo "mem=$(cat "$d/memory.limit_in_bytes")"
        echo "low=$(cat "$d/memory.soft_limit_in_bytes")"
        echo "cpu=$(cat "$CPU_MOUNT$pc/cpu.cfs_quota_us") $(cat "$CPU_MOUNT$pc/cpu.cfs_period_us")"
      fi
      if cat "$(dirname "$d")/cgroup.procs" >/dev/null 2>&1; then echo PARENT-READABLE; fi
      if echo 1 > "$d/memory.oom.group" 2>/dev/null || echo 1 > "$d/memory.limit_in_bytes" 2>/dev/null; then echo WROTE; fi
      if ls /sys/fs/cgroup >/dev/null 2>&1; then echo ROOT-LISTED; fi
    `;
    const mounts = (): Record<string, string> => {
      const layout = nomad.cgroups.layout;
      return layout.mode === 'v2' ? { MODE: 'v2' } : { MODE: 'v1', MEM_MOUNT: layout.v1.get('memory') ?? '', CPU_MOUNT: layout.v1.get('cpu') ?? '' };
    };
    const values = (out: string): Map<string, string> => envOf(out.split('\n').filter((l) => l.includes('=')).join('\n'));

    it('reads its memory and cpu limits (v1 here: memory.limit_in_bytes, cpu.cfs_quota_us) but no parent cgroup, and writes nothing', async () => {
      const r = await runToEnd({ command: 'sh', args: ['-c', script], env: mounts(), memoryMb: 96, cpuMhz: 1000 });
      assert.equal(r.exit, 0, r.err);
      const v = values(r.out);
      // v2 memory.max / cpu.max, v1 memory.limit_in_bytes / cpu.cfs_quota_us + period: the same numbers
      assert.equal(v.get('mem'), String(96 * 1024 * 1024));
      assert.equal(v.get('cpu'), '40000 100000');
      assert.doesNotMatch(r.out, /PARENT-READABLE|WROTE|ROOT-LISTED/);
    });

    it('memory_max = -1 (Nomad 2.0 reserve-only): no hard limit, memory as the reservation, seen by the host and by the task', async () => {
      const { task } = await nomad.run({ command: 'sh', args: ['-c', script], env: mounts(), memoryMb: 64, memoryMaxMb: -1 });
      const r = await nomad.wait(task.config.id);
      await new Promise((res) => setTimeout(res, 50));
      const out = task.stdout?.text() ?? '';
      try {
        assert.equal(r.result.exitCode, 0, task.stderr?.text());
        const v = values(out);
        const reserve = String(64 * 1024 * 1024);
        if (nomad.cgroups.layout.mode === 'v2') {
          const dir = task.cgroup.dirs.unified!;
          assert.equal(readFileSync(path.join(dir, 'memory.max'), 'utf8').trim(), 'max');
          assert.equal(readFileSync(path.join(dir, 'memory.low'), 'utf8').trim(), reserve);
          assert.equal(v.get('mem'), 'max');
          assert.equal(v.get('low'), reserve);
        } else {
          const dir = task.cgroup.dirs.memory!;
          const hard = BigInt(readFileSync(path.join(dir, 'memory.limit_in_bytes'), 'utf8').trim());
          assert.ok(hard >= V1_UNLIMITED_MIN, `memory.limit_in_bytes ${hard} is a limit`);
          assert.equal(readFileSync(path.join(dir, 'memory.soft_limit_in_bytes'), 'utf8').trim(), reserve);
          assert.equal(v.get('mem'), String(hard));
          assert.equal(v.get('low'), reserve);
        }
      } finally {
        await nomad.destroy(task.config.id);
        nomad.releaseTask(task);
      }
    });

    it('an exec session reads the same cgroup files', async () => {
      const { task } = await nomad.run({ command: 'sleep', args: ['30'], memoryMb: 80 });
      try {
        const e = await nomad.exec(task.config.id, ['env', ...Object.entries(mounts()).map(([k, val]) => `${k}=${val}`), 'sh', '-c', script]);
        assert.equal(e.result.exitCode, 0, e.stderr);
        assert.equal(values(e.stdout).get('mem'), String(80 * 1024 * 1024));
      } finally {
        await nomad.destroy(task.config.id, true);
        nomad.releaseTask(task);
      }
    });
  });
});

describe('Init, Shutdown and the fingerprint as Nomad 2.x calls them', function () {
  this.timeout(60_000);
  let plugin: PluginProcess;
  before(async () => {
    plugin = await PluginProcess.start();
  });
  after(async () => {
    await plugin.kill();
  });

  it('Init answers OK before any SetConfig (a reattach sends none) and again after it; never UNIMPLEMENTED', async () => {
    assert.deepEqual(await call(plugin.driver, plugin.driver.init, {}), {});
    await call(plugin.base, plugin.base.setConfig, {
      msgpackConfig: Buffer.from(encodePluginConfig()),
      nomadConfig: { driver: { ClientMaxPort: 0, ClientMinPort: 0, Topology: topology(2) } },
      pluginApiVersion: '0.1.0',
    });
    assert.deepEqual(await call(plugin.driver, plugin.driver.init, {}), {});
  });

  it('the fingerprint carries err exactly when the driver cannot run tasks here', async () => {
    const fp = await new Promise<FingerprintResponse>((resolve, reject) => {
      const s = plugin.driver.fingerprint({});
      s.once('data', (m: FingerprintResponse) => {
        resolve(m);
        s.cancel();
      });
      s.on('error', (e: grpc.ServiceError) => {
        if (e.code !== grpc.status.CANCELLED) reject(e);
      });
    });
    if (fp.health === Health.HEALTHY) assert.equal(fp.err, '');
    else assert.equal(fp.err, fp.healthDescription);
  });

  it('Shutdown answers OK within its 2 s deadline and the plugin keeps serving until it is killed', async () => {
    assert.deepEqual(await call(plugin.driver, plugin.driver.shutdown, {}, { deadline: Date.now() + 2000 }), {});
    const caps = await call(plugin.driver, plugin.driver.capabilities, {});
    assert.ok(caps.capabilities);
  });
});
