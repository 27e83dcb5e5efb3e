/** Assert that a gRPC call fails with a given status code and message. */
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';

export async function expectStatus(p: Promise<unknown>, code: grpc.status, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, `status ${err.code} (${err.details})`);
    assert.match(err.details, message);
    return true;
  });
}
