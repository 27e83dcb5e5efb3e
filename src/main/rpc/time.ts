/** Timestamps and durations as Nomad's Go side sends and accepts them. */
import type { Duration } from '../../gen/google/protobuf/duration';
import type { Timestamp } from '../../gen/google/protobuf/timestamp';

/** Go's zero time (0001-01-01T00:00:00Z): "not set" for Nomad's timestamps. */
export const ZERO_TIME: Timestamp = { seconds: -62135596800, nanos: 0 };

export function toTimestamp(d: Date | null): Timestamp {
  if (!d) return ZERO_TIME;
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (((ms % 1000) + 1000) % 1000) * 1e6 };
}

/** A protobuf Duration in milliseconds; unset and zero both mean 0 (Go sends zero as an empty message). */
export function durationMs(d: Duration | undefined): number {
  if (!d) return 0;
  return d.seconds * 1000 + Math.floor(d.nanos / 1e6);
}
