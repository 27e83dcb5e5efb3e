/**
 * DriverError → grpc-js ServiceError, the only place a driver error code
 * becomes a gRPC status. Every code is deliberate: never UNAVAILABLE or
 * CANCELLED, which make Nomad believe the plugin process died (protocol
 * reference §5.17).
 */
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { Status as RpcStatus } from '../../gen/google/rpc/status';
import { RecoverableError } from '../../gen/hashicorp/nomad/plugins/shared/structs/structs';
import { DriverError, messageOf, type DriverErrorCode } from '../../shared/errors';

const GRPC_STATUS: Record<DriverErrorCode, Status> = {
  INVALID_CONFIG: Status.INVALID_ARGUMENT,
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  NOT_FOUND: Status.NOT_FOUND,
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  INTERNAL: Status.INTERNAL,
  UNIMPLEMENTED: Status.UNIMPLEMENTED,
};

const RECOVERABLE_TYPE_URL = 'type.googleapis.com/hashicorp.nomad.plugins.shared.structs.RecoverableError';

/**
 * Turn anything thrown by a handler into a grpc-js ServiceError. Unknown
 * exceptions are INTERNAL with their message: a bug must still produce an
 * answer Nomad understands, not a dropped stream.
 */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const de = err instanceof DriverError
    ? err
    : new DriverError('INTERNAL', messageOf(err));
  const code = GRPC_STATUS[de.code];
  const metadata = new Metadata();
  if (de.recoverable !== undefined) {
    const detail = RecoverableError.encode({ recoverable: de.recoverable }).finish();
    const statusProto = RpcStatus.encode({
      code,
      message: de.message,
      details: [{ typeUrl: RECOVERABLE_TYPE_URL, value: Buffer.from(detail) }],
    }).finish();
    metadata.set('grpc-status-details-bin', Buffer.from(statusProto));
  }
  return { code, details: de.message, message: de.message, metadata, name: 'DriverError' };
}
