/**
 * When to launch again while logmon has not opened a task's FIFOs yet: a
 * short first wait (the reader usually opens within milliseconds), doubling
 * to at most READER_RETRY_MAX_MS, for READER_WAIT_MS in all. Pure, for tests.
 */
export const READER_WAIT_MS = 10_000;
export const READER_RETRY_FIRST_MS = 5;
export const READER_RETRY_MAX_MS = 500;

/** The delay before attempt `attempt + 1`, or null when the wait is over. */
export function readerRetryDelay(attempt: number, elapsedMs: number): number | null {
  const left = READER_WAIT_MS - elapsedMs;
  if (left <= 0) return null;
  const backoff = Math.min(READER_RETRY_MAX_MS, READER_RETRY_FIRST_MS * 2 ** Math.min(attempt - 1, 20));
  return Math.min(backoff, left);
}
