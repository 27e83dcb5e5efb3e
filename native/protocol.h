/*
 * Private protocol between the addon (launcher) and exec2-init.
 *
 * Both programs are built from this tree at the same time, so the protocol is
 * versioned only to catch a stale build (argv[1] must equal E2_PROTO_MAGIC).
 * See docs/native.md for the narrative version.
 */
#ifndef EXEC2_PROTOCOL_H
#define EXEC2_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

/* exec2-init has no libc functions and supplies its own write. */
#ifndef E2_REPORT_WRITE
#include <unistd.h>
#define E2_REPORT_WRITE(fd, buf, n) write((fd), (buf), (n))
#endif

/* /3: anchored unveil rules (no symlink below an anchor is followed), the
 * task's own /tmp and the masks of the plugin's directories.
 * /2: the task environment travels in exec2-init's envp, not its argv.
 * argv is world-readable in /proc/<pid>/cmdline; environ is not (root only
 * here), and task environments hold secrets (VAULT_TOKEN, NOMAD_TOKEN, ...). */
#define E2_PROTO_MAGIC "exec2-init/3"
/* Exec mode (`nomad alloc exec`, script checks): the same binary joins a
 * running task instead of creating one. Same argv layout as a launch, with
 * the differences noted at E2_ARG_TTY and E2_ARG_NETNS. */
#define E2_EXEC_MAGIC "exec2-exec/3"

/*
 * Descriptors the launcher installs in exec2-init. Everything else is closed.
 * 0,1,2 are /dev/null so that no stray write of init can reach Node's stdio
 * and so that open() in init never lands on a standard descriptor.
 */
enum {
  E2_FD_ERR = 3,    /* error pipe (write end) */
  E2_FD_STDOUT = 4, /* task stdout */
  E2_FD_STDERR = 5, /* task stderr */
  E2_FD_STATUS = 6, /* status directory */
  E2_FD_NETNS = 7,  /* network namespace, only when argv says so */
  E2_FD_CGROUP0 = 8 /* first of N v1 cgroup.procs files */
};

/*
 * Exec mode: what the launcher installs instead. The command's 0/1/2 come
 * from 4/5/6, or all three from 4 when it is a terminal (5 and 6 closed).
 * v1 cgroup.procs files start at E2_FD_CGROUP0 as in a launch.
 */
enum {
  E2_FDX_STDIN = 4,  /* stdin, or the terminal (pty slave) */
  E2_FDX_STDOUT = 5,
  E2_FDX_STDERR = 6,
  E2_FDX_TASK = 7 /* pidfd of the task's pid 1: the namespaces to join */
};

/* At most this many descriptors are handed over from E2_FD_ERR on. */
#define E2_MAX_SLOTS 32
#define E2_SPAWN_MAX_CGROUPS (E2_MAX_SLOTS - (E2_FD_CGROUP0 - E2_FD_ERR))

/* argv positions of exec2-init; variable parts follow E2_ARG_FIXED. */
enum {
  E2_ARG_MAGIC = 1,
  E2_ARG_UID,
  E2_ARG_GID,
  E2_ARG_GROUPS,   /* comma separated decimal gids, "" for none */
  E2_ARG_CWD,
  E2_ARG_OOM,      /* decimal oom_score_adj for the task, "" = keep */
  E2_ARG_CTLSIG,   /* control signal number (glibc's SIGRTMIN in the addon);
                      exec mode: E2_ARG_TTY */
  E2_ARG_NETNS,    /* "1": fd E2_FD_NETNS is a netns to join, "0" otherwise;
                      exec mode: always "0" (the network comes with the task) */
  E2_ARG_NCGROUP,  /* number of cgroup.procs fds from E2_FD_CGROUP0 */
  E2_ARG_NUNVEIL,  /* number of unveil rules, two argv slots each */
  E2_ARG_NARGV,    /* number of task argv strings */
  E2_ARG_NENV,     /* number of task env strings, which are exec2-init's envp */
  E2_ARG_CWD_BENEATH, /* "" = chdir(E2_ARG_CWD) as is; "<k>" = resolve it beneath
                         anchor k without following any symlink */
  E2_ARG_TMP,      /* launch only: "" keeps the host's /tmp; else the task's
                      root dir, whose "tmp" (resolved beneath it without
                      following a symlink) is mounted over /tmp */
  E2_ARG_KEEP0,    /* "" or an absolute directory below /tmp that must stay */
  E2_ARG_KEEP1,    /*   reachable at its path over the task's /tmp (launch only) */
  E2_ARG_NMASK,    /* number of mask paths, one argv slot each, before the rules:
                      an empty read-only tmpfs hides each one in the task's
                      mount namespace (the plugin's socket and state dirs) */
  E2_ARG_VOLROOT,  /* launch only: "" (no volumes) or the task root every
                      volume destination lies below */
  E2_ARG_NVOL,     /* number of volumes, three slots each after the masks:
                      "<r|w><p|s>" (read-only or not; private or slave
                      propagation), the host path, the absolute destination */
  E2_ARG_CAPBND,   /* capability bounding set to keep: 64-bit mask, "0x<hex>" or decimal */
  E2_ARG_CAPAMB,   /* ambient capabilities of a non-root command (subset of CAPBND), same format */
  E2_ARG_SCOPE,    /* extra Landlock scopes (ABI 6+): "1" = abstract unix sockets too, "0" = signals only */
  E2_ARG_FIXED     /* first variable slot */
};
/* Unveil rule slots: "<letters>[?][+][@<k>]" then the absolute path.
 *   '?'   optional: skipped when the path (or its anchor) does not exist
 *   '+'   anchor: kept open while the ruleset is built; later rules and the
 *         working directory may be resolved beneath it (anchors are numbered
 *         0, 1, ... in the order they appear; at most E2_MAX_ANCHORS)
 *   '@k'  resolved beneath anchor k with openat2(RESOLVE_BENEATH |
 *         RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): the path must start
 *         with anchor k's path, and no component below it may be a symlink.
 *         The driver anchors every path the task (or another task of its
 *         allocation) can modify, so a planted symlink never widens a rule.
 * No letters (e.g. "+") grants nothing: an anchor only. */
