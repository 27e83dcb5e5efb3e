/**
 * How a worker turns what went wrong into a LaunchFailure. FAILURE_CLASSES
 * is the one table from a cause (the addon's NativeErrorCode, or an errno
 * that decides whatever raised it) to the DriverErrorCode the RPC answers
 * with. Task launches and exec sessions share it, so the same cause always
 * gets the same gRPC status, and the main thread maps nothing again
 * (main/launch-error.ts). The worker's own failures name their DriverErrorCode
 * where they are detected (`fail`), or borrow a native code's row (`failAs`).
 * Where the addon's codes come from: StageCode() in native/addon.cc.
 */
import { closeSync } from 'node:fs';
import { isNativeError, type NativeErrorCode } from '../native/binding';
import { errnoName, systemErrorCode, type ErrnoName } from '../native/errno';
import { messageOf, type DriverErrorCode } from '../shared/errors';
import type { FailureCode, LaunchFailure, WorkerFailureCode } from '../shared/messages';

/** errnos that decide the answer whatever raised them: checked before the error's code. */
export type ErrnoClass = Extract<ErrnoName, 'ELOOP' | 'E2BIG' | 'EMFILE' | 'ENFILE'>;

export interface FailureClass {
  driverCode: DriverErrorCode;
  /** Nomad's restart policy may try again */
  recoverable: boolean;
  /** appended to the error's message: what the job author or operator can do */
  hint?: string;
  /** the failure's code instead of the error's own */
  code?: WorkerFailureCode;
}

const NOT_FOUND: FailureClass = { driverCode: 'NOT_FOUND', recoverable: false };
const INVALID: FailureClass = { driverCode: 'INVALID_ARGUMENT', recoverable: false };
const PRECONDITION: FailureClass = { driverCode: 'FAILED_PRECONDITION', recoverable: false };
const INTERNAL: FailureClass = { driverCode: 'INTERNAL', recoverable: false };
/** The plugin (or the host) is out of descriptors for now; nothing is wrong with the task. */
const OUT_OF_FDS: FailureClass = {
  driverCode: 'INTERNAL',
  recoverable: true,
  code: 'EXEC2_FDS',
  hint: " (out of file descriptors: raise the plugin's RLIMIT_NOFILE, LimitNOFILE= for a systemd unit)",
};

export const FAILURE_CLASSES: Readonly<Record<ErrnoClass | NativeErrorCode, FailureClass>> = {
  // A symlink planted where the driver never follows one: the task's doing,
  // not a missing path or a driver fault.
  ELOOP: PRECONDITION,
  // execve's E2BIG (of exec2-init, which carries the task's argv and envp, or
  // of the command): the job's args or env are too large, not a driver fault.
  E2BIG: {
    ...INVALID,
    hint: ": the task's args and env exceed the kernel's limit for execve (128 KiB per string, about a quarter of the stack limit in total)",
  },
  EMFILE: OUT_OF_FDS,
  ENFILE: OUT_OF_FDS,
  // What the job names does not exist on this host.
  EXEC2_COMMAND_NOT_FOUND: NOT_FOUND,
  EXEC2_UNVEIL_PATH: NOT_FOUND,
  EXEC2_WORKDIR: NOT_FOUND,
  // What the job asks cannot be done as asked.
  EXEC2_COMMAND_NOT_EXECUTABLE: INVALID,
  EXEC2_CREDENTIALS: INVALID,
  EXEC2_INVALID_ARGUMENT: INVALID,
  // The job is fine; the host or the task's state is not (yet) as it must be.
  EXEC2_VOLUME: PRECONDITION,
  EXEC2_TASK_EXITED: PRECONDITION,
  EXEC2_LANDLOCK: PRECONDITION,
  EXEC2_NETNS: PRECONDITION,
  EXEC2_CGROUP: PRECONDITION,
  EXEC2_SYMLINK: PRECONDITION,
  // The driver's own failure.
  EXEC2_CAPABILITIES: INTERNAL,
  EXEC2_SPAWN: INTERNAL,
  EXEC2_SYSCALL: INTERNAL,
};

const hasRow = (key: string): key is keyof typeof FAILURE_CLASSES => Object.hasOwn(FAILURE_CLASSES, key);
/** The table's errno rows (every NativeErrorCode starts with EXEC2_, no errno name does). */
const isErrnoClass = (name: string): name is ErrnoClass => hasRow(name) && !name.startsWith('EXEC2_');

/**
 * The class of a failure: its errno's, when that errno is one of the
 * classes; else its native code's; INTERNAL for anything else.
 */
export function classify(code: NativeErrorCode | null, errno: string | null): FailureClass {
  if (errno !== null && isErrnoClass(errno)) return FAILURE_CLASSES[errno];
  if (code !== null && hasRow(code)) return FAILURE_CLASSES[code];
  return INTERNAL;
}

function failure(c: FailureClass, code: FailureCode, message: string): Omit<LaunchFailure, 'ok'> {
  return { driverCode: c.driverCode, code: c.code ?? code, message: c.hint === undefined ? message : `${message}${c.hint}`, recoverable: c.recoverable };
}

export class LaunchError extends Error {
  constructor(readonly failure: Omit<LaunchFailure, 'ok'>) {
    super(failure.message);
  }
}

/** A failure of the worker's own kind, decided at the one place it is detected. */
export const fail = (driverCode: DriverErrorCode, code: WorkerFailureCode, message: string, recoverable = false): LaunchError =>
  new LaunchError({ driverCode, code, message, recoverable });

/**
 * A failure the worker detects itself that means what a native code means
 * (a cgroup or netns it cannot open, a task that has exited): answered as
 * FAILURE_CLASSES answers that code. `recoverable` when a retry may succeed
 * where the addon's failure would not.
 */
export function failAs(code: NativeErrorCode, message: string, recoverable?: boolean): LaunchError {
  const c = FAILURE_CLASSES[code];
  return new LaunchError({ driverCode: c.driverCode, code, message, recoverable: recoverable ?? c.recoverable });
}

/** The errno name of the addon's NativeError or of Node's system error, null when it has none. */
function errnoOf(err: unknown): string | null {
  if (isNativeError(err)) return err.errno === undefined ? null : errnoName(err.errno);
  return systemErrorCode(err);
}

/** What an error the worker did not raise itself means, by FAILURE_CLASSES. */
function classified(err: unknown): Omit<LaunchFailure, 'ok'> {
  const message = messageOf(err);
  const code = isNativeError(err) ? err.code : null;
  return failure(classify(code, errnoOf(err)), code ?? 'EXEC2_INTERNAL', message);
}

/** Run an addon call, turning its NativeError into a LaunchError. */
export function callNative<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw new LaunchError(classified(err));
  }
}

/**
 * The reply for whatever a worker caught: its own LaunchError as is, the
 * addon's NativeError and Node's system errors by FAILURE_CLASSES, anything
 * else INTERNAL.
 */
export function failureOf(err: unknown): LaunchFailure {
  return { ok: false, ...(err instanceof LaunchError ? err.failure : classified(err)) };
}

/**
 * EMFILE / ENFILE (the table's EXEC2_FDS class: INTERNAL and recoverable, so
 * Nomad's restart policy may try again once descriptors are free) as a
 * LaunchError with this message; null for any other error.
 */
export function fdExhaustion(err: unknown, message: string): LaunchError | null {
  const c = classify(null, errnoOf(err));
  return c === OUT_OF_FDS ? new LaunchError(failure(c, 'EXEC2_FDS', message)) : null;
}

/** Close the descriptors a worker opened for one launch; the child holds its own copies. */
export function closeAll(fds: number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}
