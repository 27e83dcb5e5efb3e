/** Timestamps as Nomad's Go side accepts them. */
import type { Timestamp } from '../gen/google/protobuf/timestamp';

/** Go's zero time (0001-01-01T00:00:00Z): "not set" for Nomad's timestamps. */
export const ZERO_TIME: Timestamp = { seconds: -62135596800, nanos: 0 };

export function toTimestamp(d: Date | null): Timestamp {
  if (!d) return ZERO_TIME;
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (((ms % 1000) + 1000) % 1000) * 1e6 };
}
