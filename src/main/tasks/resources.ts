/**
 * Pure decisions from a task's resources: the memory limits written to its
 * cgroup and the GOMAXPROCS its environment gets. No I/O; unit-tested in
 * test/unit/resources.test.ts.
 */
import { MEMORY_NO_LIMIT } from '../../shared/cgroups/task-cgroup';
import { invalidArgument } from '../../shared/errors';
import { cpuCount } from '../../shared/topology';

const MiB = 1024 * 1024;

/**
 * Nomad's meaning of `memory` / `memory_max` (AllocatedMemoryResources,
 * memory_max_mb as int64): 0 = unset, `memory` is the hard limit; > 0 =
 * oversubscription, `memory_max` is the hard limit and `memory` the
 * reservation; -1 (Nomad 2.0 reserve-only) = no hard limit at all, `memory`
 * is only the reservation. Bytes out; memoryMax MEMORY_NO_LIMIT for "max".
 */
export function memoryLimits(memoryMb: number, memoryMaxMb: number): { memoryMax: number; memoryLow: number } {
  if (memoryMaxMb === -1) return { memoryMax: MEMORY_NO_LIMIT, memoryLow: Math.max(0, memoryMb) * MiB };
  if (!Number.isInteger(memoryMaxMb) || memoryMaxMb < -1) {
    throw invalidArgument(`resources: memory_max_mb ${memoryMaxMb} is neither -1 (no hard limit), 0 (unset) nor a positive number of MiB`);
  }
  if (memoryMaxMb > 0) return { memoryMax: memoryMaxMb * MiB, memoryLow: memoryMb * MiB };
  return { memoryMax: memoryMb * MiB, memoryLow: 0 };
}

/**
 * GOMAXPROCS for a task's CPU share, the way upstream exec2 sizes it: the
 * reserved cores when the job has `cores`, otherwise its `cpu` MHz over the
 * node's MHz per core, rounded up, at least 1. A Go runtime otherwise starts
 * one thread per host CPU and gets throttled by cpu.max. null when there is
 * nothing to size from (no reserved cores and no topology from Nomad).
 */
export function gomaxprocs(cpusetCpus: string, cpuMhz: number, mhzPerCore: number | null): number | null {
  const cores = cpuCount(cpusetCpus);
  if (cores > 0) return cores;
  if (!mhzPerCore || mhzPerCore <= 0) return null;
  return Math.max(1, Math.ceil(Math.max(0, cpuMhz) / mhzPerCore));
}
