/**
 * How a worker turns what went wrong into a LaunchFailure: one error class
 * and one classification of the addon's NativeError codes, shared by task
 * launches and exec sessions so the same cause always gets the same gRPC
 * status.
 */
import { closeSync } from 'node:fs';
import { E2BIG, ELOOP } from '../native/errno';
import type { LaunchFailure } from '../shared/messages';

export class LaunchError extends Error {
  constructor(readonly failure: Omit<LaunchFailure, 'ok'>) {
    super(failure.message);
  }
}

export const fail = (kind: LaunchFailure['kind'], code: string, message: string, recoverable = false): LaunchError =>
  new LaunchError({ kind, code, message, recoverable });

/** A NativeError from the addon (launch or launchExec) as a LaunchError. */
function nativeFailure(err: unknown): LaunchError {
  const e = err as Error & { code?: unknown; errno?: unknown };
  const code = typeof e.code === 'string' ? e.code : 'EXEC2_SYSCALL';
  // ELOOP: a symlink planted where the driver never follows one (the task's
  // doing, not a missing path or a driver fault).
  if (e.errno === ELOOP) return fail('failed-precondition', code, e.message);
  // execve's E2BIG (of exec2-init, which carries the task's argv and envp, or
  // of the command): the job's args or env are too large, not a driver fault.
  if (e.errno === E2BIG) {
    return fail('invalid-argument', code, `${e.message}: the task's args and env exceed the kernel's limit for execve (128 KiB per string, about a quarter of the stack limit in total)`);
  }
  switch (code) {
    case 'EXEC2_COMMAND_NOT_FOUND':
    case 'EXEC2_UNVEIL_PATH':
    case 'EXEC2_WORKDIR':
      return fail('not-found', code, e.message);
    case 'EXEC2_COMMAND_NOT_EXECUTABLE':
    case 'EXEC2_CREDENTIALS':
    case 'EXEC2_INVALID_ARGUMENT':
      return fail('invalid-argument', code, e.message);
    case 'EXEC2_VOLUME':
    case 'EXEC2_TASK_EXITED':
    case 'EXEC2_LANDLOCK':
    case 'EXEC2_NETNS':
    case 'EXEC2_CGROUP':
      return fail('failed-precondition', code, e.message);
    default:
      return fail('internal', code, e.message);
  }
}

/** Run an addon call, turning its NativeError into a LaunchError. */
export function callNative<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw nativeFailure(err);
  }
}

/** The reply for whatever a worker caught: its own LaunchError as is, anything else INTERNAL. */
export function failureOf(err: unknown): LaunchFailure {
  if (err instanceof LaunchError) return { ok: false, ...err.failure };
  if (isFdExhaustion(err)) return { ok: false, ...fdExhaustion((err as Error).message).failure };
  return { ok: false, kind: 'internal', code: 'EXEC2_INTERNAL', message: (err as Error).message, recoverable: false };
}

/** EMFILE / ENFILE: the plugin (or the host) is out of descriptors for now; nothing is wrong with the task. */
export const isFdExhaustion = (err: unknown): boolean => {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
};

/** INTERNAL and recoverable: Nomad's restart policy may try again once descriptors are free. */
export const fdExhaustion = (message: string): LaunchError =>
  fail('internal', 'EXEC2_FDS', `${message} (out of file descriptors: raise the plugin's RLIMIT_NOFILE, LimitNOFILE= for a systemd unit)`, true);

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
