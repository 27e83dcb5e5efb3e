/**
 * Messages across the piscina thread boundary: plain, structured-clone-safe
 * data only. The main thread decides everything; the worker does the
 * blocking work (cgroup writes, FIFO and directory opens, user lookup, the
 * native launch) and reports phase timings.
 */
import type { Limits, TaskCgroup } from './cgroups/task-cgroup';
import type { PlannedRule } from './unveil';
import type { TaskCapabilities } from './capabilities';
import type { DriverErrorCode } from './errors';
import type { NativeErrorCode } from '../native/binding';

/**
 * A task's capabilities for both outcomes of the user lookup: whether a
 * named user is uid 0 is known only in the worker.
 */
export interface CapabilityChoice {
  root: TaskCapabilities;
  user: TaskCapabilities;
}

/**
 * Who runs what, where, confined how: the part of a task launch and an exec
 * session that the main thread derives from the task's sandbox, identical
 * for both (the worker turns it into the native ConfinedSpec).
 */
export interface ConfinedRequest {
  taskId: string;
  /** "nomad-<n>" users arrive resolved; named users are looked up by the worker */
  user: { name: string; resolved: { uid: number; gid: number; groups: number[]; home: string } | null };
  cgroup: TaskCgroup;
  argv: string[];
  /** without USER/LOGNAME/HOME: those depend on the resolved user */
  env: Record<string, string>;
  cwd: string;
  /** the anchor `cwd` is resolved beneath (native ConfinedSpec.cwdBeneath) */
  cwdBeneath: number;
  unveil: PlannedRule[];
  oomScoreAdj: number | null;
  initPath: string;
  caps: CapabilityChoice;
  /** Landlock ABI 6+: scope abstract unix sockets to the command's domain */
  scopeAbstractUnixSockets: boolean;
}

export interface LaunchRequest extends ConfinedRequest {
  kind: 'launch';
  /** "nomad-<n>": refuse ids the passwd or group database knows */
  dynamicUser: boolean;
  limits: Limits;
  stdoutPath: string;
  stderrPath: string;
  /** FIFO owner so the task can reopen /dev/stdout like exec2 allows */
  chownFifos: boolean;
  /** directory (root only) where pid 1 writes the exit status */
  statusDir: string;
  netnsPath: string | null;
  /** the task's own /tmp (TaskSandbox.tmp); null keeps the host's */
  tmp: { root: string; keep: string[] } | null;
  /** the plugin's directories to hide in the task's mount namespace */
  masks: string[];
  /** the log FIFOs (and the task's tmp dir) are opened beneath the one of these that holds them */
  untrustedRoots: string[];
  /** volume mounts, destinations below `taskRoot` */
  volumes: Array<{ hostPath: string; dest: string; readonly: boolean; private: boolean }>;
  /** the task's root directory (parent of NOMAD_TASK_DIR) */
  taskRoot: string;
  /** main thread hrtime (ns, as string) when StartTask arrived */
  receivedNs: string;
  /** main thread hrtime (ns, as string) when the request was handed to the pool (launcher.ts) */
  plannedNs?: string;
  /** shared with the main thread: what was launched, should the reply be lost (shared/launch-handoff.ts) */
  handoff?: SharedArrayBuffer;
}

/**
 * Where a launch's time went, ns. Durations of consecutive phases, from the
 * main thread's receipt of StartTask to its receipt of this reply; the
 * `...AtNs` fields are offsets from that receipt (CLOCK_MONOTONIC), so a
 * tool with the task's own first-instruction timestamp (the benchmark's
 * probe) can split clone → exec. A handful of hrtime reads per launch.
 */
export interface LaunchTimings {
  /** main thread: StartTask arrival → request built and handed to the pool */
  planNs: number;
  /** queue wait: arrival in main → start in worker (planNs + the hand-off to a pool thread) */
  queueNs: number;
  /** cgroup creation and limit writes */
  cgroupNs: number;
  /** user lookup, fd opens */
  prepareNs: number;
  /** addon: spec parsing and clone arguments, end of prepare → just before clone3 */
  setupNs: number;
  /** native launch: end of prepare → confirmed execve of the task (setupNs + clone3 → exec confirmed) */
  spawnNs: number;
  /** arrival in main → confirmed execve */
  totalToExecNs: number;
  /** arrival in main → just before clone3 */
  cloneAtNs: number;
  /** worker: confirmed execve → reply returned (start time read, hand-off record) */
  finishNs: number;
  /** arrival in main → reply returned by the worker */
  doneAtNs: number;
  /** reply returned by the worker → received by the main thread (set there, launcher.ts) */
  replyNs: number;
}

export interface LaunchSuccess {
  ok: true;
  pid: number;
  /** /proc/<pid>/stat start time, read here to keep the main thread free */
  pidStartTime: string | null;
  pidfd: number;
  uid: number;
  gid: number;
  home: string;
  cgroup: TaskCgroup;
  /** the cgroup's OOM kill count before the task started */
  oomKillsBefore: number;
  timings: LaunchTimings;
}

/** The worker's own failure codes; the addon's are NativeErrorCode (native/exec2_native.d.ts). */
export type WorkerFailureCode =
  /** a log FIFO is missing, a directory, a symlink or cannot be opened */
  | 'EXEC2_LOG_PATH'
  /** no reader on a log FIFO yet (logmon not started): recoverable */
  | 'EXEC2_LOG_READER'
  /** a directory the launch needs cannot be opened */
  | 'EXEC2_OPEN'
  /** the task user is unknown, collides with an account, or changed since the launch */
  | 'EXEC2_USER'
  /** the task's state directory cannot be created */
  | 'EXEC2_STATE_DIR'
  /** the plugin (or host) is out of file descriptors (EMFILE, ENFILE): recoverable */
  | 'EXEC2_FDS'
  /** anything the worker did not expect */
  | 'EXEC2_INTERNAL';

export type FailureCode = NativeErrorCode | WorkerFailureCode;

/**
 * Why a launch or an exec session did not start. The worker classifies the
 * failure once (workers/launch-failure.ts): the main thread answers with
 * `driverCode` as is (main/launch-error.ts) and maps nothing again.
 */
export interface LaunchFailure {
  ok: false;
  /** the DriverError code the RPC answers with (main/rpc/service-error.ts turns it into a gRPC status) */
  driverCode: DriverErrorCode;
  /** the cause: the addon's NativeErrorCode or the worker's own code (logs; exec's 127/126) */
  code: FailureCode;
  message: string;
  /** a later attempt may succeed (e.g. no log reader yet) */
  recoverable: boolean;
}

export type LaunchReply = LaunchSuccess | LaunchFailure;

/**
 * Start a command inside a running task (exec-worker.ts). The main thread
 * creates the command's stdio and keeps its own ends; the worker opens the
 * task's pidfd and cgroup files, resolves the user and calls the addon.
 */
export interface ExecLaunchRequest extends ConfinedRequest {
  kind: 'exec';
  /** the task's credentials as launched: the session must match them */
  expect: { uid: number; gid: number };
  /** host pid of the task's pid 1 and its start time (guards against pid reuse) */
  taskPid: number;
  taskPidStartTime: string;
  tty: boolean;
  stdinFd: number;
  /** -1 when tty */
  stdoutFd: number;
  stderrFd: number;
}

export interface ExecLaunchSuccess {
  ok: true;
  /** host pid of the command; a child of the plugin process */
  pid: number;
  pidfd: number;
}

export type ExecLaunchReply = ExecLaunchSuccess | LaunchFailure;