#define E2_MAX_ANCHORS 64
#define E2_MAX_VOLUMES 32
#define E2_MAX_RULES 4096
/* Exec mode: "1" when fd E2_FDX_STDIN is a terminal to make the controlling
 * terminal and 0/1/2, "0" for three separate descriptors. */
#define E2_ARG_TTY E2_ARG_CTLSIG

/* Control signal payload: sival_int = target << 8 | signal. */
#define E2_TARGET_GROUP 0
#define E2_TARGET_ALL 1

/* A symlink met while resolving beneath an anchor (E2_ST_UNVEIL_PATH or
 * E2_ST_WORKDIR, err ELOOP): op is "openat2:<n>" where the first n bytes of
 * the record's path name the symlink itself. */
#define E2_SYMLINK_OP "openat2:"

/* Where a launch failed; StageCode() in addon.cc maps each to its
 * NativeErrorCode (the one table; a new stage needs a row there to build). */
enum e2_stage {
  E2_ST_NONE = 0,
  E2_ST_SPAWN_FDS = 1,   /* launcher's clone child: fd shuffling */
  E2_ST_INIT_EXEC = 2,   /* launcher's clone child: execve(exec2-init) */
  E2_ST_ARGS = 3,        /* exec2-init rejected its argv */
  E2_ST_SETUP = 4,       /* mount / setsid / signal setup in pid 1 */
  E2_ST_CGROUP = 5,      /* v1 cgroup.procs write */
  E2_ST_NETNS = 6,       /* setns(CLONE_NEWNET) */
  E2_ST_FORK = 7,        /* fork of the task */
  E2_ST_STDIO = 8,       /* task stdio setup */
  E2_ST_OOM = 9,         /* oom_score_adj */
  E2_ST_WORKDIR = 10,    /* chdir */
  E2_ST_LANDLOCK = 11,   /* Landlock unavailable or refused the ruleset */
  E2_ST_UNVEIL_PATH = 12,/* non-optional unveil path missing/unopenable */
  E2_ST_CREDS = 13,      /* setgroups/setgid/setuid */
  E2_ST_PRIVS = 14,      /* PR_SET_NO_NEW_PRIVS */
  E2_ST_NOT_FOUND = 15,  /* command not found */
  E2_ST_NOT_EXEC = 16,   /* command found but execve failed */
  E2_ST_JOIN = 17,       /* exec mode: setns into the task (ESRCH: it is gone) */
  E2_ST_CAPS = 18,       /* bounding / ambient capabilities (prctl, capset, verification) */
  E2_ST_VOLUME = 20      /* a volume mount: its host path, destination or bind */
};

#define E2_ERR_MAGIC 0x45324552u /* "E2ER" */
#define E2_ERR_MAX 4096          /* == PIPE_BUF: one write is atomic */

/* Exec mode: after starting the command, the helper reports its pid (in the
 * launcher's pid namespace) with this record, after any error record of the
 * command itself. The command is the launcher's child (CLONE_PARENT), so the
 * launcher reaps it and owns its exit status. */
#define E2_PID_MAGIC 0x45325044u /* "E2PD" */
struct e2_pid_rec {
  uint32_t magic;
  int32_t pid;
};

/* Error record: header, then op_len bytes of op, then path_len bytes of path
 * (neither NUL terminated). */
struct e2_err_hdr {
  uint32_t magic;
  uint32_t stage;
  int32_t err;
  uint16_t op_len;
  uint16_t path_len;
};

/*
 * Async-signal-safe: called from the launcher's CLONE_VM child (no malloc, no
 * locks) and from exec2-init. A single write() of <= PIPE_BUF bytes is atomic,
 * so the reader never sees a torn record.
 */
static inline size_t e2_bounded_copy(char *dst, const char *src, size_t max) {
  size_t n = 0;
  if (src)
    for (; n < max && src[n]; n++) dst[n] = src[n];
  return n;
}

static inline void e2_report(int fd, uint32_t stage, int err, const char *op,
                             const char *path) {
  char buf[E2_ERR_MAX];
  struct e2_err_hdr h;
  char *p = buf + sizeof h;
  size_t ol = e2_bounded_copy(p, op, 64);
  size_t pl = e2_bounded_copy(p + ol, path, E2_ERR_MAX - sizeof h - ol);
  h.magic = E2_ERR_MAGIC;
  h.stage = stage;
  h.err = err;
  h.op_len = (uint16_t)ol;
  h.path_len = (uint16_t)pl;
  for (size_t i = 0; i < sizeof h; i++) buf[i] = ((const char *)&h)[i];
  /* Nothing useful can be done if this fails: the reader then sees EOF
   * and the exit status of exec2-init tells the rest. */
  long r = (long)E2_REPORT_WRITE(fd, buf, sizeof h + ol + pl);
  (void)r;
}

#endif
