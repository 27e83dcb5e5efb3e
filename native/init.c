/*
 * exec2-init: pid 1 of a task's pid namespace.
 *
 * Started by the addon (clone3 + execve) with every signal blocked, in fresh
 * pid/ipc/mount namespaces, already inside the task's cgroup (v2), with the
 * descriptor layout of protocol.h. It prepares the namespace, forks the task,
 * confines it (credentials, no_new_privs, Landlock) and then stays as a tiny
 * supervisor: it forwards signals, reaps orphans and records the final status
 * in a file the task cannot reach, then exits with the task's code.
 *
 * Statically linked and started with an empty environment: nothing the job
 * author controls (the task env travels in argv) can influence this process,
 * which runs as root.
 *
 * Any failure before the task's execve is reported as one record on the error
 * pipe (fd 3), which the addon turns into a typed exception.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat.h"
#include "protocol.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define MAX_GROUPS 65536

struct rule {
  const char *mode; /* letters, maybe followed by '?' */
  const char *path;
};

struct config {
  uid_t uid;
  gid_t gid;
  gid_t *groups;
  size_t ngroups;
  const char *cwd;
  int has_oom;
  int oom;
  int ctlsig;
  int has_netns;
  unsigned ncgroup;
  struct rule *rules;
  unsigned nrules;
  char **argv;
  char **envp; /* NULL terminated (argv of init is, and env comes last) */
};

static __attribute__((noreturn)) void die_with_error(uint32_t stage, int err,
                                                     const char *op,
                                                     const char *path) {
  e2_report(E2_FD_ERR, stage, err, op, path);
  _exit(127);
}

static void close_fdp(int *fd) {
  if (*fd >= 0) close(*fd);
}
#define AUTOCLOSE __attribute__((cleanup(close_fdp)))

/* ---- small helpers ---------------------------------------------------- */

static int parse_ll(const char *s, long long min, long long max,
                    long long *out) {
  int neg = 0;
  long long v = 0;
  if (*s == '-') {
    neg = 1;
    s++;
  }
  if (*s == '\0') return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    if (v > (LLONG_MAX - 9) / 10) return -1;
    v = v * 10 + (*s - '0');
  }
  if (neg) v = -v;
  if (v < min || v > max) return -1;
  *out = v;
  return 0;
}

/* Formats a signed int; returns the length (buf >= 12 bytes). */
static size_t fmt_int(char *buf, long v) {
  char tmp[24];
  size_t n = 0, len = 0;
  unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) buf[len++] = '-';
  while (n) buf[len++] = tmp[--n];
  buf[len] = '\0';
  return len;
}

static void op_with_id(char *buf, size_t size, const char *name, long id) {
  size_t n = strlen(name);
  if (n + 14 > size) n = size - 14;
  memcpy(buf, name, n);
  buf[n++] = '(';
  n += fmt_int(buf + n, id);
  buf[n++] = ')';
  buf[n] = '\0';
}

/* Raw signal calls: glibc's wrappers refuse to touch the two real-time
 * signals it reserves, but pid 1 must wait for (and the task must unblock)
 * every signal. The kernel sigset on x86_64/aarch64 is 8 bytes. */
static long sigmask_set(uint64_t mask) {
  return syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, sizeof mask);
}

struct k_sigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

static void reset_signal_dispositions(void) {
  /* Node ignores SIGPIPE and ignored dispositions survive execve; the task
   * must start with defaults. Handlers were already reset by execve, so this
   * only matters for SIG_IGN, but asking first would cost the same. */
  struct k_sigaction ksa;
  memset(&ksa, 0, sizeof ksa);
  ksa.handler = SIG_DFL;
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (syscall(SYS_rt_sigaction, sig, &ksa, NULL, sizeof ksa.mask) < 0)
      die_with_error(E2_ST_SETUP, errno, "rt_sigaction", NULL);
  }
}

/* ---- argv ------------------------------------------------------------- */

