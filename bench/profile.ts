/**
 * Summary of the V8 CPU profiles (.cpuprofile) the plugin wrote with
 * `--cpu-prof` (bench --profile): self time per function and per module,
 * per thread (the main thread and each piscina worker write their own file).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

function moduleOf(url: string): string {
  if (!url) return '(native/V8)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 13).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const d = url.indexOf('/dist/');
  if (d >= 0) return url.slice(d + 6).replace(/\.js$/, '');
  if (url.startsWith('node:')) return url;
  return path.basename(url);
}

export function summariseProfiles(dir: string, top = 18): { text: string; files: string[] } {
  if (!existsSync(dir)) return { text: `(no profiles in ${dir})`, files: [] };
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  const lines: string[] = [];
  for (const f of files) {
    const p = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const selfUs = new Map<number, number>();
    if (p.samples && p.timeDeltas) {
      // time of sample i is attributed to samples[i] over timeDeltas[i+1]
      for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
    } else {
      const per = (p.endTime - p.startTime) / Math.max(1, p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0));
      for (const n of p.nodes) selfUs.set(n.id, (n.hitCount ?? 0) * per);
    }
    const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
    const idle = [...selfUs].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, v]) => a + v, 0);
    const busy = total - idle;
    const fn = new Map<string, number>(), mod = new Map<string, number>();
    for (const [id, us] of selfUs) {
      const n = byId.get(id)!;
      if (n.callFrame.functionName === '(idle)') continue;
      const name = `${n.callFrame.functionName || '(anonymous)'} ${moduleOf(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
      fn.set(name, (fn.get(name) ?? 0) + us);
      const m = n.callFrame.url ? moduleOf(n.callFrame.url) : n.callFrame.functionName;
      mod.set(m, (mod.get(m) ?? 0) + us);
    }
    if (busy < 0.05 * total && files.length > 1) {
      lines.push(`${f}: ${(busy / 1000).toFixed(0)} ms busy of ${(total / 1000).toFixed(0)} ms (idle thread)`);
      continue;
    }
    lines.push(`${f}: busy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms profiled (${((busy / total) * 100).toFixed(0)} %); % below are of busy time`);
    lines.push('  by module:');
    for (const [m, us] of [...mod].sort((a, b) => b[1] - a[1]).slice(0, 12)) lines.push(`    ${((us / busy) * 100).toFixed(1).padStart(5)} %  ${m}`);
    lines.push('  by function (self time):');
    for (const [n, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`    ${((us / busy) * 100).toFixed(1).padStart(5)} %  ${n}`);
  }
  return { text: lines.join('\n'), files: files.map((f) => path.join(dir, f)) };
}

if (require.main === module) {
  // node dist/bench/profile.js <dir>: summarise profiles made by hand
  process.stdout.write(`${summariseProfiles(process.argv[2] ?? '.').text}\n`);
}
