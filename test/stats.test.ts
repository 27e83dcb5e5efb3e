/** TaskStats from the task's cgroup, through the plugin's stream. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CPUUsage_Fields as CpuField, MemoryUsage_Fields as MemField } from '../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { type NomadLikeClient, MHZ_PER_CORE } from '../src/client/nomad-client';
import { skipUnless, startNomadOrSkip } from './harness/skip';

const MiB = 1024 * 1024;


describe('task stats', function () {
  this.timeout(60_000);
  let nomad: NomadLikeClient;

  before(async function () {
    nomad = await startNomadOrSkip(this);
  });

  after(async () => {
    if (nomad) assert.deepEqual(await nomad.cleanup(), []);
  });

  it('reads ~100 % for a task burning one core, from the second sample on', async () => {
    const { task } = await nomad.run({ command: 'sh', args: ['-c', 'while :; do :; done'], cpuMhz: 2 * MHZ_PER_CORE });
    const samples = await nomad.collectStats(task.config.id, 1000, 3);
    for (const s of samples) {
      assert.ok(s.stats?.timestamp && s.stats.timestamp.seconds > 0, 'every sample has a timestamp');
      assert.ok(s.stats?.aggResourceUsage?.cpu && s.stats.aggResourceUsage.memory, 'every sample has agg_resource_usage');
    }
    const cpu = samples[2]!.stats!.aggResourceUsage!.cpu!;
    assert.ok(cpu.percent > 85 && cpu.percent < 115, `percent ${cpu.percent.toFixed(1)} is not ~100`);
    assert.ok(cpu.userMode > 50, `user ${cpu.userMode.toFixed(1)}`);
    assert.ok(Math.abs(cpu.totalTicks - (cpu.percent / 100) * MHZ_PER_CORE) < 1e-6, 'total_ticks = percent x MHz per core');
    assert.deepEqual(
      [...cpu.measuredFields].sort(),
      [CpuField.SYSTEM_MODE, CpuField.USER_MODE, CpuField.TOTAL_TICKS, CpuField.THROTTLED_PERIODS, CpuField.THROTTLED_TIME, CpuField.PERCENT].sort(),
    );
    const byPid = samples[2]!.stats!.resourceUsageByPid;
    const busiest = Math.max(...Object.values(byPid).map((u) => u.cpu!.percent));
    assert.ok(Object.keys(byPid).length >= 2, 'per-pid entries for pid 1 and the task');
    assert.ok(busiest > 70, `no per-pid entry shows the busy process (max ${busiest.toFixed(1)} %)`);
    await nomad.stop(task.config.id, 1000);
    await nomad.finish(task);
  });

  it('reads at least 64 MiB of usage and RSS for a task holding 64 MiB', async function () {
    skipUnless(this, existsSync('/usr/bin/python3'), '/usr/bin/python3 is not installed');
    const { task } = await nomad.run({
      command: 'python3',
      args: ['-c', 'import sys, time\nb = bytes(range(256)) * (1 << 18)\nprint("held", len(b), flush=True)\ntime.sleep(1000)'],
      memoryMb: 256,
    });
    await task.stdout!.waitFor(/held 67108864/);
    const [s] = await nomad.collectStats(task.config.id, 500, 1);
    const mem = s!.stats!.aggResourceUsage!.memory!;
    assert.ok(mem.usage >= 64 * MiB, `usage ${(mem.usage / MiB).toFixed(1)} MiB`);
    assert.ok(mem.rss >= 64 * MiB, `rss ${(mem.rss / MiB).toFixed(1)} MiB`);
    for (const f of [MemField.USAGE, MemField.RSS, MemField.CACHE]) assert.ok(mem.measuredFields.includes(f), `measured_fields lacks ${MemField[f]}`);
    await nomad.stop(task.config.id, 1000);
    await nomad.finish(task);
  });

  it('ends the stream when the task exits, and for unknown tasks', async () => {
    const { task } = await nomad.run({ command: 'sleep', args: ['0.5'] });
    const stream = nomad.openStats(task.config.id, 200);
    let n = 0;
    await new Promise<void>((resolve, reject) => {
      stream.on('data', () => n++);
      stream.on('end', () => resolve());
      stream.on('error', reject);
    });
    assert.ok(n >= 1);
    await nomad.finish(task);
    const unknown = nomad.openStats('no/such/task', 200);
    await new Promise<void>((resolve) => {
      unknown.on('error', (e: { code: number }) => {
        assert.equal(e.code, 5 /* NOT_FOUND */);
        resolve();
      });
      unknown.on('end', () => resolve());
    });
  });

  it('on cgroup v1 hosts, a stop empties every controller\'s cgroup', async function () {
    skipUnless(this, nomad.cgroups.layout.mode !== 'v2', 'pure cgroup v2 host: the VM suite covers v2', { core: false });
    const { task } = await nomad.run({ command: 'sh', args: ['-c', 'trap "" INT; sleep 1000 & sleep 1000 & echo up; wait'] });
    await task.stdout!.waitFor(/up/);
    const dirs = Object.entries(task.cgroup.dirs).filter(([c]) => c !== 'cpuset');
    for (const [c, d] of dirs) assert.ok(readFileSync(path.join(d, 'cgroup.procs'), 'utf8').trim() !== '', `${c} cgroup is empty while running`);
    await nomad.stop(task.config.id, 300);
    await nomad.wait(task.config.id);
    for (const [c, d] of dirs) {
      if (existsSync(d)) assert.equal(readFileSync(path.join(d, 'cgroup.procs'), 'utf8').trim(), '', `${c} cgroup not empty after stop`);
    }
    await nomad.destroy(task.config.id);
    for (const c of ['cpuacct']) {
      if (task.cgroup.dirs[c]) assert.equal(existsSync(task.cgroup.dirs[c]), false, `driver's own ${c} cgroup not removed on destroy`);
    }
    nomad.releaseTask(task);
  });
});
