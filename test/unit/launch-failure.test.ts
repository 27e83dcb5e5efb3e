/**
 * The one failure table (workers/launch-failure.ts), walked row by row: each
 * native code and errno class gives one DriverErrorCode, the main thread
 * builds its DriverError from the failure without mapping it again
 * (main/launch-error.ts), and the gRPC status is the one the integration
 * suites expect.
 */
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { status as Status } from '@grpc/grpc-js';
import type { NativeErrorCode } from '../../src/native/binding';
import type { DriverErrorCode } from '../../src/shared/errors';
import type { LaunchFailure } from '../../src/shared/messages';
import { classify, fail, failAs, failureOf, fdExhaustion, FAILURE_CLASSES, type ErrnoClass } from '../../src/workers/launch-failure';
import { launchError, LaunchFailureError } from '../../src/main/launch-error';
import { ExecStartError } from '../../src/main/exec/exec-session';
import { toServiceError } from '../../src/main/rpc/service-error';
import { systemErrorCode } from '../../src/native/errno';
import { readFileSync } from 'node:fs';

/** What each native code must answer, spelled out here rather than read back from the table. */
const NATIVE: Record<NativeErrorCode, { driverCode: DriverErrorCode; grpc: Status }> = {
  EXEC2_COMMAND_NOT_FOUND: { driverCode: 'NOT_FOUND', grpc: Status.NOT_FOUND },
  EXEC2_UNVEIL_PATH: { driverCode: 'NOT_FOUND', grpc: Status.NOT_FOUND },
  EXEC2_WORKDIR: { driverCode: 'NOT_FOUND', grpc: Status.NOT_FOUND },
  EXEC2_COMMAND_NOT_EXECUTABLE: { driverCode: 'INVALID_ARGUMENT', grpc: Status.INVALID_ARGUMENT },
  EXEC2_CREDENTIALS: { driverCode: 'INVALID_ARGUMENT', grpc: Status.INVALID_ARGUMENT },
  EXEC2_INVALID_ARGUMENT: { driverCode: 'INVALID_ARGUMENT', grpc: Status.INVALID_ARGUMENT },
  EXEC2_VOLUME: { driverCode: 'FAILED_PRECONDITION', grpc: Status.FAILED_PRECONDITION },
  EXEC2_TASK_EXITED: { driverCode: 'FAILED_PRECONDITION', grpc: Status.FAILED_PRECONDITION },
  EXEC2_LANDLOCK: { driverCode: 'FAILED_PRECONDITION', grpc: Status.FAILED_PRECONDITION },
  EXEC2_NETNS: { driverCode: 'FAILED_PRECONDITION', grpc: Status.FAILED_PRECONDITION },
  EXEC2_CGROUP: { driverCode: 'FAILED_PRECONDITION', grpc: Status.FAILED_PRECONDITION },
  EXEC2_SYMLINK: { driverCode: 'FAILED_PRECONDITION', grpc: Status.FAILED_PRECONDITION },
  EXEC2_CAPABILITIES: { driverCode: 'INTERNAL', grpc: Status.INTERNAL },
  EXEC2_SPAWN: { driverCode: 'INTERNAL', grpc: Status.INTERNAL },
  EXEC2_SYSCALL: { driverCode: 'INTERNAL', grpc: Status.INTERNAL },
};

