/**
 * One command running inside a task for `nomad alloc exec` or a script
 * check: its stdio (a pty, or three pipes), its exit, and how to kill what it
 * started. The command is a child of the plugin (see launchExec in the
 * addon), so its exit status comes from waiting on it, never from the task.
 */
import { closeSync, fchmodSync, fchownSync, openSync } from 'node:fs';
import * as net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import * as tty from 'node:tty';
import type { ExitResult } from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import type { Exec2Native, WaitStatus } from '../../native/binding';
import type { ExecLaunchRequest, LaunchFailure } from '../../shared/messages';
import { failedPrecondition, messageOf } from '../../shared/errors';
import { LaunchFailureError } from '../launch-error';
import type { Launcher } from '../launcher';
import type { Logger } from '../log';
import type { TaskRecord } from '../tasks/task-record';
import { readProcs, taskOnlyDirs, type TaskCgroup } from '../../shared/cgroups/task-cgroup';
import { procStat } from '../../shared/proc';
import type { TaskSandbox } from '../tasks/sandbox';
import type { PlannedRule } from '../../shared/unveil';
import { isDynamicUserName } from '../users';

/** After the command exits, output still buffered is forwarded until no byte came for this long... */
export const DRAIN_IDLE_MS = 1000;
/** ...and never longer than this (background processes may hold the output open forever). */
export const DRAIN_MAX_MS = 10_000;
/** Terminal size until the client sends one: programs misbehave on 0x0. */
const DEFAULT_ROWS = 24;
const DEFAULT_COLS = 80;
/**
 * The one rule a terminal session gets beyond the task's: its own controlling
 * terminal under the name /dev/tty (less, vi, ssh and password prompts open
 * it). /dev/tty only ever reaches the caller's controlling terminal; the task
 * has none (opening it fails with ENXIO), so this grants nothing else.
 */
const CONTROLLING_TERMINAL_RULE: PlannedRule = { path: '/dev/tty', mode: 'rw', optional: true, anchor: false, beneath: -1 };

export interface ExecTarget {
  task: TaskRecord;
  sandbox: TaskSandbox;
}

export interface ExecSessionDeps {
  native: () => Exec2Native;
  launcher: Launcher;
  initPath: string;
  logger: Logger;
}

export interface ExecSessionOptions {
  argv: string[];
  tty: boolean;
  /** 'pipe': the caller feeds stdin; 'null': /dev/null (script checks) */
  stdin: 'pipe' | 'null';
}

/**
 * The command could not be started; `failure.code` says why (NativeErrorCode
 * or the worker's own). No `recoverable`: Nomad reads that from StartTask only.
 */
export class ExecStartError extends LaunchFailureError {
  constructor(failure: LaunchFailure) {
    super(failure);
    this.name = 'ExecStartError';
  }

  /** What a shell would exit with for this failure, when it is the command's fault (127, 126), else null. */
  get shellExitCode(): number | null {
    if (this.failure.code === 'EXEC2_COMMAND_NOT_FOUND') return 127;
    if (this.failure.code === 'EXEC2_COMMAND_NOT_EXECUTABLE') return 126;
    return null;
  }
}

export function exitResultOf(status: WaitStatus | null): ExitResult {
  // null: someone else reaped our child; nothing true can be said about it.
  if (!status) return { exitCode: -1, signal: 0, oomKilled: false };
  return { exitCode: status.exitCode, signal: status.signal, oomKilled: false };
}

export class ExecSession {
  /** the command's output; in tty mode the terminal's (stdout and stderr together) */
  readonly stdout: Readable;
  /** null in tty mode */
  readonly stderr: Readable | null;
  readonly exit: Promise<ExitResult>;
  private readonly stdin: Writable | null;
  private reaped = false;
  private exitedAt = 0;
  private lastOutputAt = Date.now();
  private disposed = false;

