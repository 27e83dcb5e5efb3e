/** Wrappers so every handler answers with a deliberate status, never a crash. */
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { toServiceError } from './errors';
import type { Logger } from './log';

export function unary<Req, Res>(
  logger: Logger,
  method: string,
  fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Res | Promise<Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    let answered = false;
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => {
          answered = true;
          callback(null, res);
        },
        (err: unknown) => {
          if (answered) return;
          const se = toServiceError(err);
          logger.debug('rpc failed', { method, code: se.code, error: se.details });
          callback(se);
        },
      );
  };
}