/** The errno classes: they decide whatever the native code says. */
const ERRNO: Record<ErrnoClass, { driverCode: DriverErrorCode; grpc: Status; recoverable: boolean; code: string | null; hint: RegExp }> = {
  ELOOP: { driverCode: 'FAILED_PRECONDITION', grpc: Status.FAILED_PRECONDITION, recoverable: false, code: null, hint: /^m$/ },
  E2BIG: { driverCode: 'INVALID_ARGUMENT', grpc: Status.INVALID_ARGUMENT, recoverable: false, code: null, hint: /^m: the task's args and env exceed the kernel's limit for execve/ },
  EMFILE: { driverCode: 'INTERNAL', grpc: Status.INTERNAL, recoverable: true, code: 'EXEC2_FDS', hint: /^m \(out of file descriptors: raise the plugin's RLIMIT_NOFILE/ },
  ENFILE: { driverCode: 'INTERNAL', grpc: Status.INTERNAL, recoverable: true, code: 'EXEC2_FDS', hint: /^m \(out of file descriptors: raise the plugin's RLIMIT_NOFILE/ },
};

const nativeError = (code: string, errno?: number): Error => Object.assign(new Error('m'), errno === undefined ? { code } : { code, errno });
const systemError = (code: string): Error => Object.assign(new Error('m'), { code, errno: -constants.errno[code as keyof typeof constants.errno] });

function rejected(f: LaunchFailure): Omit<LaunchFailure, 'ok'> {
  assert.equal(f.ok, false);
  return { driverCode: f.driverCode, code: f.code, message: f.message, recoverable: f.recoverable };
}

describe('launch failure table', () => {
  it('has exactly the rows spelled out here: every native code and errno class', () => {
    assert.deepEqual(Object.keys(FAILURE_CLASSES).sort(), [...Object.keys(NATIVE), ...Object.keys(ERRNO)].sort());
  });

  for (const [code, want] of Object.entries(NATIVE) as Array<[NativeErrorCode, (typeof NATIVE)[NativeErrorCode]]>) {
    it(`${code} → ${want.driverCode}, gRPC ${Status[want.grpc]}, keeping the native code and message`, () => {
      const f = failureOf(nativeError(code, constants.errno.EACCES));
      assert.deepEqual(rejected(f), { driverCode: want.driverCode, code, message: 'm', recoverable: false });
      if (f.ok) return;
      const se = toServiceError(launchError(f));
      assert.equal(se.code, want.grpc);
      assert.equal(se.details, 'm');
      assert.equal(se.metadata?.get('grpc-status-details-bin').length, 1, 'StartTask carries recoverable');
      // exec sessions: the same status, without a recoverable detail
      const ex = toServiceError(new ExecStartError(f));
      assert.equal(ex.code, want.grpc);
      assert.equal(ex.metadata?.get('grpc-status-details-bin').length, 0);
    });
  }

  for (const [name, want] of Object.entries(ERRNO) as Array<[ErrnoClass, (typeof ERRNO)[ErrnoClass]]>) {
    it(`errno ${name} → ${want.driverCode}${want.recoverable ? ', recoverable' : ''} whatever the native code, and from Node's own errors`, () => {
      // A native code that would say otherwise: the errno decides.
      const native = failureOf(nativeError('EXEC2_COMMAND_NOT_FOUND', constants.errno[name]));
      assert.equal(native.ok, false);
      if (native.ok) return;
      assert.equal(native.driverCode, want.driverCode);
      assert.equal(native.code, want.code ?? 'EXEC2_COMMAND_NOT_FOUND');
      assert.equal(native.recoverable, want.recoverable);
      assert.match(native.message, want.hint);
      assert.equal(toServiceError(launchError(native)).code, want.grpc);
      // The same errno from an fs call of the worker.
      const node = failureOf(systemError(name));
      assert.equal(node.ok, false);
      if (node.ok) return;
      assert.deepEqual({ driverCode: node.driverCode, code: node.code, recoverable: node.recoverable }, { driverCode: want.driverCode, code: want.code ?? 'EXEC2_INTERNAL', recoverable: want.recoverable });
      assert.match(node.message, want.hint);
    });
  }

  it('answers EMFILE and ENFILE INTERNAL and recoverable, naming the limit to raise', () => {
    for (const code of ['EMFILE', 'ENFILE']) {
      const f = failureOf(Object.assign(new Error(`${code}: too many open files, open '/sys/fs/cgroup/x'`), { code }));
      assert.deepEqual(rejected(f), {
        driverCode: 'INTERNAL',
        code: 'EXEC2_FDS',
        message: `${code}: too many open files, open '/sys/fs/cgroup/x' (out of file descriptors: raise the plugin's RLIMIT_NOFILE, LimitNOFILE= for a systemd unit)`,
        recoverable: true,
      });
    }
  });

  it('fdExhaustion: a LaunchError for EMFILE and ENFILE only', () => {
    assert.deepEqual(fdExhaustion(systemError('EMFILE'), 'cannot open x: m')?.failure, {
      driverCode: 'INTERNAL',
      code: 'EXEC2_FDS',
      message: "cannot open x: m (out of file descriptors: raise the plugin's RLIMIT_NOFILE, LimitNOFILE= for a systemd unit)",
      recoverable: true,
    });
    assert.equal(fdExhaustion(nativeError('EXEC2_SYSCALL', constants.errno.ENFILE), 'x')?.failure.code, 'EXEC2_FDS');
    assert.equal(fdExhaustion(systemError('ENOENT'), 'x'), null);
    assert.equal(fdExhaustion(systemError('ELOOP'), 'x'), null);
    assert.equal(fdExhaustion(new Error('EMFILE'), 'x'), null);
  });

  it('keeps any other unexpected error INTERNAL and not recoverable', () => {
    const f = failureOf(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }));
    assert.deepEqual(f, { ok: false, driverCode: 'INTERNAL', code: 'EXEC2_INTERNAL', message: 'EIO: i/o error', recoverable: false });
    assert.deepEqual(failureOf('a string'), { ok: false, driverCode: 'INTERNAL', code: 'EXEC2_INTERNAL', message: 'a string', recoverable: false });
    // Node's non-errno codes are not errno names.
    assert.equal(failureOf(Object.assign(new Error('bad'), { code: 'ERR_INVALID_ARG_TYPE' })).ok, false);
    assert.deepEqual(classify(null, 'EIO'), classify(null, null));
  });

  it('an EXEC2_ code this build does not know: INTERNAL, its code kept', () => {
    assert.deepEqual(rejected(failureOf(nativeError('EXEC2_FROM_THE_FUTURE'))), { driverCode: 'INTERNAL', code: 'EXEC2_FROM_THE_FUTURE', message: 'm', recoverable: false });
    // Inherited names are not rows.
    assert.equal(classify('toString' as NativeErrorCode, 'constructor').driverCode, 'INTERNAL');
  });

  it("the worker's own failures pass as decided at their one call site", () => {
    const f = failureOf(fail('FAILED_PRECONDITION', 'EXEC2_LOG_READER', 'no reader', true));
    assert.deepEqual(f, { ok: false, driverCode: 'FAILED_PRECONDITION', code: 'EXEC2_LOG_READER', message: 'no reader', recoverable: true });
    const de = launchError(f.ok ? assert.fail() : f);
    assert.ok(de instanceof LaunchFailureError);
    assert.deepEqual({ code: de.code, message: de.message, recoverable: de.recoverable }, { code: 'FAILED_PRECONDITION', message: 'no reader', recoverable: true });
  });

  it('failAs: a failure the worker detects with a native meaning answers as that native code does', () => {
    for (const [code, want] of Object.entries(NATIVE) as Array<[NativeErrorCode, (typeof NATIVE)[NativeErrorCode]]>) {
      assert.deepEqual(failAs(code, 'w').failure, { driverCode: want.driverCode, code, message: 'w', recoverable: false });
    }
    assert.equal(failAs('EXEC2_NETNS', 'not yet', true).failure.recoverable, true);
  });

  it("exec's failures: the same DriverError code, no recoverable, and a shell's 127 / 126 for the command's own fault", () => {
    const exec = (code: NativeErrorCode): ExecStartError => {
      const f = failureOf(nativeError(code));
      return new ExecStartError(f.ok ? assert.fail() : f);
    };
    assert.equal(exec('EXEC2_COMMAND_NOT_FOUND').shellExitCode, 127);
    assert.equal(exec('EXEC2_COMMAND_NOT_EXECUTABLE').shellExitCode, 126);
    assert.equal(exec('EXEC2_LANDLOCK').shellExitCode, null);
    const e = exec('EXEC2_TASK_EXITED');
    assert.deepEqual({ code: e.code, recoverable: e.recoverable, name: e.name }, { code: 'FAILED_PRECONDITION', recoverable: undefined, name: 'ExecStartError' });
  });
});

describe('systemErrorCode', () => {
  it("names the errno of Node's own system errors, and nothing else", () => {
    let caught: unknown;
    try {
      readFileSync('/nonexistent/exec2-unit');
    } catch (err) {
      caught = err;
    }
    assert.equal(systemErrorCode(caught), 'ENOENT');
    assert.equal(systemErrorCode(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE' })), null);
    assert.equal(systemErrorCode(Object.assign(new Error('x'), { code: 2 })), null);
    assert.equal(systemErrorCode({ code: 'ENOENT' }), null, 'not an Error');
    assert.equal(systemErrorCode(null), null);
  });
});