  private constructor(
    private readonly deps: ExecSessionDeps,
    /** host pid; also its process group and session id (it called setsid) */
    readonly pid: number,
    pidfd: number,
    /** the task's cgroup: every process the command starts lives in it */
    private readonly cgroup: TaskCgroup,
    private readonly terminalFd: number,
    io: { stdout: Readable; stderr: Readable | null; stdin: Writable | null },
  ) {
    this.stdout = io.stdout;
    this.stderr = io.stderr;
    this.stdin = io.stdin;
    for (const s of this.outputs()) {
      s.on('data', () => {
        this.lastOutputAt = Date.now();
      });
      // A pty master reads EIO once every slave fd is closed: that is its EOF.
      s.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EIO') deps.logger.debug('exec output stream failed', { pid, error: err.message });
      });
    }
    // EPIPE when the command exits without reading all of its input: expected.
    this.stdin?.on('error', (err: NodeJS.ErrnoException) => deps.logger.debug('exec stdin failed', { pid, error: err.message }));
    this.exit = new Promise<ExitResult>((resolve) => {
      deps.native().watchExit(pidfd, (status) => {
        this.reaped = true;
        this.exitedAt = Date.now();
        // The idle window starts at the exit: output written just before it
        // may not have been read yet, however long the command was silent.
        this.lastOutputAt = this.exitedAt;
        resolve(exitResultOf(status));
      });
    });
  }

  /** Start `opts.argv` inside the task. Throws ExecStartError when the command cannot start. */
  static async start(deps: ExecSessionDeps, target: ExecTarget, opts: ExecSessionOptions): Promise<ExecSession> {
    const { task, sandbox } = target;
    const native = deps.native();
    const { uid, gid } = task.state.user;
    const childFds: number[] = [];
    const ourFds: number[] = [];
    try {
      let stdinFd: number;
      let stdoutFd = -1;
      let stderrFd = -1;
      let terminalFd = -1;
      let stdinOurs = -1;
      let stdoutOurs = -1;
      let stderrOurs = -1;
      if (opts.tty) {
        const pty = native.openPty();
        ourFds.push(pty.master);
        childFds.push(pty.slave);
        // The session runs as the task user and must own its terminal (for
        // stty, for reopening it as /dev/tty); nobody else may write to it.
        fchownSync(pty.slave, uid, gid);
        fchmodSync(pty.slave, 0o600);
        native.setWindowSize(pty.master, DEFAULT_ROWS, DEFAULT_COLS);
        terminalFd = pty.master;
        stdinFd = pty.slave;
      } else {
        if (opts.stdin === 'null') {
          stdinFd = openSync('/dev/null', 'r');
          childFds.push(stdinFd);
        } else {
          const [r, w] = native.pipe();
          childFds.push(r);
          ourFds.push(w);
          stdinFd = r;
          stdinOurs = w;
        }
        const [or, ow] = native.pipe();
        ourFds.push(or);
        childFds.push(ow);
        const [er, ew] = native.pipe();
        ourFds.push(er);
        childFds.push(ew);
        stdoutFd = ow;
        stderrFd = ew;
        stdoutOurs = or;
        stderrOurs = er;
      }
      const env = { ...sandbox.env };
      // Full-screen programs need a terminal type; the task itself has no terminal.
      if (opts.tty && !env.TERM) env.TERM = 'xterm';
      const req: ExecLaunchRequest = {
        kind: 'exec',
        taskId: task.config.id,
        user: { name: task.state.user.name, resolved: dynamicCredentials(task) },
        expect: { uid, gid },
        taskPid: task.state.pid,
        taskPidStartTime: task.state.pidStartTime,
        cgroup: task.state.cgroup,
        tty: opts.tty,
        stdinFd,
        stdoutFd,
        stderrFd,
        argv: opts.argv,
        env,
        cwd: sandbox.cwd,
        cwdBeneath: sandbox.cwdBeneath,
        unveil: opts.tty ? [...sandbox.unveil, CONTROLLING_TERMINAL_RULE] : sandbox.unveil,
        oomScoreAdj: sandbox.oomScoreAdj,
        caps: sandbox.caps,
        scopeAbstractUnixSockets: sandbox.scopeAbstractUnixSockets,
        initPath: deps.initPath,
      };
      const reply = await deps.launcher.launchExec(req);
      // The command has its own copies now (or never will).
      closeAll(childFds);
      if (!reply.ok) throw new ExecStartError(reply);
      const io = opts.tty
        ? (() => {
            const t = new tty.ReadStream(terminalFd);
            return { stdout: t as Readable, stderr: null, stdin: t as Writable };
          })()
        : {
            stdout: new net.Socket({ fd: stdoutOurs, readable: true, writable: false }) as Readable,
            stderr: new net.Socket({ fd: stderrOurs, readable: true, writable: false }) as Readable,
            stdin: stdinOurs >= 0 ? (new net.Socket({ fd: stdinOurs, readable: false, writable: true }) as Writable) : null,
          };
      ourFds.length = 0; // owned by the streams from here on
      return new ExecSession(deps, reply.pid, reply.pidfd, task.state.cgroup, terminalFd, io);
    } catch (err) {
      closeAll(childFds);
      closeAll(ourFds);
      throw err;
    }
  }

  get tty(): boolean {
    return this.terminalFd >= 0;
  }

  /** Feed stdin; false means wait for 'drain' on `stdinStream` (backpressure). */
  write(data: Buffer): boolean {
    if (!this.stdin || this.stdin.destroyed || this.stdin.writableEnded) return true;
    return this.stdin.write(data);
  }

  onStdinDrain(fn: () => void): void {
    if (!this.stdin || this.stdin.destroyed || this.stdin.writableEnded) fn();
    else this.stdin.once('drain', fn);
  }

  /**
   * End of input. Pipes: close the pipe (the command reads EOF). Terminal:
   * type the end-of-file character (^D) when the line discipline is
   * canonical; a program in raw mode has no in-band EOF, so nothing is sent.
   */
  closeStdin(): void {
    if (!this.stdin || this.stdin.destroyed || this.stdin.writableEnded) return;
    if (!this.tty) {
      this.stdin.end();
      return;
    }
    try {
      const eof = this.deps.native().terminalEof(this.terminalFd);
      if (eof !== null) this.stdin.write(Buffer.from([eof]));
    } catch (err) {
      this.deps.logger.debug('cannot read terminal settings', { pid: this.pid, error: messageOf(err) });
    }
  }

  resize(rows: number, cols: number): void {
    if (!this.tty || this.disposed) return;
    const clamp = (n: number): number => Math.max(0, Math.min(65535, Math.trunc(n)));
    try {
      this.deps.native().setWindowSize(this.terminalFd, clamp(rows), clamp(cols));
    } catch (err) {
      this.deps.logger.debug('cannot resize exec terminal', { pid: this.pid, error: messageOf(err) });
    }
  }

  /**
   * SIGKILL the command's process group, then every other process group of
   * its session (shell job control puts jobs in groups of their own). One
   * pass, no polling: a group kill also reaches whatever its members fork
   * meanwhile, and the command's own exit arrives through its pidfd watcher.
   * The session's members are found among the task cgroup's processes, never
   * by scanning the host's /proc: the cost is the task's size, also inside
   * go-plugin's 2 s shutdown window. A process that called setsid() (or
   * moved to a group of its own between the read and the kill) escapes; it
   * stays in the task's namespaces and cgroup and dies with the task.
   */
  kill(): void {
    // The group id is the command's pid; while the command is unreaped that
    // number cannot belong to anyone else.
    if (!this.reaped) signalQuietly(-this.pid);
    for (const pgrp of this.sessionGroups()) signalQuietly(-pgrp);
  }

  /**
   * Process groups (host ids) of live processes in the command's session.
   * While any member lives, the session id (the command's pid) and each
   * group id stay allocated, so they cannot name anyone else's processes.
   */
  private sessionGroups(): Set<number> {
    const groups = new Set<number>();
    const dir = taskOnlyDirs(this.cgroup)[0];
    if (!dir) return groups;
    for (const pid of readProcs(dir)) {
      const st = procStat(pid);
      if (st && st.session === this.pid && st.state !== 'Z') groups.add(st.pgrp);
    }
    return groups;
  }

  /**
   * Resolves once the command has exited and its output is forwarded: both
   * outputs at EOF, or no output for DRAIN_IDLE_MS while the consumer keeps
   * up (time spent paused for backpressure does not count), or DRAIN_MAX_MS
   * after the exit. Output streams are destroyed afterwards.
   */
  async finished(): Promise<ExitResult> {
    const result = await this.exit;
    const outs = this.outputs();
    const ended = (s: Readable): boolean => s.destroyed || s.readableEnded;
    await new Promise<void>((resolve) => {
      const check = (): boolean => {
        const now = Date.now();
        if (outs.every(ended)) return true;
        if (outs.some((s) => s.isPaused())) this.lastOutputAt = now;
        return now - this.lastOutputAt >= DRAIN_IDLE_MS || now - this.exitedAt >= DRAIN_MAX_MS;
      };
      if (check()) return resolve();
      const timer = setInterval(() => {
        if (!check()) return;
        clearInterval(timer);
        resolve();
      }, 50);
    });
    return result;
  }

  /** Release every descriptor of the session. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of [...this.outputs(), this.stdin]) s?.destroy();
  }

  private outputs(): Readable[] {
    return this.stderr ? [this.stdout, this.stderr] : [this.stdout];
  }
}

/**
 * Dynamic users resolve without a lookup, to the ids the task was started
 * with (checked against the dynamic-user range and the user databases at
 * StartTask; a later change of the range must not strand a running task);
 * named users are looked up again by the worker.
 */
function dynamicCredentials(task: TaskRecord): ExecLaunchRequest['user']['resolved'] {
  const u = task.state.user;
  if (!isDynamicUserName(u.name)) return null;
  if (u.uid === 0 || u.gid === 0) throw failedPrecondition(`task ${task.config.id}: dynamic user "${u.name}" is recorded with uid ${u.uid} gid ${u.gid}; refusing to exec as root`);
  return { uid: u.uid, gid: u.gid, groups: [], home: '/nonexistent' };
}

function signalQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

function closeAll(fds: number[]): void {
  for (const fd of fds.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}
