/**
 * Driver.ExecTask: run a command inside the task to completion (Nomad's
 * script checks). stdin is /dev/null; stdout and stderr are collected
 * separately, each capped at EXEC_OUTPUT_CAP bytes (the last bytes are kept:
 * the end of a failing check's output is usually what explains it); a
 * timeout kills the command's process group and session. The response always
 * carries `result`: Nomad dereferences it unconditionally.
 */
import type { ServerUnaryCall } from '@grpc/grpc-js';
import type { ExecTaskRequest, ExecTaskResponse } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import type { ExecHost } from './exec-registry';
import { durationMs } from '../rpc/time';
import type { ExecSession } from './exec-session';
import { validateCommand } from './exec-streaming';

export const EXEC_OUTPUT_CAP = 64 * 1024;

/** Keeps the last `cap` bytes written to it. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  dropped = 0;

  constructor(private readonly cap: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.cap) {
      const first = this.chunks[0]!;
      const excess = this.size - this.cap;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
        this.dropped += first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
        this.dropped += excess;
      }
    }
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

export async function execTask(tasks: ExecHost, req: ExecTaskRequest, call?: ServerUnaryCall<ExecTaskRequest, ExecTaskResponse>): Promise<ExecTaskResponse> {
  const timeoutMs = durationMs(req.timeout);
  let session: ExecSession;
  try {
    const argv = validateCommand(req.command);
    session = await tasks.startExec(req.taskId, { argv, tty: false, stdin: 'null' });
  } catch (err) {
    // Not found / not executable too: Nomad shows only a check's stdout, but
    // it shows an error's text, so the reason reaches the operator this way.
    tasks.execEnded('error');
    throw err;
  }
  const stdout = new TailBuffer(EXEC_OUTPUT_CAP);
  const stderr = new TailBuffer(EXEC_OUTPUT_CAP);
  session.stdout.on('data', (c: Buffer) => stdout.push(c));
  session.stderr!.on('data', (c: Buffer) => stderr.push(c));

  let timedOut = false;
  const timer = timeoutMs > 0
    ? setTimeout(() => {
        timedOut = true;
        session.kill();
      }, timeoutMs)
    : undefined;
  let cancelled = false;
  const onCancel = (): void => {
    cancelled = true;
    session.kill();
  };
  call?.on('cancelled', onCancel);
  try {
    const result = await session.finished();
    if (timedOut) stderr.push(Buffer.from(`\nexec2: timed out after ${timeoutMs} ms; killed the command and everything it started\n`));
    tasks.execEnded(cancelled ? 'cancelled' : timedOut ? 'timeout' : result.exitCode === 0 && result.signal === 0 ? 'success' : 'failure');
    return { stdout: stdout.toBuffer(), stderr: stderr.toBuffer(), result };
  } finally {
    clearTimeout(timer);
    call?.removeListener('cancelled', onCancel);
    session.dispose();
  }
}
