/** Wrappers so every handler answers with a deliberate status, never a crash. */
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { toServiceError } from './service-error';
import type { Logger } from '../log';
import { messageOf } from '../../shared/errors';

/**
 * One unary handler. Every step that can throw, the handler itself and
 * grpc-js's own callback (it serialises the reply and may throw while doing
 * so), runs inside one promise chain whose last link cannot reject: the
 * plugin exits on an unhandledRejection, and one bad message must never take
 * every task's supervisor with it.
 */
export function unary<Req, Res>(
  logger: Logger,
  method: string,
  fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Res | Promise<Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    const fail = (err: unknown): void => {
      const se = toServiceError(err);
      logger.debug('rpc failed', { method, code: se.code, error: se.details });
      callback(se);
    };
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => callback(null, res),
        (err: unknown) => fail(err),
      )
      .catch((err: unknown) => {
        // The callback itself threw. If the success reply could not be sent,
        // the client still gets an INTERNAL status naming the cause.
        logger.error('rpc reply failed', { method, error: messageOf(err) });
        try {
          fail(err);
        } catch (again) {
          logger.error('rpc error reply failed', { method, error: messageOf(again) });
        }
      });
  };
}
