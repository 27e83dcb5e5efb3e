/**
 * Errors that cross the gRPC boundary. Every failure a handler reports is a
 * DriverError with a deliberate status code: never UNAVAILABLE or CANCELLED,
 * which make Nomad believe the plugin process died (protocol reference §5.17).
 */
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { Status as RpcStatus } from '../gen/google/rpc/status';
import { RecoverableError } from '../gen/hashicorp/nomad/plugins/shared/structs/structs';

export type DriverErrorCode =
  | 'INVALID_CONFIG'
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'FAILED_PRECONDITION'
  | 'ALREADY_EXISTS'
  | 'INTERNAL'
  | 'UNIMPLEMENTED';

const GRPC_STATUS: Record<DriverErrorCode, Status> = {
  INVALID_CONFIG: Status.INVALID_ARGUMENT,
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  NOT_FOUND: Status.NOT_FOUND,
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  INTERNAL: Status.INTERNAL,
  UNIMPLEMENTED: Status.UNIMPLEMENTED,
};

export interface DriverErrorOptions {
  /** StartTask only: tell Nomad whether its restart policy may retry. */
  recoverable?: boolean;
  cause?: unknown;
}

export class DriverError extends Error {
  readonly code: DriverErrorCode;
  readonly recoverable: boolean | undefined;

  constructor(code: DriverErrorCode, message: string, options: DriverErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DriverError';
    this.code = code;
    this.recoverable = options.recoverable;
  }

  get grpcStatus(): Status {
    return GRPC_STATUS[this.code];
  }
}

export const invalidArgument = (msg: string): DriverError => new DriverError('INVALID_ARGUMENT', msg);
export const invalidConfig = (msg: string): DriverError => new DriverError('INVALID_CONFIG', msg);
export const notFound = (msg: string): DriverError => new DriverError('NOT_FOUND', msg);
export const failedPrecondition = (msg: string, recoverable?: boolean): DriverError =>
  new DriverError('FAILED_PRECONDITION', msg, recoverable === undefined ? {} : { recoverable });
export const internal = (msg: string, cause?: unknown): DriverError => new DriverError('INTERNAL', msg, { cause });

const RECOVERABLE_TYPE_URL = 'type.googleapis.com/hashicorp.nomad.plugins.shared.structs.RecoverableError';

/**
 * Turn anything thrown by a handler into a grpc-js ServiceError. Unknown
 * exceptions are INTERNAL with their message: a bug must still produce an
 * answer Nomad understands, not a dropped stream.
 */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const de = err instanceof DriverError
    ? err
    : new DriverError('INTERNAL', err instanceof Error ? err.message : String(err));
  const code = de.grpcStatus;
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
