/** Prometheus metrics served by the plugin when metrics_address is set. */
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { NomadLikeClient } from '../src/client/nomad-client';
import { testClient } from './harness/client';
import { freePort, httpGet as get } from '../src/client/net-util';
import { startNomadOrSkip } from './harness/skip';



interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict reader of the text exposition format (version 0.0.4); NaN in any case, as Prometheus's float parser takes it. */
export function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const helps = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) {
      helps.add(line.split(' ')[2]!);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type!), `bad TYPE line: ${line}`);
      types.set(name!, type!);
      continue;
    }
    assert.ok(!line.startsWith('#'), `unexpected comment: ${line}`);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|[Nn]a[Nn]|[+-]?Inf)( \d+)?$/.exec(line);
    assert.ok(m, `not a valid sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      for (const part of m[3].match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
        const i = part.indexOf('=');
        labels[part.slice(0, i)] = JSON.parse(part.slice(i + 1)) as string;
      }
    }
    samples.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  for (const name of types.keys()) assert.ok(helps.has(name), `no HELP for ${name}`);
  return { samples, types };
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}): number =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

describe('Prometheus metrics', function () {
  this.timeout(60_000);
  let nomad: NomadLikeClient;
  let url: string;

  before(async function () {
    const port = await freePort();
    url = `http://127.0.0.1:${port}/metrics`;
    nomad = await startNomadOrSkip(this, { metrics_address: `127.0.0.1:${port}`, metrics_per_task: true });
  });

  after(async () => {
    if (nomad) assert.deepEqual(await nomad.cleanup(), []);
  });

  const scrape = async (): Promise<Sample[]> => {
    const r = await get(url);
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    return parseExposition(r.body).samples;
  };

  it('serves valid exposition text with the driver metrics and their types', async () => {
    const r = await get(url);
    const { types, samples } = parseExposition(r.body);
    assert.equal(types.get('exec2_launch_duration_seconds'), 'histogram');
    assert.equal(types.get('exec2_start_task_total'), 'counter');
    assert.equal(types.get('exec2_task_exits_total'), 'counter');
    assert.equal(types.get('exec2_tasks_running'), 'gauge');
    assert.equal(types.get('exec2_worker_queue_depth'), 'gauge');
    assert.equal(types.get('exec2_worker_utilization_ratio'), 'gauge');
    assert.equal(types.get('process_cpu_seconds_total'), 'counter');
    const info = samples.find((s) => s.name === 'exec2_info');
    assert.ok(info && info.value === 1 && info.labels.cgroup_mode && info.labels.landlock_abi, 'exec2_info with labels');
    assert.equal((await get(url.replace('/metrics', '/other'))).status, 404);
  });

  it('moves the counters with launches, failures and exits', async () => {
    const before = await scrape();
    const ok1 = await nomad.run({ command: 'true' });
    const ok2 = await nomad.run({ command: 'sh', args: ['-c', 'exit 3'] });
    const bad = nomad.prepareTask({ command: 'no-such-command-exec2' });
    await assert.rejects(nomad.startTask(bad));
    nomad.releaseTask(bad);
    await nomad.finish(ok1.task);
    await nomad.finish(ok2.task);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>): number => value(after, name, labels) - value(before, name, labels);
    assert.equal(delta('exec2_start_task_total', { outcome: 'success' }), 2);
    assert.equal(delta('exec2_start_task_total', { outcome: 'NOT_FOUND' }), 1);
    assert.equal(delta('exec2_task_exits_total', { reason: 'success' }), 1);
    assert.equal(delta('exec2_task_exits_total', { reason: 'failure' }), 1);
    for (const phase of ['plan', 'queue', 'cgroup', 'prepare', 'setup', 'spawn', 'exec_confirmed', 'reply']) {
      assert.equal(delta('exec2_launch_duration_seconds_count', { phase }), 2, `phase ${phase}`);
    }
    assert.ok(value(after, 'exec2_launch_duration_seconds_bucket', { phase: 'spawn', le: '10' }) >= 2);
  });

  it('exports per-task series with Nomad\'s label names and removes them on DestroyTask', async () => {
    const { task } = await nomad.run({ command: 'sleep', args: ['1000'] });
    const labels = { alloc_id: task.config.allocId, task: task.config.name, job: 'example', task_group: 'group', namespace: 'default' };
    const running = await scrape();
    assert.ok(running.some((s) => s.name === 'exec2_task_memory_usage_bytes' && s.labels.alloc_id === labels.alloc_id), 'per-task memory series missing');
    assert.ok(value(running, 'exec2_tasks_running') >= 1);
    await nomad.stop(task.config.id, 1000);
    await nomad.finish(task);
    const gone = await scrape();
    assert.equal(gone.filter((s) => s.labels.alloc_id === labels.alloc_id).length, 0, 'per-task series survived DestroyTask');
  });

  it('counts exec sessions by outcome', async () => {
    const { task } = await nomad.run({ command: 'sleep', args: ['1000'] });
    const id = task.config.id;
    const before = await scrape();
    assert.equal(new Set(before.filter((s) => s.name === 'exec2_exec_sessions_total').map((s) => s.labels.outcome)).size, 5, 'every outcome is exported from the start');
    await nomad.exec(id, ['true']);
    await nomad.exec(id, ['sh', '-c', 'exit 4']);
    await nomad.exec(id, ['no-such-command-exec2']);
    await nomad.execTask(id, ['true']);
    await nomad.execTask(id, ['sleep', '10'], 100);
    await assert.rejects(nomad.execTask('nope/nope/00000000', ['true']));
    const s = nomad.execStream(id, ['sleep', '1000']);
    await new Promise((r) => setTimeout(r, 100));
    s.cancel();
    await new Promise((r) => setTimeout(r, 300));
    const after = await scrape();
    const delta = (outcome: string): number => value(after, 'exec2_exec_sessions_total', { outcome }) - value(before, 'exec2_exec_sessions_total', { outcome });
    assert.deepEqual(
      { success: delta('success'), failure: delta('failure'), timeout: delta('timeout'), cancelled: delta('cancelled'), error: delta('error') },
      { success: 2, failure: 2, timeout: 1, cancelled: 1, error: 1 },
    );
    await nomad.stop(id, 1000);
    await nomad.finish(task);
  });

  it('fails SetConfig with a clear error when the address cannot be used', async () => {
    const port = Number(new URL(url).port);
    const other = testClient();
    try {
      await assert.rejects(other.startPlugin({ metrics_address: `127.0.0.1:${port}` }), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
        assert.match(err.details, /attribute "metrics_address": cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
        return true;
      });
    } finally {
      assert.deepEqual(await other.cleanup(), []);
    }
  });
});
