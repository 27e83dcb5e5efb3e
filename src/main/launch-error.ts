/**
 * A worker's LaunchFailure as the DriverError the RPC answers with, for
 * task launches and exec sessions alike. The worker has classified the
 * failure (workers/launch-failure.ts, the one table): here nothing is mapped
 * again, and main/rpc/service-error.ts turns the code into a gRPC status.
 */
import { DriverError, type DriverErrorOptions } from '../shared/errors';
import type { LaunchFailure } from '../shared/messages';

export class LaunchFailureError extends DriverError {
  constructor(readonly failure: LaunchFailure, options: DriverErrorOptions = {}) {
    super(failure.driverCode, failure.message, options);
  }
}

/** StartTask's answer, with `recoverable`: it tells Nomad's restart policy whether to try again. */
export function launchError(f: LaunchFailure): DriverError {
  return new LaunchFailureError(f, { recoverable: f.recoverable });
}
