/**
 * Typed surface of the Node-API addon `build/Release/exec2_native.node`.
 *
 * The addon is deliberately small: everything that can be plain data or a
 * file write lives in TypeScript; only what needs raw syscalls lives here.
 * Errors thrown by the addon are `NativeError`-shaped: an `Error` with a
 * string `code` (see NativeErrorCode), an optional `errno` and `path`.
 */

/**
 * Stable error codes thrown by the addon (err.code). A launch's come from the
 * failed stage (StageCode() in addon.cc); what each answers over gRPC is
 * decided once, in src/workers/launch-failure.ts (FAILURE_CLASSES).
 */
export type NativeErrorCode =
  /** the command was not found on PATH (or the given path does not exist) */
  | 'EXEC2_COMMAND_NOT_FOUND'
  /** the command exists but could not be executed (EACCES, ENOEXEC, not unveiled with x, ...) */
  | 'EXEC2_COMMAND_NOT_EXECUTABLE'
  /** an unveil path that is not optional does not exist or cannot be opened */
  | 'EXEC2_UNVEIL_PATH'
  /** Landlock is unavailable or refused the ruleset; the task never runs unconfined */
  | 'EXEC2_LANDLOCK'
  /** setgroups/setgid/setuid failed */
  | 'EXEC2_CREDENTIALS'
  /** the capability sets could not be applied (or did not stick) */
  | 'EXEC2_CAPABILITIES'
  /** chdir to the working directory failed */
  | 'EXEC2_WORKDIR'
  /** joining the network namespace failed */
  | 'EXEC2_NETNS'
  /** joining a cgroup (v1 cgroup.procs write) failed */
  | 'EXEC2_CGROUP'
  /** launchExec: the task's pid 1 has exited or its pid namespace is being torn down */
  | 'EXEC2_TASK_EXITED'
  /** namespace / mount / clone3 / fork setup failed */
  | 'EXEC2_SPAWN'
  /** openBeneath met a symbolic link (err.path names it) */
  | 'EXEC2_SYMLINK'
  /** a volume mount: its host path is missing, or binding it failed */
  | 'EXEC2_VOLUME'
  /** bad arguments given to the addon (programming error) */
  | 'EXEC2_INVALID_ARGUMENT'
  /** any other syscall failure */
  | 'EXEC2_SYSCALL';

export interface UnveilRule {
  /** absolute path */
  path: string;
  /** any combination of the letters r, w, x, c (already validated by TS); "" only for an anchor */
  mode: string;
  /** true: silently skipped when the path (or the anchor it is resolved beneath) does not exist */
  optional: boolean;
  /**
   * true: a directory kept open while the ruleset is built, so that later
   * rules (and the working directory) can be resolved beneath it. Anchors are
   * numbered 0, 1, ... in the order they appear in the list (at most 64).
   */
  anchor?: boolean;
  /**
   * -1: opened by its absolute path (a path only the host can modify).
   * k >= 0: resolved beneath anchor k, whose path must be a prefix of this
   * one, with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
   * RESOLVE_NO_MAGICLINKS): a symlink in any component fails the launch with
   * EXEC2_UNVEIL_PATH / errno ELOOP naming it (or skips an optional rule: no).
   */
  beneath?: number;
}

/**
 * What joins a process to a task's cgroup and confines it. A task launch and
 * an exec session share these fields, and the init helper applies them with
 * the same code, so an exec session can never be confined differently.
 */
