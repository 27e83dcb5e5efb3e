/**
 * CPU compute from the topology Nomad sends in SetConfig (protocol reference
 * §3.1, §6.7): what one core is worth in MHz turns a job's `cpu` into cpu.max.
 */
import type { ClientTopology } from '../gen/hashicorp/nomad/plugins/base/base';

export interface Compute {
  /** total compute in MHz (override_total_compute wins) */
  totalMhz: number;
  /** number of cores, disabled ones included, as Nomad counts them */
  cores: number;
  /** floor(total / cores) */
  mhzPerCore: number;
  /** sum over enabled cores minus reserved compute */
  usableMhz: number;
}

const coreSpeed = (c: { baseSpeed: number; maxSpeed: number; guessSpeed: number }): number =>
  c.baseSpeed > 0 ? c.baseSpeed : c.maxSpeed > 0 ? c.maxSpeed : c.guessSpeed;

export function computeFromTopology(t: ClientTopology | undefined): Compute | null {
  if (!t || t.cores.length === 0) return null;
  const detected = t.cores.reduce((sum, c) => sum + coreSpeed(c), 0);
  const totalMhz = t.overrideTotalCompute > 0 ? t.overrideTotalCompute : detected;
  const cores = t.cores.length;
  const usable = t.cores.filter((c) => !c.disable).reduce((sum, c) => sum + coreSpeed(c), 0) - t.overrideWitholdCompute;
  return { totalMhz, cores, mhzPerCore: Math.floor(totalMhz / cores), usableMhz: Math.max(0, usable) };
}

/** cpu.max bandwidth for a task's MHz: floor(mhz * period / mhzPerCore), period 100 ms. */
export const CPU_PERIOD_US = 100000;

export function cpuQuotaUs(taskMhz: number, mhzPerCore: number): number {
  if (mhzPerCore <= 0 || taskMhz <= 0) return 0;
  // Below 1 ms per period the kernel refuses the value (cpu.max minimum).
  return Math.max(1000, Math.floor((taskMhz * CPU_PERIOD_US) / mhzPerCore));
}

/** Number of CPUs in a cpuset list such as "0-2,5" (0 for ""). */
export function cpuCount(list: string): number {
  let n = 0;
  for (const part of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    n += b === undefined ? 1 : b - (a as number) + 1;
  }
  return n;
}