static void parse_config(int argc, char **argv, struct config *c) {
  long long v;
  memset(c, 0, sizeof *c);
  if (argc < E2_ARG_FIXED || strcmp(argv[E2_ARG_MAGIC], E2_PROTO_MAGIC) != 0)
    die_with_error(E2_ST_ARGS, EINVAL, "protocol version", argc > 1 ? argv[1] : NULL);
#define NUM(idx, lo, hi, name)                                  \
  do {                                                          \
    if (parse_ll(argv[idx], lo, hi, &v) < 0)                    \
      die_with_error(E2_ST_ARGS, EINVAL, name, argv[idx]);      \
  } while (0)
  NUM(E2_ARG_UID, 0, 0xfffffffeLL, "uid");
  c->uid = (uid_t)v;
  NUM(E2_ARG_GID, 0, 0xfffffffeLL, "gid");
  c->gid = (gid_t)v;
  c->cwd = argv[E2_ARG_CWD];
  if (c->cwd[0] != '/') die_with_error(E2_ST_ARGS, EINVAL, "cwd", c->cwd);
  if (argv[E2_ARG_OOM][0] != '\0') {
    NUM(E2_ARG_OOM, -1000, 1000, "oom_score_adj");
    c->has_oom = 1;
    c->oom = (int)v;
  }
  NUM(E2_ARG_CTLSIG, 1, 64, "control signal");
  c->ctlsig = (int)v;
  NUM(E2_ARG_NETNS, 0, 1, "netns");
  c->has_netns = (int)v;
  NUM(E2_ARG_NCGROUP, 0, 64, "cgroup count");
  c->ncgroup = (unsigned)v;
  NUM(E2_ARG_NUNVEIL, 0, 100000, "unveil count");
  c->nrules = (unsigned)v;
  NUM(E2_ARG_NARGV, 1, 1000000, "argv count");
  long long nargv = v;
  NUM(E2_ARG_NENV, 0, 1000000, "env count");
  long long nenv = v;
  if ((long long)argc != E2_ARG_FIXED + 2LL * c->nrules + nargv + nenv)
    die_with_error(E2_ST_ARGS, EINVAL, "argc", NULL);

  /* groups: "g1,g2,..." */
  const char *g = argv[E2_ARG_GROUPS];
  if (*g) {
    size_t n = 1;
    for (const char *p = g; *p; p++) n += (*p == ',');
    if (n > MAX_GROUPS) die_with_error(E2_ST_ARGS, E2BIG, "groups", NULL);
    c->groups = calloc(n, sizeof(gid_t));
    if (!c->groups) die_with_error(E2_ST_ARGS, ENOMEM, "calloc", NULL);
    char num[16];
    const char *p = g;
    for (size_t i = 0; i < n; i++) {
      size_t len = strcspn(p, ",");
      if (len == 0 || len >= sizeof num) die_with_error(E2_ST_ARGS, EINVAL, "groups", g);
      memcpy(num, p, len);
      num[len] = '\0';
      if (parse_ll(num, 0, 0xfffffffeLL, &v) < 0) die_with_error(E2_ST_ARGS, EINVAL, "groups", g);
      c->groups[i] = (gid_t)v;
      p += len + (p[len] == ',');
    }
    c->ngroups = n;
  }

  int i = E2_ARG_FIXED;
  if (c->nrules) {
    c->rules = calloc(c->nrules, sizeof *c->rules);
    if (!c->rules) die_with_error(E2_ST_ARGS, ENOMEM, "calloc", NULL);
  }
  for (unsigned r = 0; r < c->nrules; r++) {
    c->rules[r].mode = argv[i++];
    c->rules[r].path = argv[i++];
    if (c->rules[r].path[0] != '/')
      die_with_error(E2_ST_ARGS, EINVAL, "unveil path", c->rules[r].path);
  }
  c->argv = &argv[i];
  i += (int)nargv;
  /* argv and env share init's argv array, whose end is argv[argc] == NULL.
   * Copy the env pointers out, then cut the array after the task argv so
   * both are NULL terminated for execve. */
  c->envp = malloc(sizeof(char *) * (size_t)(nenv + 1));
  if (!c->envp) die_with_error(E2_ST_ARGS, ENOMEM, "malloc", NULL);
  for (long long k = 0; k < nenv; k++) c->envp[k] = argv[i + k];
  c->envp[nenv] = NULL;
  argv[i] = NULL;
#undef NUM
}