export interface ConfinedSpec {
  /** absolute path of the static init helper (build/Release/exec2-init) */
  initPath: string;
  /** O_PATH|O_DIRECTORY fd of the task's cgroup v2 directory to clone into, or -1 (v1 hosts) */
  cgroupFd: number;
  /** fds of the task's v1 `cgroup.procs` files (opened O_WRONLY), joined before the command starts */
  cgroupProcsFds: number[];
  /** argv[0] is the command as configured (resolved on the env's PATH if it has no '/') */
  argv: string[];
  /** the exact environment, "KEY=VALUE" */
  env: string[];
  uid: number;
  gid: number;
  /** supplementary groups (empty for dynamic users) */
  groups: number[];
  /** absolute working directory */
  cwd: string;
  /** anchor the working directory is resolved beneath (or is), -1 for a plain chdir */
  cwdBeneath?: number;
  unveil: UnveilRule[];
  /** written to /proc/self/oom_score_adj before exec; null leaves it inherited */
  oomScoreAdj: number | null;
  /**
   * Capability numbers (0..63) kept in the bounding set; every other one is
   * dropped. A uid 0 command gets exactly these (inheritable and ambient
   * cleared); others get none beyond capAmbient.
   */
  capBounding: number[];
  /** Raised as ambient capabilities of a non-root command; a subset of capBounding; must be empty for uid 0. */
  capAmbient: number[];
  /** Landlock ABI 6+: also scope abstract unix sockets (the signal scope is always on) */
  scopeAbstractUnixSockets: boolean;
}

/** A new task: pid 1 of fresh pid/ipc/mount namespaces, then the task. */
export interface LaunchSpec extends ConfinedSpec {
  /** fd that becomes the task's stdout / stderr (FIFO or /dev/null), opened by the caller */
  stdoutFd: number;
  stderrFd: number;
  /** O_DIRECTORY fd where pid 1 writes `status` (atomically, via a temp file + rename) */
  statusDirFd: number;
  /** fd of a network namespace to join (GROUP mode), or -1 for the host namespace */
  netnsFd: number;
  /**
   * The task's own /tmp: `root`/tmp (resolved beneath `root` without
   * following a symlink) mounted over /tmp in its namespace, and at most 2
   * directories below /tmp (`keep`) bound back at their paths. null/absent:
   * the host's /tmp.
   */
  tmp?: { root: string; keep: string[] } | null;
  /** directories hidden under an empty read-only tmpfs in the task's mount namespace (the plugin's own) */
  masks?: string[];
  /** volume mounts of the task's namespace (TaskConfig.mounts), destinations below `volumeRoot` */
  volumes?: Array<{ hostPath: string; dest: string; readonly: boolean; private: boolean }>;
  /** the task root (required with volumes) */
  volumeRoot?: string;
}

/** A command to start inside a running task (`nomad alloc exec`, script checks). */
export interface ExecSpec extends ConfinedSpec {
  /** pidfd of the task's pid 1: its pid, mount, ipc and network namespaces are joined */
  taskPidfd: number;
  /** true: stdinFd is a terminal (pty slave) that becomes the controlling terminal and 0/1/2 */
  tty: boolean;
  stdinFd: number;
  /** ignored when tty is true */
  stdoutFd: number;
  stderrFd: number;
}

export interface LaunchResult {
  /** host pid of pid 1 (the init helper) of the task's pid namespace */
  pid: number;
  /** pidfd of that process (CLONE_PIDFD); owned by the caller */
  pidfd: number;
  /** process.hrtime.bigint()-compatible monotonic ns timestamps */
  tCloneNs: bigint;
  /** when the task's execve was confirmed (error pipe reached EOF) */
  tExecNs: bigint;
}

/** Status word as reported by waitid: exactly one of code/signal is meaningful. */
export interface WaitStatus {
  /** exit code if exited normally, else 128 + signal */
  exitCode: number;
  /** terminating signal, 0 if exited normally */
  signal: number;
}

export interface UserRecord {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** supplementary group ids from the group database (getgrouplist), including gid */
  groups: number[];
}

/** Target of a signal sent through pid 1. */
export const enum SignalTarget {
  /** the task's process group (exec2 semantics) */
  Group = 0,
  /** every process in the task's pid namespace except pid 1 */
  All = 1,
}

