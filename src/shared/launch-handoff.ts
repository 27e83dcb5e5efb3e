/**
 * The pidfd of a launched task crosses the thread boundary in the worker's
 * reply; if that reply never arrives (the pool's promise rejects after the
 * worker's launch succeeded: a worker that died, a reply that could not be
 * cloned), the task would run with nobody watching it and its pidfd would
 * leak. So the worker also records what it launched in a small shared
 * buffer the main thread owns, the moment the launch succeeds; the main
 * thread reads it whenever it did not get a successful reply.
 */
const SLOTS = 3;
const PIDFD = 0;
const PID = 1;
/** bit i: the worker created V1_OWN_CONTROLLERS[i] for this launch */
const OWN_CREATED = 2;

export interface Launched {
  pidfd: number;
  pid: number;
  ownCreatedMask: number;
}

export function newHandoff(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT);
  const v = new Int32Array(sab);
  v[PIDFD] = -1;
  v[PID] = -1;
  return sab;
}

/** Worker side: called right after the native launch succeeded. */
export function recordLaunched(sab: SharedArrayBuffer | undefined, l: Launched): void {
  if (!sab) return;
  const v = new Int32Array(sab);
  Atomics.store(v, OWN_CREATED, l.ownCreatedMask);
  Atomics.store(v, PID, l.pid);
  // last: a pidfd >= 0 means the other slots are valid
  Atomics.store(v, PIDFD, l.pidfd);
}

/** Main side: what the worker launched, or null if it launched nothing. */
export function launchedOf(sab: SharedArrayBuffer): Launched | null {
  const v = new Int32Array(sab);
  const pidfd = Atomics.load(v, PIDFD);
  if (pidfd < 0) return null;
  return { pidfd, pid: Atomics.load(v, PID), ownCreatedMask: Atomics.load(v, OWN_CREATED) };
}
