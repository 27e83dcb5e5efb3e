/** The unary wrapper: whatever throws, where ever, the call gets a status and nothing escapes as an unhandled rejection. */
import assert from 'node:assert/strict';
import type { sendUnaryData, ServerUnaryCall, ServiceError } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { unary } from '../../src/main/rpc/grpc-util';
import { Logger } from '../../src/main/log';
import { DriverError } from '../../src/shared/errors';

const quiet = new Logger({ write: () => undefined }, 'test');

/** Run one call through the wrapper; collect callback invocations and unhandled rejections. */
async function drive<Res>(fn: () => Res | Promise<Res>, callback: (err: Partial<ServiceError> | null, res?: Res) => void): Promise<unknown[]> {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  // mocha installs its own listener; ours records, the test asserts.
  process.prependListener('unhandledRejection', onUnhandled);
  const listeners = process.listeners('unhandledRejection').filter((l) => l !== onUnhandled);
  for (const l of listeners) process.removeListener('unhandledRejection', l);
  try {
    const handler = unary<object, Res>(quiet, 'Test', fn);
    handler({ request: {} } as ServerUnaryCall<object, Res>, callback as sendUnaryData<Res>);
    // let the promise chain and the rejection tracker run
    await new Promise((r) => setTimeout(r, 20));
  } finally {
    process.removeListener('unhandledRejection', onUnhandled);
    for (const l of listeners) process.on('unhandledRejection', l);
  }
  return unhandled;
}

describe('unary wrapper', () => {
  it('answers a handler error with its status', async () => {
    const got: Array<Partial<ServiceError> | null> = [];
    const unhandled = await drive(() => {
      throw new DriverError('NOT_FOUND', 'nope');
    }, (err) => void got.push(err));
    assert.deepEqual(unhandled, []);
    assert.equal(got.length, 1);
    assert.equal(got[0]?.code, status.NOT_FOUND);
  });

  it('survives a callback that throws while sending the reply and answers INTERNAL instead', async () => {
    const got: Array<Partial<ServiceError> | null> = [];
    const unhandled = await drive(() => ({ ok: true }), (err) => {
      got.push(err);
      if (err === null) throw new Error('reply could not be sent');
    });
    assert.deepEqual(unhandled, [], 'an exception in the reply path escaped as an unhandled rejection');
    assert.equal(got.length, 2);
    assert.equal(got[1]?.code, status.INTERNAL);
    assert.match(String(got[1]?.details), /reply could not be sent/);
  });

  it('survives a callback that throws on the error reply too', async () => {
    let calls = 0;
    const unhandled = await drive(() => {
      throw new Error('handler failed');
    }, () => {
      calls++;
      throw new Error('transport broken');
    });
    assert.deepEqual(unhandled, []);
    assert.equal(calls, 2);
  });
});