/* ---- Landlock ----------------------------------------------------------- */

#define FS_ABI1                                                             \
  (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |             \
   LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |             \
   LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |         \
   LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |             \
   LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |             \
   LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |           \
   LANDLOCK_ACCESS_FS_MAKE_SYM)

/* Rights that make sense on a non-directory; the kernel rejects a rule on a
 * file that carries any other right (EINVAL). */
#define FS_FILE_RIGHTS                                                      \
  (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |             \
   LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |             \
   LANDLOCK_ACCESS_FS_IOCTL_DEV)

#define FS_CREATE_RIGHTS                                                    \
  (LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_DIR |              \
   LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_MAKE_SOCK |             \
   LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_CHAR |            \
   LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_REMOVE_FILE |         \
   LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REFER)

static uint64_t handled_fs_for_abi(long abi) {
  uint64_t fs = FS_ABI1;
  if (abi >= 2) fs |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5) fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return fs;
}

static uint64_t mode_access(const char *mode, int is_dir) {
  uint64_t a = 0;
  for (const char *m = mode; *m; m++) {
    switch (*m) {
      case 'r':
        a |= LANDLOCK_ACCESS_FS_READ_FILE;
        if (is_dir) a |= LANDLOCK_ACCESS_FS_READ_DIR;
        break;
      case 'w':
        a |= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
             LANDLOCK_ACCESS_FS_IOCTL_DEV;
        break;
      case 'x':
        a |= LANDLOCK_ACCESS_FS_EXECUTE;
        break;
      case 'c':
        if (is_dir) a |= FS_CREATE_RIGHTS;
        break;
      default: /* '?' (optional marker) */
        break;
    }
  }
  return a;
}

/* Opens every unveil path as root (before the task drops privileges) and
 * returns the ruleset fd. Runs in the task child, after the fresh /proc is
 * mounted, so /proc/self/... rules name the task's own /proc entries. */
static int build_ruleset(const struct config *c) {
  long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
                     LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 1)
    die_with_error(E2_ST_LANDLOCK, abi < 0 ? errno : EOPNOTSUPP,
                   "landlock_create_ruleset", NULL);
  struct e2_ruleset_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.handled_access_fs = handled_fs_for_abi(abi);
  size_t attr_size = sizeof attr.handled_access_fs;
  if (abi >= 6) {
    /* The task may not signal anything outside its own Landlock domain:
     * not pid 1, not the host. */
    attr.scoped = LANDLOCK_SCOPE_SIGNAL;
    attr_size = sizeof attr;
  }
  int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
  if (rs < 0) die_with_error(E2_ST_LANDLOCK, errno, "landlock_create_ruleset", NULL);

  for (unsigned i = 0; i < c->nrules; i++) {
    const struct rule *r = &c->rules[i];
    int optional = strchr(r->mode, '?') != NULL;
    AUTOCLOSE int fd = open(r->path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
      if (optional && (errno == ENOENT || errno == ENOTDIR)) continue;
      die_with_error(E2_ST_UNVEIL_PATH, errno, "open", r->path);
    }
    struct stat st;
    if (fstat(fd, &st) < 0) die_with_error(E2_ST_UNVEIL_PATH, errno, "fstat", r->path);
    int is_dir = S_ISDIR(st.st_mode);
    struct e2_path_beneath_attr pb;
    pb.allowed_access = mode_access(r->mode, is_dir) & attr.handled_access_fs &
                        (is_dir ? ~(uint64_t)0 : (uint64_t)FS_FILE_RIGHTS);
    pb.parent_fd = fd;
    /* An empty grant (e.g. "c" on a file) is a valid no-op for us, but the
     * kernel answers ENOMSG to it. */
    if (pb.allowed_access == 0) continue;
    if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
      die_with_error(E2_ST_LANDLOCK, errno, "landlock_add_rule", r->path);
  }
  return rs;
}

