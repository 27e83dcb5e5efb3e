/**
 * One bad event must not lose a task, kill the plugin or stall the pool
 * (issue 14): each defect's reproduction, through the real plugin process.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { NomadLikeClient } from '../src/client/nomad-client';
import { testClient } from './harness/client';
import { statusDirFor, tasksRoot } from '../src/main/tasks/status-dir';
import { startNomadOrSkip } from './harness/skip';
import { expectStatus, recoverableOf } from './harness/assert-status';
import { FifoReader } from '../src/client/log-reader';

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

  it('never removes a recovered status directory that is not exactly one level below <state_dir>/tasks', async () => {
    const { task: bystander, handle } = await nomad.run({ command: 'sleep', args: ['1000'] });
    const state = JSON.parse(Buffer.from(handle.driverState).toString()) as { statusDir: string; pid: number };
    const gone = spawnSync('true').pid; // a pid with no process behind it any more
    // a directory elsewhere, with content, stands for "anything else" (never '/' in a test: a regression would wipe the host)
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'exec2-elsewhere-'));
    writeFileSync(path.join(elsewhere, 'keep'), 'x');
    for (const [i, dir] of [nomad.stateDir, tasksRoot(nomad.stateDir), path.join(tasksRoot(nomad.stateDir), '..'), elsewhere].entries()) {
      const id = `${bystander.config.id}-forged-${i}`;
      const forged = { ...handle, config: { ...handle.config!, id }, driverState: Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(handle.driverState).toString()), pid: gone, statusDir: dir })) };
      await nomad.recover(forged);
      await nomad.destroy(id);
      assert.ok(existsSync(state.statusDir), `destroying a handle naming ${dir} removed another task's status directory`);
    }
    assert.ok(existsSync(path.join(elsewhere, 'keep')), 'a directory outside state_dir was removed');
    rmSync(elsewhere, { recursive: true });
    await nomad.stop(bystander.config.id, 0);
    await nomad.finish(bystander);
  });

  it('leaves the plugin unconfigured when SetConfig fails on its metrics listener', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    const other = testClient();
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

  describe('log FIFOs whose reader is late or never comes', () => {
    /** A prepared task whose logmon has not opened the FIFOs (yet). */
    const withoutReader = (input: Parameters<NomadLikeClient['prepareTask']>[0]) => {
      const t = nomad.prepareTask(input);
      t.stdout?.close();
      t.stderr?.close();
      return t;
    };

    it('starts the task once the reader opens the FIFO', async () => {
      const t = withoutReader({ command: 'sh', args: ['-c', 'echo late-reader-ok; exit 6'] });
      setTimeout(() => {
        t.stdout = new FifoReader(t.config.stdoutPath);
        t.stderr = new FifoReader(t.config.stderrPath);
      }, 300);
      await nomad.startTask(t);
      assert.equal((await nomad.wait(t.config.id)).result.exitCode, 6);
      await t.stdout!.waitFor(/late-reader-ok/);
      await nomad.destroy(t.config.id);
      nomad.releaseTask(t);
    });

    it('holds no worker while readers are missing: other tasks start meanwhile, the waiting ones fail recoverable', async () => {
      const waiting = Array.from({ length: 6 }, () => withoutReader({ command: 'true' }));
      const order: string[] = [];
      const answers = waiting.map((t, i) =>
        nomad.startTask(t).then(
          () => assert.fail('started without a log reader'),
          (err: grpc.ServiceError) => {
            order.push(`waiting-${i}`);
            return err;
          },
        ),
      );
      // More waiting tasks than workers: with a worker held per waiting task this would queue behind them.
      const { task } = await nomad.run({ command: 'sh', args: ['-c', 'exit 8'] });
      order.push('normal');
      assert.equal((await nomad.finish(task)).result.exitCode, 8);
      const errs = await Promise.all(answers);
      assert.equal(order[0], 'normal', `answer order: ${order.join(', ')}`);
      for (const err of errs) {
        assert.equal(err.code, grpc.status.FAILED_PRECONDITION, err.details);
        assert.match(err.details, /no reader on log FIFO .*gave up after \d+ attempts/);
        assert.equal(recoverableOf(err), true, 'Nomad may retry');
      }
      for (const t of waiting) {
        assert.equal(existsSync(statusDirFor(nomad.stateDir, t.config.id)), false, 'state left behind');
        nomad.releaseTask(t);
      }
    });
  });
});
