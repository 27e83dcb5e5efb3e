/**
 * The driver's error: a deliberate code and a human message. Code of both
 * threads throws it; main/rpc/service-error.ts maps the code to a gRPC status
 * in one place, so nothing here depends on grpc-js.
 */
export type DriverErrorCode =
  | 'INVALID_CONFIG'
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'FAILED_PRECONDITION'
  | 'ALREADY_EXISTS'
  | 'INTERNAL'
  | 'UNIMPLEMENTED';

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
}

export const invalidArgument = (msg: string): DriverError => new DriverError('INVALID_ARGUMENT', msg);
export const invalidConfig = (msg: string): DriverError => new DriverError('INVALID_CONFIG', msg);
export const notFound = (msg: string): DriverError => new DriverError('NOT_FOUND', msg);
export const failedPrecondition = (msg: string, recoverable?: boolean): DriverError =>
  new DriverError('FAILED_PRECONDITION', msg, recoverable === undefined ? {} : { recoverable });
export const internal = (msg: string, cause?: unknown): DriverError => new DriverError('INTERNAL', msg, { cause });

/** The message of anything thrown: an Error's own, else its string form (a thrown string, a number). */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
