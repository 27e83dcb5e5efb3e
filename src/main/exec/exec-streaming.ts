/**
 * Driver.ExecTaskStreaming (`nomad alloc exec`), protocol reference §5.14:
 * the first message carries setup{task_id, command, tty}; then stdin data,
 * stdin close, terminal sizes and empty heartbeats arrive. We answer with
 * stdout/stderr chunks, a close for each stream, `exited` with the result,
 * and end the call with OK.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { Readable } from 'node:stream';
import type {
  ExecTaskStreamingRequest,
  ExecTaskStreamingRequest_Setup as Setup,
  ExecTaskStreamingResponse,
  ExitResult,
} from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import { invalidArgument } from '../../shared/errors';
import { toServiceError } from '../rpc/service-error';
import type { Logger } from '../log';
import type { ExecHost } from './exec-registry';
import { ExecStartError, type ExecSession } from './exec-session';

/** Bytes per stdout/stderr message (Go's exec helper reads 4 KiB at a time too). */
export const EXEC_CHUNK_BYTES = 4096;

type Call = ServerDuplexStream<ExecTaskStreamingRequest, ExecTaskStreamingResponse>;

export function validateCommand(command: readonly string[]): string[] {
  if (command.length === 0 || command[0] === '') throw invalidArgument('exec needs a command (an empty argv was given)');
  command.forEach((a, i) => {
    if (a.includes('\0')) throw invalidArgument(`exec command argument ${i} contains a NUL byte`);
  });
  return [...command];
}

export function execTaskStreaming(tasks: ExecHost, logger: Logger): (call: Call) => void {
  return (call) => new ExecStream(call, tasks, logger).listen();
}

class ExecStream {
  private phase: 'setup' | 'starting' | 'running' | 'done' = 'setup';
  private session: ExecSession | null = null;
  /** input that arrived while the command was being started */
  private readonly early: ExecTaskStreamingRequest[] = [];
  private cancelled = false;

  constructor(
    private readonly call: Call,
    private readonly tasks: ExecHost,
    private readonly logger: Logger,
  ) {}

  listen(): void {
    this.call.on('data', (m: ExecTaskStreamingRequest) => this.onMessage(m));
    // The client hung up (nomad alloc exec ^C, a dropped connection): kill
    // what the session started; nobody is left to answer.
    this.call.on('cancelled', () => this.onCancelled());
    this.call.on('error', () => this.onCancelled());
    // A half-close by the client is not the end of stdin (Go's helper also
    // only acts on an explicit stdin close); the session runs on.
    this.call.on('end', () => undefined);
  }

  private onMessage(m: ExecTaskStreamingRequest): void {
    switch (this.phase) {
      case 'setup':
        if (!m.setup) {
          this.fail(invalidArgument('the first ExecTaskStreaming message must carry setup {task_id, command, tty}'));
          return;
        }
        this.phase = 'starting';
        void this.start(m.setup);
        return;
      case 'starting':
        this.early.push(m);
        return;
      case 'running':
        this.input(m);
        return;
      case 'done':
        return;
    }
  }

  private input(m: ExecTaskStreamingRequest): void {
    const s = this.session!;
    if (m.stdin) {
      if (m.stdin.data.length > 0 && !s.write(m.stdin.data)) {
        // The command reads slower than the client types: stop reading the call.
        this.call.pause();
        s.onStdinDrain(() => this.call.resume());
      }
      if (m.stdin.close) s.closeStdin();
    } else if (m.ttySize) {
      s.resize(m.ttySize.height, m.ttySize.width);
    } else if (m.setup) {
      this.logger.debug('ignoring a second exec setup message', { pid: s.pid });
    }
    // else: heartbeat
  }

  private async start(setup: Setup): Promise<void> {
    let session: ExecSession;
    try {
      const argv = validateCommand(setup.command);
      session = await this.tasks.startExec(setup.taskId, { argv, tty: setup.tty, stdin: 'pipe' });
    } catch (err) {
      if (err instanceof ExecStartError && err.shellExitCode !== null) {
        // Like a shell: the reason on stderr, 127 (not found) or 126 (cannot execute).
        this.finishWithoutCommand(`exec2: ${err.message}\n`, err.shellExitCode);
      } else {
        this.fail(err);
      }
      return;
    }
    this.session = session;
    if (this.cancelled) {
      session.kill();
      session.dispose();
      this.tasks.execEnded('cancelled');
      return;
    }
    this.phase = 'running';
    this.logger.debug('exec session started', { task_id: setup.taskId, pid: session.pid, tty: setup.tty, command: setup.command[0] });
    this.forward(session.stdout, 'stdout');
    if (session.stderr) this.forward(session.stderr, 'stderr');
    for (const m of this.early.splice(0)) this.input(m);

    const result = await session.finished();
    session.dispose();
    if (this.cancelled) return;
    this.phase = 'done';
    this.send({ stdout: { data: Buffer.alloc(0), close: true }, exited: false });
    this.send({ stderr: { data: Buffer.alloc(0), close: true }, exited: false });
    this.send({ exited: true, result });
    this.call.end();
    this.tasks.execEnded(result.exitCode === 0 && result.signal === 0 ? 'success' : 'failure');
    this.logger.debug('exec session ended', { task_id: setup.taskId, pid: session.pid, exit_code: result.exitCode, signal: result.signal });
  }

  /** Output → messages of at most EXEC_CHUNK_BYTES; stop reading while the client is behind. */
  private forward(stream: Readable, which: 'stdout' | 'stderr'): void {
    stream.on('data', (chunk: Buffer) => {
      if (this.phase === 'done' || this.cancelled) return;
      let ok = true;
      for (let off = 0; off < chunk.length; off += EXEC_CHUNK_BYTES) {
        ok = this.send({ [which]: { data: chunk.subarray(off, off + EXEC_CHUNK_BYTES), close: false }, exited: false }) && ok;
      }
      if (!ok) {
        stream.pause();
        this.call.once('drain', () => stream.resume());
      }
    });
  }

  private finishWithoutCommand(message: string, exitCode: number): void {
    this.phase = 'done';
    const result: ExitResult = { exitCode, signal: 0, oomKilled: false };
    this.send({ stderr: { data: Buffer.from(message), close: false }, exited: false });
    this.send({ stdout: { data: Buffer.alloc(0), close: true }, exited: false });
    this.send({ stderr: { data: Buffer.alloc(0), close: true }, exited: false });
    this.send({ exited: true, result });
    this.call.end();
    this.tasks.execEnded('failure');
  }

  private send(m: ExecTaskStreamingResponse): boolean {
    if (this.cancelled || this.call.destroyed || this.call.writableEnded) return true;
    return this.call.write(m);
  }

  private fail(err: unknown): void {
    this.phase = 'done';
    const se = toServiceError(err);
    this.logger.debug('rpc failed', { method: 'ExecTaskStreaming', code: se.code, error: se.details });
    this.call.emit('error', se);
    this.tasks.execEnded('error');
  }

  private onCancelled(): void {
    if (this.cancelled || this.phase === 'done') return;
    this.cancelled = true;
    const s = this.session;
    if (!s) return; // start() kills it when the launch returns
    this.phase = 'done';
    s.kill();
    // Nobody reads the call any more: let the output drain to EOF.
    s.stdout.resume();
    s.stderr?.resume();
    this.tasks.execEnded('cancelled');
    // finished() in start() releases the descriptors once the command is reaped.
    this.logger.debug('exec session cancelled by the client; killed its processes', { pid: s.pid });
  }
}