/* ---- the task ----------------------------------------------------------- */

static const char *env_lookup(char **envp, const char *name) {
  size_t n = strlen(name);
  for (char **e = envp; *e; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return NULL;
}

/* execvp-like, but PATH comes from the task env and relative PATH entries
 * (including empty ones, which mean ".") are skipped: the result must not
 * depend on the working directory. The most informative failure wins, as
 * in execvp: EACCES over ENOENT. */
static __attribute__((noreturn)) void exec_command(const struct config *c) {
  const char *cmd = c->argv[0];
  if (strchr(cmd, '/')) {
    execve(cmd, c->argv, c->envp);
    int e = errno;
    die_with_error(e == ENOENT || e == ENOTDIR ? E2_ST_NOT_FOUND : E2_ST_NOT_EXEC,
                   e, "execve", cmd);
  }
  const char *path = env_lookup(c->envp, "PATH");
  if (!path) path = DEFAULT_PATH;
  size_t clen = strlen(cmd);
  char buf[PATH_MAX];
  char eacces_path[PATH_MAX];
  int saw_eacces = 0;
  const char *p = path;
  for (;;) {
    size_t dlen = strcspn(p, ":");
    if (dlen > 0 && p[0] == '/' && dlen + 1 + clen < sizeof buf) {
      memcpy(buf, p, dlen);
      buf[dlen] = '/';
      memcpy(buf + dlen + 1, cmd, clen + 1);
      execve(buf, c->argv, c->envp);
      switch (errno) {
        case EACCES:
          if (!saw_eacces) {
            saw_eacces = 1;
            memcpy(eacces_path, buf, dlen + 1 + clen + 1);
          }
          break;
        case ENOENT:
        case ENOTDIR:
        case ESTALE:
        case ENODEV:
        case ETIMEDOUT:
        case ENAMETOOLONG:
        case ELOOP:
          break;
        default:
          /* found, but unusable (ENOEXEC, ETXTBSY, E2BIG, ...): stop here
           * like execvp does */
          die_with_error(E2_ST_NOT_EXEC, errno, "execve", buf);
      }
    }
    if (p[dlen] == '\0') break;
    p += dlen + 1;
  }
  if (saw_eacces) die_with_error(E2_ST_NOT_EXEC, EACCES, "execve", eacces_path);
  die_with_error(E2_ST_NOT_FOUND, ENOENT, "execvp", cmd);
}

static void write_oom_adj(uint32_t stage, int value) {
  char buf[16];
  size_t n = fmt_int(buf, value);
  AUTOCLOSE int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0) die_with_error(stage, errno, "open", "/proc/self/oom_score_adj");
  if (write(fd, buf, n) != (ssize_t)n)
    die_with_error(stage, errno, "write", "/proc/self/oom_score_adj");
}

