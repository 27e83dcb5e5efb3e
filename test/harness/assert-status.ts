/** Assert that a gRPC call fails with a given status code and message. */
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import { Status as RpcStatus } from '../../src/gen/google/rpc/status';
import { RecoverableError } from '../../src/gen/hashicorp/nomad/plugins/shared/structs/structs';

export async function expectStatus(p: Promise<unknown>, code: grpc.status, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, `status ${err.code} (${err.details})`);
    assert.match(err.details, message);
    return true;
  });
}

/** The RecoverableError detail Nomad reads from a failed StartTask, or null without one. */
export function recoverableOf(err: grpc.ServiceError): boolean | null {
  const bin = err.metadata?.get('grpc-status-details-bin')[0];
  if (!bin || typeof bin === 'string') return null;
  const st = RpcStatus.decode(bin);
  const d = st.details.find((x) => x.typeUrl.endsWith('/hashicorp.nomad.plugins.shared.structs.RecoverableError'));
  return d ? RecoverableError.decode(d.value).recoverable : null;
}
