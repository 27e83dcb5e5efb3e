/**
 * node dist/bench/stats-micro.js [tasks=300] [rounds=20]
 *
 * Where one TaskStats sample's time goes, in-process (no gRPC): N real
 * `sleep` tasks through the plugin, then this process samples their cgroups
 * the way the plugin does, per strategy, and prints µs per task per sample.
 * For choosing how the plugin reads; the cost of the whole plugin is the
 * bench's stats row (npm run bench -- --only=stats).
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import * as path from 'node:path';
import { NomadLikeClient } from '../src/client/nomad-client';
import type { TaskCgroup } from '../src/shared/cgroups/task-cgroup';
import { TaskStatsCollector, type StatsSource } from '../src/main/stats/collector';
import { pool } from './tools';

const N = Number(process.argv[2] ?? 300);
const ROUNDS = Number(process.argv[3] ?? 20);

function cgroupOfPid(pid: number, controller: string): string | null {
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, ctrls, p] = line.split(':');
    if (ctrls?.split(',').includes(controller)) return path.join('/sys/fs/cgroup', controller, p!);
  }
  return null;
}

function time(label: string, fn: () => void): number {
  fn(); // warm
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < ROUNDS; r++) fn();
  const us = Number(process.hrtime.bigint() - t0) / 1000 / ROUNDS / N;
  process.stdout.write(`${label.padEnd(52)} ${us.toFixed(1).padStart(7)} µs per task per sample\n`);
  return us;
}

async function main(): Promise<void> {
  const nomad = new NomadLikeClient();
  await nomad.startPlugin({});
  try {
    const ids: string[] = [];
    await pool(Array.from({ length: N }, (_, i) => i), 8, async () => {
      const { task } = await nomad.run({ command: 'sleep', args: ['1000'] });
      ids.push(task.config.id);
    });
    const records: StatsSource[] = [];
    for (const id of ids) {
      const t = nomad.prepared.get(id)!;
      let cg: TaskCgroup;
      if (nomad.cgroups.layout.mode === 'v2') cg = { mode: 'v2', dir: t.cgroup.dirs.unified! };
      else {
        const mem = t.cgroup.dirs.memory!;
        const pid = Number(readFileSync(path.join(mem, 'cgroup.procs'), 'utf8').split('\n')[0]);
        const dirs: Record<string, string> = { ...t.cgroup.dirs };
        const acct = cgroupOfPid(pid, 'cpuacct');
        if (acct) dirs.cpuacct = acct;
        cg = { mode: 'v1', dirs, created: [] };
      }
      records.push({ id, startedAt: new Date(Date.now() - 1000), state: { cgroup: cg } });
    }
    process.stdout.write(`${N} tasks, ${nomad.cgroups.layout.mode} cgroups, ${ROUNDS} rounds\n`);
    for (const keepOpen of [false, true]) {
      for (const pids of ['always', 'never'] as const) {
        const cs = records.map((r) => new TaskStatsCollector(r, { keepOpen, keepPidFds: true }));
        time(`collector keepOpen=${keepOpen} pids=${pids} + encode`, () => {
          for (const c of cs) c.sample(2000, pids).encoded();
        });
        for (const c of cs) c.close();
      }
    }
    // per file: one pread at offset 0 on a kept fd, µs per task
    const buf = Buffer.allocUnsafe(16 * 1024);
    const files = records.flatMap((r) => {
      const cg = r.state.cgroup;
      return cg.mode === 'v2'
        ? ['cpu.stat', 'memory.stat', 'memory.current', 'memory.swap.current', 'memory.peak', 'cgroup.procs'].map((f) => path.join(cg.dir, f))
        : [['cpuacct', 'cpuacct.usage'], ['cpuacct', 'cpuacct.stat'], ['cpu', 'cpu.stat'], ['memory', 'memory.stat'], ['memory', 'memory.usage_in_bytes'], ['memory', 'memory.max_usage_in_bytes'], ['memory', 'memory.kmem.usage_in_bytes'], ['memory', 'cgroup.procs']]
            .filter(([c]) => cg.dirs[c!]).map(([c, f]) => path.join(cg.dirs[c!]!, f!));
    });
    const byName = new Map<string, number[]>();
    for (const f of files) {
      try {
        const fd = openSync(f, 'r');
        byName.set(path.basename(f), [...(byName.get(path.basename(f)) ?? []), fd]);
      } catch {
        // absent on this host
      }
    }
    for (const [name, fds] of byName) {
      const t0 = process.hrtime.bigint();
      for (let r = 0; r < ROUNDS; r++) for (const fd of fds) readSync(fd, buf, 0, buf.length, 0);
      const us = Number(process.hrtime.bigint() - t0) / 1000 / ROUNDS / fds.length;
      process.stdout.write(`  pread ${name.padEnd(46)} ${us.toFixed(1).padStart(7)} µs\n`);
      for (const fd of fds) closeSync(fd);
    }
  } finally {
    await nomad.cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