static __attribute__((noreturn)) void task_child(const struct config *c,
                                                 int pid1_protected,
                                                 int inherited_oom) {
  /* Own session and process group: pid 1 signals the group, and the task
   * has no controlling terminal. */
  if (setsid() < 0) die_with_error(E2_ST_STDIO, errno, "setsid", NULL);

  int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (nul < 0) die_with_error(E2_ST_STDIO, errno, "open", "/dev/null");
  if (dup2(nul, 0) < 0 || dup2(E2_FD_STDOUT, 1) < 0 || dup2(E2_FD_STDERR, 2) < 0)
    die_with_error(E2_ST_STDIO, errno, "dup2", NULL);
  /* The error pipe must vanish at the task's execve: that EOF is the
   * "started" signal for the addon. */
  if (fcntl(E2_FD_ERR, F_SETFD, FD_CLOEXEC) < 0)
    die_with_error(E2_ST_STDIO, errno, "fcntl", NULL);
  /* Status dir, netns, cgroup files, the /dev/null above: none of it is the
   * task's business. */
  if (syscall(SYS_close_range, 4U, ~0U, 0) < 0)
    die_with_error(E2_ST_STDIO, errno, "close_range", NULL);

  /* pid 1 runs at -1000 and fork copied that; never let the task keep it. */
  if (c->has_oom)
    write_oom_adj(E2_ST_OOM, c->oom);
  else if (pid1_protected)
    write_oom_adj(E2_ST_OOM, inherited_oom);

  if (chdir(c->cwd) < 0) die_with_error(E2_ST_WORKDIR, errno, "chdir", c->cwd);

  int rs = build_ruleset(c);

  char op[48];
  if (setgroups(c->ngroups, c->groups) < 0)
    die_with_error(E2_ST_CREDS, errno, "setgroups", NULL);
  if (setgid(c->gid) < 0) {
    op_with_id(op, sizeof op, "setgid", (long)c->gid);
    die_with_error(E2_ST_CREDS, errno, op, NULL);
  }
  if (setuid(c->uid) < 0) {
    op_with_id(op, sizeof op, "setuid", (long)c->uid);
    die_with_error(E2_ST_CREDS, errno, op, NULL);
  }
  /* Trust but verify: a partial credential change must never run a task. */
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
    die_with_error(E2_ST_CREDS, errno, "getresuid", NULL);
  if (ru != c->uid || eu != c->uid || su != c->uid || rg != c->gid ||
      eg != c->gid || sg != c->gid)
    die_with_error(E2_ST_CREDS, EPERM, "credentials did not stick", NULL);

  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    die_with_error(E2_ST_PRIVS, errno, "prctl(PR_SET_NO_NEW_PRIVS)", NULL);
  if (syscall(SYS_landlock_restrict_self, rs, 0) < 0)
    die_with_error(E2_ST_LANDLOCK, errno, "landlock_restrict_self", NULL);
  close(rs);

  /* Last: a signal pending now acts on the task with default dispositions,
   * as if it had arrived right after execve. */
  if (sigmask_set(0) < 0) die_with_error(E2_ST_STDIO, errno, "rt_sigprocmask", NULL);
  exec_command(c);
}

/* ---- pid 1 ---------------------------------------------------------------- */

static void write_status(int status) {
  char buf[32];
  size_t n;
  if (WIFEXITED(status)) {
    memcpy(buf, "exited ", 7);
    n = 7 + fmt_int(buf + 7, WEXITSTATUS(status));
  } else {
    memcpy(buf, "signaled ", 9);
    n = 9 + fmt_int(buf + 9, WTERMSIG(status));
  }
  buf[n++] = '\n';
  /* Temp file + rename: a reader sees either no status or a complete one.
   * The directory is root's and never reachable by the task, O_NOFOLLOW is
   * belt and braces. A failure here cannot be reported anywhere useful; the
   * exit code still carries the result. */
  int fd = openat(E2_FD_STATUS, "status.tmp",
                  O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  ssize_t w = write(fd, buf, n);
  close(fd);
  if (w == (ssize_t)n) renameat(E2_FD_STATUS, "status.tmp", E2_FD_STATUS, "status");
}

static void signal_group(pid_t task, int sig) {
  /* Before the task's setsid() its group does not exist yet; the signal is
   * still meant for it. */
  if (kill(-task, sig) < 0 && errno == ESRCH) kill(task, sig);
}

static __attribute__((noreturn)) void supervise(pid_t task, int ctlsig) {
  const uint64_t all = ~(uint64_t)0;
  for (;;) {
    siginfo_t si;
    long sig = syscall(SYS_rt_sigtimedwait, &all, &si, NULL, sizeof all);
    if (sig < 0) continue; /* EINTR only: nothing else can fail here */
    if (sig == SIGCHLD) {
      /* Signals coalesce: reap everything that is ready, orphans included. */
      int st, task_status = 0, task_done = 0;
      pid_t p;
      while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        if (p == task) {
          task_status = st;
          task_done = 1;
        }
      }
      if (task_done) {
        write_status(task_status);
        /* Exiting as pid 1 makes the kernel SIGKILL the rest of the
         * namespace. A signal death becomes 128+N: pid 1 cannot die from
         * a signal it sends itself. */
        _exit(WIFEXITED(task_status) ? WEXITSTATUS(task_status)
                                     : 128 + WTERMSIG(task_status));
      }
      continue;
    }
    if (sig == ctlsig && si.si_code == SI_QUEUE) {
      unsigned v = (unsigned)si.si_value.sival_int;
      unsigned target = v >> 8, s = v & 0xff;
      if (s > 64) continue;
      if (target == E2_TARGET_GROUP)
        signal_group(task, (int)s);
      else if (target == E2_TARGET_ALL)
        kill(-1, (int)s); /* everything in the namespace but pid 1 */
      continue;
    }
    signal_group(task, (int)sig);
  }
}

