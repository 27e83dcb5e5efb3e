/**
 * Tasks survive the plugin: SIGKILL it with 50 tasks in flight, let some end
 * while nothing watches, start a new plugin and recover every task from the
 * handle Nomad stored.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TaskState, type TaskHandle } from '../src/gen/hashicorp/nomad/plugins/drivers/driver';
import type { NomadLikeClient, PreparedTask, TaskInput } from '../src/client/nomad-client';
import { PluginProcess } from '../src/client/plugin-process';
import { skipUnless, startNomadOrSkip } from './harness/skip';

interface Expect {
  exit: number;
  signal: number;
  oom?: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('recovery after the plugin dies', function () {
  this.timeout(180_000);
  let nomad: NomadLikeClient;

  before(async function () {
    skipUnless(this, existsSync('/usr/bin/python3'), '/usr/bin/python3 is not installed (apt-get install python3)');
    nomad = await startNomadOrSkip(this);
  });

  after(async () => {
    if (nomad) assert.deepEqual(await nomad.cleanup(), [], 'cgroups left behind');
  });

  async function newPlugin(): Promise<void> {
    nomad.plugin = await PluginProcess.start();
    await nomad.configure();
  }

  it('recovers 50 tasks with their true results, including two that ended while no plugin ran', async () => {
    const specs: Array<{ input: TaskInput; expect: Expect | 'running'; phase: 'early' | 'down' | 'later' | 'run' }> = [];
    for (let i = 0; i < 44; i++) specs.push({ input: { command: 'sleep', args: ['1000'] }, expect: 'running', phase: 'run' });
    specs.push({ input: { command: 'sh', args: ['-c', 'sleep 2; exit 21'] }, expect: { exit: 21, signal: 0 }, phase: 'down' });
    specs.push({ input: { command: 'sh', args: ['-c', 'sleep 2; exit 22'] }, expect: { exit: 22, signal: 0 }, phase: 'down' });
    specs.push({ input: { command: 'sh', args: ['-c', 'sleep 2; kill -KILL $$'] }, expect: { exit: 137, signal: 9 }, phase: 'down' });
    specs.push({ input: { command: 'sh', args: ['-c', 'sleep 6; exit 3'] }, expect: { exit: 3, signal: 0 }, phase: 'later' });
    specs.push({ input: { command: 'sh', args: ['-c', 'sleep 6; exit 4'] }, expect: { exit: 4, signal: 0 }, phase: 'later' });
    specs.push({ input: { command: 'python3', args: ['-c', 'b = bytearray(512 * 1024 * 1024)'], memoryMb: 32 }, expect: { exit: 137, signal: 9, oom: true }, phase: 'early' });
    assert.equal(specs.length, 50);

    const started: Array<{ task: PreparedTask; handle: TaskHandle; expect: Expect | 'running'; phase: string }> = [];
    for (const s of specs) {
      const { task, handle } = await nomad.run(s.input);
      started.push({ task, handle, expect: s.expect, phase: s.phase });
    }
    const oldPid = nomad.plugin.pid;
    await sleep(300);
    await nomad.plugin.sigkill();
    assert.equal(existsSync(`/proc/${oldPid}`), false, 'old plugin still alive');

    // Two (three) tasks end while no plugin is running.
    await sleep(2500);
    await newPlugin();
    for (const s of started) await nomad.recover(s.handle);
    // RecoverTask is idempotent.
    await nomad.recover(started[0]!.handle);

    const ids = new Set(started.map((s) => s.task.config.id));
    assert.equal(ids.size, 50, 'duplicate task ids');

    for (const s of started) {
      if (s.expect === 'running') {
        const ins = await nomad.inspect(s.task.config.id);
        assert.equal(ins.task!.state, TaskState.RUNNING, `${s.task.config.id} should still run`);
        continue;
      }
      const r = await nomad.wait(s.task.config.id);
      assert.equal(r.err, '', `${s.phase}: ${r.err}`);
      assert.equal(r.result.exitCode, s.expect.exit, `${s.phase} task exit code`);
      assert.equal(r.result.signal, s.expect.signal, `${s.phase} task signal`);
      assert.equal(r.result.oomKilled, s.expect.oom ?? false, `${s.phase} task oom`);
    }

    // Signals, stats and stops work on recovered tasks exactly as on fresh ones.
    const sleeper = started.find((s) => s.expect === 'running')!;
    await nomad.signal(sleeper.task.config.id, 'SIGTERM');
    const killed = await nomad.wait(sleeper.task.config.id);
    assert.equal(killed.result.signal, 15);

    const rest = started.filter((s) => s.expect === 'running' && s !== sleeper);
    await Promise.all(rest.map((s) => nomad.stop(s.task.config.id, 5000)));
    for (const s of rest) {
      const r = await nomad.wait(s.task.config.id);
      assert.equal(r.result.signal, 2, 'sleep ends on SIGINT');
    }
    for (const s of started) {
      await nomad.destroy(s.task.config.id);
      const member = s.task.cgroup.dirs.memory ?? s.task.cgroup.dirs.unified!;
      assert.equal(readFileSync(path.join(member, 'cgroup.procs'), 'utf8').trim(), '', 'process left in the task cgroup');
      nomad.releaseTask(s.task);
    }
  });

  it('keeps tasks running through GRPCController/Shutdown and an agent that goes away', async () => {
    const { task, handle } = await nomad.run({ command: 'sh', args: ['-c', 'echo started; sleep 1000'] });
    await task.stdout!.waitFor(/started/);
    // Nomad's kill sequence on agent shutdown: the plugin exits, the task stays.
    assert.ok(await nomad.plugin.kill(), 'plugin needed SIGKILL');
    const pid = Number((JSON.parse(Buffer.from(handle.driverState).toString()) as { pid: unknown }).pid);
    assert.ok(existsSync(`/proc/${pid}`), 'task died with the plugin');
    await newPlugin();
    await nomad.recover(handle);
    const ins = await nomad.inspect(task.config.id);
    assert.equal(ins.task!.state, TaskState.RUNNING);
    await nomad.stop(task.config.id, 2000, 'SIGTERM');
    assert.equal((await nomad.wait(task.config.id)).result.signal, 15);
    await nomad.destroy(task.config.id);
    nomad.releaseTask(task);
  });

  it('survives broken stdout/stderr pipes (the agent died) and keeps its tasks', async () => {
    const { task } = await nomad.run({ command: 'sleep', args: ['1000'] });
    // Close our ends of the plugin's pipes, as a dead agent would, then make it log.
    nomad.plugin.child.stdout!.destroy();
    nomad.plugin.child.stderr!.destroy();
    await nomad.signal(task.config.id, 'SIGWHAT').catch(() => undefined);
    await nomad.inspect(task.config.id);
    await sleep(200);
    assert.equal(nomad.plugin.exited, null, 'plugin died on EPIPE');
    await nomad.stop(task.config.id, 1000);
    await nomad.wait(task.config.id);
    await nomad.destroy(task.config.id);
    nomad.releaseTask(task);
    await nomad.plugin.sigkill();
    await newPlugin();
  });

  it('refuses a handle whose pid now belongs to another process, and leaves that process alone', async () => {
    const { task, handle } = await nomad.run({ command: 'sleep', args: ['1000'] });
    const state = JSON.parse(Buffer.from(handle.driverState).toString()) as Record<string, unknown>;
    // Start times have clock-tick (10 ms) resolution: a stranger born in the
    // task's own tick would be indistinguishable from it (a real pid reuse
    // needs the whole pid space to wrap first, far longer than a tick).
    await sleep(30);
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const forged: TaskHandle = {
        ...handle,
        config: { ...handle.config!, id: `${handle.config!.id}-reused` },
        driverState: Buffer.from(JSON.stringify({ ...state, pid: stranger.pid, statusDir: '/nonexistent/status-dir' })),
      };
      await assert.rejects(nomad.recover(forged), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
        assert.match(err.details, /now belongs to another process/);
        return true;
      });
      assert.equal(stranger.exitCode, null);
      assert.equal(stranger.signalCode, null);
    } finally {
      stranger.kill();
    }
    await nomad.stop(task.config.id, 1000);
    await nomad.wait(task.config.id);
    await nomad.destroy(task.config.id);
    nomad.releaseTask(task);
  });

  it('rejects handles from other drivers or versions with a clear error', async () => {
    const { task, handle } = await nomad.run({ command: 'sleep', args: ['1000'] });
    const other = (id: string, patch: Partial<TaskHandle>): TaskHandle => ({ ...handle, ...patch, config: { ...handle.config!, id } });
    await assert.rejects(nomad.recover(other('x/y/1', { version: 7 })), /handle version 7 is not supported/);
    await assert.rejects(nomad.recover(other('x/y/2', { driverState: Buffer.from([0x83, 0xaa]) })), /not from this driver/);
    await nomad.stop(task.config.id, 1000);
    await nomad.wait(task.config.id);
    await nomad.destroy(task.config.id);
    nomad.releaseTask(task);
  });
});