export interface Exec2Native {
  /** Landlock ABI version of the running kernel; 0 when unavailable (errno in `error`). */
  landlockAbi(): { abi: number; error: string | null };
  /** getpwnam_r + getgrouplist; null when the user does not exist. Blocking (NSS): call from a worker. */
  lookupUser(name: string): UserRecord | null;
  /**
   * openat2(dirfd, path, flags | O_CLOEXEC) with RESOLVE_BENEATH |
   * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: for opening, as root, what a
   * task can modify, from a directory the caller trusts. `path` is relative.
   * A symlink in any component throws EXEC2_SYMLINK (err.path: the symlink).
   */
  openBeneath(dirfd: number, path: string, flags: number): number;
  /**
   * getpwuid_r + getgrgid_r: the account name that owns uid, the group name
   * that owns gid, null where there is none. Blocking (NSS): call from a worker.
   */
  idOwners(uid: number, gid: number): { user: string | null; group: string | null };
  /**
   * clone3(CLONE_VM|CLONE_VFORK|CLONE_PIDFD|CLONE_NEWPID|CLONE_NEWIPC|CLONE_NEWNS[|CLONE_INTO_CGROUP])
   * and execve of the init helper. Blocks until the task's execve succeeded or
   * failed. On failure the init helper is reaped, the pidfd closed and a
   * NativeError thrown: nothing is left behind. Call from a worker thread.
   * Does not close any of the fds in the spec.
   */
  launch(spec: LaunchSpec): LaunchResult;
  /**
   * Main thread only: watch a pidfd with a libuv poll handle. When the process
   * exits, reap it with waitid(P_PIDFD) if it is our child (status) or report
   * null (not our child: e.g. a recovered task), close the pidfd, and call back once.
   * A poll error is not an exit: the pidfd is asked directly and, while the
   * process lives, watched on from a timer (also when epoll refuses the fd).
   * Throws EXEC2_INVALID_ARGUMENT for a closed fd.
   */
  watchExit(pidfd: number, onExit: (status: WaitStatus | null) => void): void;
  /**
   * Tests only: deliver the poll error libuv reports for POLLERR to the watch
   * of `pidfd`, as if epoll had reported it. False when no such watch exists.
   */
  simulateWatchError(pidfd: number): boolean;
  /**
   * Start a command inside a running task: the init helper (exec mode) joins
   * the task's cgroup and namespaces and starts the command as a child of
   * *this* process (CLONE_PARENT), in a session of its own, confined like
   * the task. Returns the command's pid and pidfd once its execve succeeded;
   * watchExit(pidfd) then reports its real exit status. On failure nothing is
   * left running and a NativeError is thrown (EXEC2_COMMAND_NOT_FOUND,
   * EXEC2_COMMAND_NOT_EXECUTABLE, EXEC2_TASK_EXITED, ...). Blocking: call
   * from a worker thread. Does not close any fd of the spec.
   */
  launchExec(spec: ExecSpec): LaunchResult;
  /** posix_openpt + grantpt + unlockpt + open of the slave; both O_CLOEXEC|O_NOCTTY. */
  openPty(): { master: number; slave: number; path: string };
  /** TIOCSWINSZ (the kernel then sends SIGWINCH to the foreground process group). */
  setWindowSize(fd: number, rows: number, cols: number): void;
  /** VEOF of the terminal when it is in canonical mode, else null. */
  terminalEof(fd: number): number | null;
  /** pipe2(O_CLOEXEC): [read end, write end] */
  pipe(): [number, number];
  /** pidfd_open(pid, 0); throws NativeError (errno ESRCH when gone). */
  pidfdOpen(pid: number): number;
  /**
   * Ask pid 1 to deliver `signal` to the target: pidfd_send_signal of the
   * control signal (SIGRTMIN, si_code SI_QUEUE, value = target << 8 | signal).
   * Returns false if the process is already gone (ESRCH).
   */
  signalTask(pidfd: number, signal: number, target: SignalTarget): boolean;
  /** pidfd_send_signal of a plain signal straight to pid 1 (last resort: SIGKILL). */
  pidfdKill(pidfd: number, signal: number): boolean;
  /** close(2) */
  close(fd: number): void;
}