int main(int argc, char **argv) {
  struct config c;

  /* Refuse to run anywhere but as the init of a fresh namespace: as root
   * outside one, the mounts below would change the host. */
  if (getpid() != 1) die_with_error(E2_ST_ARGS, EPERM, "not pid 1 of a new namespace", NULL);
  parse_config(argc, argv, &c);
  reset_signal_dispositions();

  /* Leave the plugin's session: a terminal's SIGINT/SIGHUP aimed at the
   * plugin must not reach tasks, which outlive the plugin. */
  if (setsid() < 0) die_with_error(E2_ST_SETUP, errno, "setsid", NULL);

  /* Private propagation first, so the proc mount below never leaks back to
   * the host's mount namespace. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    die_with_error(E2_ST_SETUP, errno, "mount(MS_PRIVATE)", "/");
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    die_with_error(E2_ST_SETUP, errno, "mount(proc)", "/proc");

  /* v1 hosts: joining every controller's cgroup before the fork puts the
   * task there from its first instruction. */
  for (unsigned i = 0; i < c.ncgroup; i++) {
    if (write(E2_FD_CGROUP0 + (int)i, "0", 1) != 1)
      die_with_error(E2_ST_CGROUP, errno, "write", "cgroup.procs");
  }

  if (c.has_netns && setns(E2_FD_NETNS, CLONE_NEWNET) < 0)
    die_with_error(E2_ST_NETNS, errno, "setns", NULL);

  /* pid 1 must survive a cgroup OOM kill to record the task's status. The
   * inherited value (the plugin's) is what the task gets when the spec
   * leaves oom_score_adj alone. */
  int inherited_oom = 0, pid1_protected = 0;
  {
    AUTOCLOSE int fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
    if (fd < 0) die_with_error(E2_ST_OOM, errno, "open", "/proc/self/oom_score_adj");
    char buf[16];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n <= 0) die_with_error(E2_ST_OOM, n < 0 ? errno : EIO, "read", "/proc/self/oom_score_adj");
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n') buf[n - 1] = '\0';
    long long v;
    if (parse_ll(buf, -1000, 1000, &v) < 0)
      die_with_error(E2_ST_OOM, EINVAL, "parse", "/proc/self/oom_score_adj");
    inherited_oom = (int)v;
    /* proc ignores the file offset on write. Lowering needs
     * CAP_SYS_RESOURCE, which some container runtimes withhold from root:
     * then pid 1 stays at the plugin's value (best effort; the plugin still
     * learns about an OOM kill from memory.events). */
    if (write(fd, "-1000", 5) == 5)
      pid1_protected = 1;
    else if (errno != EACCES && errno != EPERM)
      die_with_error(E2_ST_OOM, errno, "write", "/proc/self/oom_score_adj");
  }

  pid_t task = fork();
  if (task < 0) die_with_error(E2_ST_FORK, errno, "fork", NULL);
  if (task == 0) task_child(&c, pid1_protected, inherited_oom);

  /* Our copy of the error pipe must go now: the addon waits for EOF. The
   * task's stdio must go too, or its readers never see EOF. */
  close(E2_FD_ERR);
  close(E2_FD_STDOUT);
  close(E2_FD_STDERR);
  if (c.has_netns) close(E2_FD_NETNS);
  for (unsigned i = 0; i < c.ncgroup; i++) close(E2_FD_CGROUP0 + (int)i);
  supervise(task, c.ctlsig);
}
