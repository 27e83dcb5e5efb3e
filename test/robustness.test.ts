/**
 * One bad event must not lose a task, kill the plugin or stall the pool
 * (issue 14): each defect's reproduction, through the real plugin process.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { NomadLikeClient } from '../src/client/nomad-client';
import { statusDirFor, tasksRoot } from '../src/main/tasks/status-dir';
import { startNomadOrSkip } from './harness/skip';
import { expectStatus } from './harness/assert-status';

describe('robustness: hostile input through the plugin', function () {
  this.timeout(120_000);
  let nomad: NomadLikeClient;

  before(async function () {
    nomad = await startNomadOrSkip(this);
  });

  after(async () => {
    if (nomad) assert.deepEqual(await nomad.cleanup(), [], 'cgroups left behind');
  });

  it('keeps every other task\'s status directory whatever the task id (".", "..", "/", NUL, 4 KiB)', async () => {
    const { task: bystander, handle } = await nomad.run({ command: 'sleep', args: ['1000'] });
    const bystanderDir = (JSON.parse(Buffer.from(handle.driverState).toString()) as { statusDir: string }).statusDir;
    assert.ok(existsSync(bystanderDir));
    const ids = ['.', '..', '../..', '/', 'a/../../..', 'nul\0id', 'x'.repeat(4096)];
    for (const id of ids) {
      const t = nomad.prepareTask({ command: 'sh', args: ['-c', 'exit 3'] });
      t.config.id = id;
      await nomad.startTask(t);
      assert.ok(existsSync(bystanderDir), `StartTask of id ${JSON.stringify(id.slice(0, 16))} removed another task's status directory`);
      const r = await nomad.wait(id);
      assert.deepEqual({ exit: r.result.exitCode, err: r.err }, { exit: 3, err: '' }, `id ${JSON.stringify(id.slice(0, 16))}`);
      await nomad.destroy(id);
      assert.ok(existsSync(bystanderDir), `DestroyTask of id ${JSON.stringify(id.slice(0, 16))} removed another task's status directory`);
      nomad.releaseTask(t);
    }
    assert.deepEqual(readdirSync(tasksRoot(nomad.stateDir)), [path.basename(bystanderDir)], 'only the running task keeps a status directory');
    await nomad.stop(bystander.config.id, 0);
    await nomad.finish(bystander);
  });

  it('leaves the plugin unconfigured when SetConfig fails on its metrics listener', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    const other = new NomadLikeClient();
    try {
      await expectStatus(other.startPlugin({ metrics_address: `127.0.0.1:${port}` }), grpc.status.INVALID_ARGUMENT, /metrics_address.*EADDRINUSE/);
      const t = other.prepareTask({ command: 'true' });
      await expectStatus(other.startTask(t), grpc.status.FAILED_PRECONDITION, /not configured/);
      other.releaseTask(t);
    } finally {
      blocker.close();
      assert.deepEqual(await other.cleanup(), []);
    }
  });

  it('answers oversize args and env with INVALID_ARGUMENT (E2BIG) and keeps serving', async () => {
    const cases: Array<[string, { args?: string[]; env?: Record<string, string> }]> = [
      ['one argument longer than MAX_ARG_STRLEN', { args: ['y'.repeat(200 * 1024)] }],
      ['arguments beyond ARG_MAX', { args: Array.from({ length: 40 }, () => 'z'.repeat(100 * 1024)) }],
      ['an environment beyond ARG_MAX', { env: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`BIG_${i}`, 'e'.repeat(100 * 1024)])) }],
    ];
    for (const [what, input] of cases) {
      const t = nomad.prepareTask({ command: 'true', ...input });
      await expectStatus(nomad.startTask(t), grpc.status.INVALID_ARGUMENT, /E2BIG|too long|Argument list/i).catch((err: Error) => {
        throw new Error(`${what}: ${err.message}`);
      });
      assert.equal(existsSync(statusDirFor(nomad.stateDir, t.config.id)), false, `${what}: state left behind`);
      nomad.releaseTask(t);
    }
    const { task } = await nomad.run({ command: 'true' });
    assert.equal((await nomad.finish(task)).result.exitCode, 0);
  });
});
