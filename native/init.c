/*
 * exec2-init: pid 1 of a task's pid namespace, and (exec mode) the helper
 * that starts `nomad alloc exec` sessions and script checks inside a task.
 *
 * Started by the addon (clone3 + execve) with every signal blocked, in fresh
 * pid/ipc/mount namespaces, already inside the task's cgroup (v2), with the
 * descriptor layout of protocol.h. It prepares the namespace, forks the task,
 * confines it (credentials, no_new_privs, Landlock) and then stays as a tiny
 * supervisor: it forwards signals, reaps orphans and records the final status
 * in a file the task cannot reach, then exits with the task's code.
 *
 * Statically linked, without libc code (see rawsys.h for why), and started
 * with an empty environment: nothing the job author controls (the task env
 * travels in argv) can influence this process, which runs as root.
 *
 * Any failure before the task's execve is reported as one record on the error
 * pipe (fd 3), which the addon turns into a typed exception.
 *
 * Exec mode (argv[1] == E2_EXEC_MAGIC) is short-lived: it joins the task's
 * cgroups and namespaces, starts the command as a sibling of itself (the
 * launcher's child, confined exactly like the task by the same code), reports
 * its pid and exits. See exec_main().
 */
#define _GNU_SOURCE
/* glibc headers for constants and kernel-identical types only */
#include <fcntl.h>
#include <linux/errno.h>
#include <linux/stat.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/ioctl.h>

#include "compat.h"
#include "rawsys.h"
#define E2_REPORT_WRITE(fd, buf, n) r_write((fd), (buf), (n))
#include "protocol.h"
#include "clone3.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define MAX_GROUPS 65536
#define PATH_BUF 4096

struct config {
  uint32_t uid;
  uint32_t gid;
  size_t ngroups;
  const char *cwd;
  int has_oom;
  int oom;
  int pid1_protected; /* pid 1 managed to go to -1000 */
  int inherited_oom;  /* the plugin's value, for a task without oomScoreAdj */
  int ctlsig;
  int exec_mode; /* joining a running task, not creating one */
  int tty;       /* exec mode: fd E2_FDX_STDIN is the terminal for 0/1/2 */
  int has_netns;
  unsigned ncgroup;
  char **rules; /* nrules pairs: "<letters>[?]", path */
  unsigned nrules;
  char **argv; /* NULL terminated */
  char **envp; /* NULL terminated */
  uint64_t cap_bnd;   /* capabilities kept in the bounding set */
  uint64_t cap_amb;   /* ambient capabilities (non-root only) */
  int scope_abstract; /* Landlock ABI 6+: scope abstract unix sockets too */
};

/* Outside the stack: 256 KiB would be a lot of stack, and untouched bss
 * pages cost nothing. */
static uint32_t groups[MAX_GROUPS];

/* The task child runs on this stack while sharing pid 1's memory (vfork
 * style). The first page becomes a guard. */
#define TASK_STACK_SIZE (64 * 1024)
static char task_stack[TASK_STACK_SIZE + 4096] __attribute__((aligned(4096)));

/* ---- runtime support (no libc) ------------------------------------------ */

/* The compiler may emit calls to these for struct copies and zeroing. */
void *memcpy(void *d, const void *s, size_t n) {
  char *dp = d;
  const char *sp = s;
  while (n--) *dp++ = *sp++;
  return d;
}
void *memset(void *d, int c, size_t n) {
  char *dp = d;
  while (n--) *dp++ = (char)c;
  return d;
}
void *memmove(void *d, const void *s, size_t n) {
  char *dp = d;
  const char *sp = s;
  if (dp < sp)
    while (n--) *dp++ = *sp++;
  else
    while (n--) dp[n] = sp[n];
  return d;
}
int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y) return *x - *y;
  return 0;
}

/* -fstack-protector with a global guard (see binding.gyp), seeded from the
 * kernel's AT_RANDOM bytes before any protected function runs. */
uintptr_t __stack_chk_guard;
__attribute__((noreturn)) void __stack_chk_fail(void) {
  for (;;) SC2(SYS_kill, r_getpid(), SIGKILL);
}

int main(int argc, char **argv, char **envp);

__attribute__((used, noreturn, optimize("no-stack-protector"))) void e2_start_c(long *sp) {
  int argc = (int)sp[0];
  char **argv = (char **)(sp + 1);
  char **envp_start = argv + argc + 1;
  char **envp = envp_start;
  while (*envp) envp++;
  for (unsigned long *auxv = (unsigned long *)(envp + 1); auxv[0]; auxv += 2) {
    if (auxv[0] == 25 /* AT_RANDOM */) {
      uintptr_t g;
      memcpy(&g, (const void *)auxv[1], sizeof g);
      g &= ~(uintptr_t)0xff; /* a NUL byte stops string-based overflows */
      __stack_chk_guard = g;
    }
  }
  r_exit(main(argc, argv, envp_start));
}

#if defined(__x86_64__)
__asm__(".pushsection .text\n"
        ".globl _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "  endbr64\n"
        "  xor %ebp, %ebp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call e2_start_c\n"
        "  hlt\n"
        ".popsection\n");
#elif defined(__aarch64__)
__asm__(".pushsection .text\n"
        ".globl _start\n"
        ".type _start,%function\n"
        "_start:\n"
        "  hint #34\n"
        "  mov x29, xzr\n"
        "  mov x30, xzr\n"
        "  mov x0, sp\n"
        "  bl e2_start_c\n"
        "  brk #0\n"
        ".popsection\n");
#endif

/* ---- errors --------------------------------------------------------------- */

static __attribute__((noreturn)) void die_with_error(uint32_t stage, long neg_err,
                                                     const char *op,
                                                     const char *path) {
  e2_report(E2_FD_ERR, stage, (int)(neg_err < 0 ? -neg_err : neg_err), op, path);
  r_exit(127);
}

static void close_fdp(int *fd) {
  if (*fd >= 0) r_close(*fd);
}
#define AUTOCLOSE __attribute__((cleanup(close_fdp)))

/* ---- small helpers ------------------------------------------------------ */

static int parse_ll(const char *s, long long min, long long max, long long *out) {
  int neg = 0;
  long long v = 0;
  if (*s == '-') {
    neg = 1;
    s++;
  }
  if (*s == '\0') return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    if (v > (0x7fffffffffffffffLL - 9) / 10) return -1;
    v = v * 10 + (*s - '0');
  }
  if (neg) v = -v;
  if (v < min || v > max) return -1;
  *out = v;
  return 0;
}

/* Formats a signed int; returns the length (buf >= 22 bytes). */
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
  size_t n = r_strlen(name);
  if (n + 24 > size) n = size - 24;
  memcpy(buf, name, n);
  buf[n++] = '(';
  n += fmt_int(buf + n, id);
  buf[n++] = ')';
  buf[n] = '\0';
}

/* The kernel sigset on x86_64/aarch64 is 8 bytes; raw calls also cover the
 * two real-time signals glibc would hide. */
static long sigmask_set(uint64_t mask) {
  return SC4(SYS_rt_sigprocmask, SIG_SETMASK, &mask, 0, sizeof mask);
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
    long r = SC4(SYS_rt_sigaction, sig, &ksa, 0, sizeof ksa.mask);
    if (r < 0) die_with_error(E2_ST_SETUP, r, "rt_sigaction", 0);
  }
}

/* ---- capabilities ----------------------------------------------------------- */

/* "0x<hex>" or decimal, full 64 bits. */
static int parse_mask(const char *s, uint64_t *out) {
  uint64_t v = 0;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s += 2;
    if (!*s) return -1;
    for (int n = 0; *s; s++, n++) {
      int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
            : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10 : -1;
      if (d < 0 || n >= 16) return -1;
      v = v << 4 | (uint64_t)d;
    }
  } else {
    if (!*s) return -1;
    for (; *s; s++) {
      if (*s < '0' || *s > '9') return -1;
      if (v > (~(uint64_t)0 - 9) / 10) return -1;
      v = v * 10 + (uint64_t)(*s - '0');
    }
  }
  *out = v;
  return 0;
}

static void caps_parse(char **argv, struct config *c) {
  if (parse_mask(argv[E2_ARG_CAPBND], &c->cap_bnd) < 0)
    die_with_error(E2_ST_ARGS, EINVAL, "capability bounding set", argv[E2_ARG_CAPBND]);
  if (parse_mask(argv[E2_ARG_CAPAMB], &c->cap_amb) < 0 || (c->cap_amb & ~c->cap_bnd))
    die_with_error(E2_ST_ARGS, EINVAL, "ambient capabilities", argv[E2_ARG_CAPAMB]);
  /* uid 0 gets its capabilities from the bounding set at execve. */
  if (c->uid == 0 && c->cap_amb)
    die_with_error(E2_ST_ARGS, EINVAL, "ambient capabilities for uid 0", argv[E2_ARG_CAPAMB]);
}

struct e2_cap_hdr {
  uint32_t version;
  int pid;
};
struct e2_cap_data {
  uint32_t effective, permitted, inheritable;
};
#define E2_CAP_V3 0x20080522u

static long caps_set(uint64_t eff, uint64_t prm, uint64_t inh) {
  struct e2_cap_hdr h = {E2_CAP_V3, 0};
  struct e2_cap_data d[2] = {{(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
                             {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)}};
  return SC2(SYS_capset, &h, d);
}

static long caps_get(uint64_t *eff, uint64_t *prm, uint64_t *inh) {
  struct e2_cap_hdr h = {E2_CAP_V3, 0};
  struct e2_cap_data d[2] = {{0, 0, 0}, {0, 0, 0}};
  long r = SC2(SYS_capget, &h, d);
  *eff = d[0].effective | (uint64_t)d[1].effective << 32;
  *prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
  *inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
  return r;
}

static long prctl3(int op, unsigned long a, unsigned long b) { return SC5(SYS_prctl, op, a, b, 0, 0); }

static __attribute__((noreturn)) void die_cap(long err, const char *what, int cap) {
  char op[64];
  op_with_id(op, sizeof op, what, cap);
  die_with_error(E2_ST_CAPS, err, op, 0);
}

/*
 * Before the credential change, with all of root's capabilities: no ambient
 * capability inherited from the plugin, and the bounding set cut to what
 * the task may have (PR_CAPBSET_READ answers EINVAL past cap_last_cap: the
 * end of the kernel's list). A non-root command keeps its permitted set
 * across setuid so caps_apply can hand it its ambient capabilities.
 */
static void caps_bound(const struct config *c) {
  long r;
  if ((r = prctl3(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0)) < 0)
    die_with_error(E2_ST_CAPS, r, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)", 0);
  for (int i = 0; i < 64; i++) {
    r = prctl3(PR_CAPBSET_READ, (unsigned long)i, 0);
    if (r == -EINVAL) {
      if (c->cap_bnd >> i) die_cap(EINVAL, "capability unknown to this kernel", __builtin_ctzll(c->cap_bnd >> i) + i);
      break;
    }
    if (r < 0) die_cap(r, "prctl(PR_CAPBSET_READ)", i);
    if (c->cap_bnd & (1ULL << i)) {
      if (r == 0) die_cap(EPERM, "capability not in the plugin's own bounding set", i);
      continue;
    }
    if (r == 1 && (r = prctl3(PR_CAPBSET_DROP, (unsigned long)i, 0)) < 0)
      die_cap(r, "prctl(PR_CAPBSET_DROP)", i);
  }
  if (c->uid != 0 && c->cap_amb && (r = prctl3(PR_SET_KEEPCAPS, 1, 0)) < 0)
    die_with_error(E2_ST_CAPS, r, "prctl(PR_SET_KEEPCAPS)", 0);
}

/*
 * After the credential change, before no_new_privs: uid 0 holds exactly the
 * bounding set with nothing inheritable (execve then gives it exactly the
 * bounding set); anyone else holds exactly its ambient set as effective,
 * permitted, inheritable and ambient (execve of an ordinary file then gives
 * it exactly those). Verified afterwards, like the credentials.
 */
static void caps_apply(const struct config *c) {
  uint64_t set = c->uid == 0 ? c->cap_bnd : c->cap_amb;
  uint64_t inh = c->uid == 0 ? 0 : c->cap_amb;
  long r = caps_set(set, set, inh);
  if (r < 0) die_with_error(E2_ST_CAPS, r, "capset", 0);
  for (int i = 0; i < 64; i++)
    if ((c->cap_amb >> i & 1) && (r = prctl3(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)i)) < 0)
      die_cap(r, "prctl(PR_CAP_AMBIENT_RAISE)", i);
  uint64_t e, p, in;
  if ((r = caps_get(&e, &p, &in)) < 0) die_with_error(E2_ST_CAPS, r, "capget", 0);
  if (e != set || p != set || in != inh) die_with_error(E2_ST_CAPS, EPERM, "capabilities did not stick", 0);
  for (int i = 0; i < 64; i++) {
    long b = prctl3(PR_CAPBSET_READ, (unsigned long)i, 0);
    if (b == -EINVAL) break;
    long a = prctl3(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, (unsigned long)i);
    if (b != (long)(c->cap_bnd >> i & 1) || a != (long)(c->cap_amb >> i & 1))
      die_cap(EPERM, "capability sets did not stick", i);
  }
}

/* ---- argv --------------------------------------------------------------- */

static void parse_config(int argc, char **argv, char **envp, int exec_mode, struct config *c) {
  long long v;
  memset(c, 0, sizeof *c);
  if (argc < E2_ARG_FIXED ||
      !r_streq(argv[E2_ARG_MAGIC], exec_mode ? E2_EXEC_MAGIC : E2_PROTO_MAGIC))
    die_with_error(E2_ST_ARGS, EINVAL, "protocol version", argc > 1 ? argv[1] : 0);
  c->exec_mode = exec_mode;
#define NUM(idx, lo, hi, name)                                  \
  do {                                                          \
    if (parse_ll(argv[idx], lo, hi, &v) < 0)                    \
      die_with_error(E2_ST_ARGS, EINVAL, name, argv[idx]);      \
  } while (0)
  NUM(E2_ARG_UID, 0, 0xfffffffeLL, "uid");
  c->uid = (uint32_t)v;
  NUM(E2_ARG_GID, 0, 0xfffffffeLL, "gid");
  c->gid = (uint32_t)v;
  c->cwd = argv[E2_ARG_CWD];
  if (c->cwd[0] != '/') die_with_error(E2_ST_ARGS, EINVAL, "cwd", c->cwd);
  if (argv[E2_ARG_OOM][0] != '\0') {
    NUM(E2_ARG_OOM, -1000, 1000, "oom_score_adj");
    c->has_oom = 1;
    c->oom = (int)v;
  }
  if (exec_mode) {
    NUM(E2_ARG_TTY, 0, 1, "tty");
    c->tty = (int)v;
    /* The network namespace comes with the task's pid 1 (E2_FDX_TASK). */
    NUM(E2_ARG_NETNS, 0, 0, "netns");
  } else {
    NUM(E2_ARG_CTLSIG, 1, 64, "control signal");
    c->ctlsig = (int)v;
    NUM(E2_ARG_NETNS, 0, 1, "netns");
    c->has_netns = (int)v;
  }
  NUM(E2_ARG_NCGROUP, 0, E2_SPAWN_MAX_CGROUPS, "cgroup count");
  c->ncgroup = (unsigned)v;
  NUM(E2_ARG_NUNVEIL, 0, 1000000, "unveil count");
  c->nrules = (unsigned)v;
  NUM(E2_ARG_NARGV, 1, 10000000, "argv count");
  long long nargv = v;
  NUM(E2_ARG_NENV, 0, 10000000, "env count");
  long long nenv = v;
  NUM(E2_ARG_SCOPE, 0, 1, "scope");
  c->scope_abstract = (int)v;
  caps_parse(argv, c);
  if ((long long)argc != E2_ARG_FIXED + 2LL * c->nrules + nargv)
    die_with_error(E2_ST_ARGS, EINVAL, "argc", 0);
  /* The task environment is our own envp (see E2_PROTO_MAGIC): the count in
   * argv must match it exactly, so a stray variable can never slip in. */
  long long have = 0;
  while (envp[have]) have++;
  if (have != nenv) die_with_error(E2_ST_ARGS, EINVAL, "env count", 0);
#undef NUM

  /* groups: "g1,g2,..." */
  const char *g = argv[E2_ARG_GROUPS];
  if (*g) {
    size_t n = 0;
    const char *p = g;
    for (;;) {
      char num[16];
      size_t len = r_strcspn1(p, ',');
      if (n == MAX_GROUPS) die_with_error(E2_ST_ARGS, E2BIG, "groups", 0);
      if (len == 0 || len >= sizeof num) die_with_error(E2_ST_ARGS, EINVAL, "groups", g);
      memcpy(num, p, len);
      num[len] = '\0';
      if (parse_ll(num, 0, 0xfffffffeLL, &v) < 0) die_with_error(E2_ST_ARGS, EINVAL, "groups", g);
      groups[n++] = (uint32_t)v;
      if (p[len] == '\0') break;
      p += len + 1;
    }
    c->ngroups = n;
  }

  /* The task argv comes last, so the kernel's argv[argc] == NULL ends it. */
  c->rules = &argv[E2_ARG_FIXED];
  c->argv = &argv[E2_ARG_FIXED + 2 * (int)c->nrules];
  c->envp = envp;
  for (unsigned r = 0; r < c->nrules; r++)
    if (c->rules[2 * r + 1][0] != '/')
      die_with_error(E2_ST_ARGS, EINVAL, "unveil path", c->rules[2 * r + 1]);
}

/* ---- Landlock ------------------------------------------------------------- */

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

/* Rights a mode string asks for; masked later by what the ABI handles. */
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
 * returns the ruleset fd. Runs in the task child after the fresh /proc is
 * mounted, so /proc/self/... rules name the task's own /proc entries. */
static int build_ruleset(const struct config *c) {
  long abi = SC3(SYS_landlock_create_ruleset, 0, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 1)
    die_with_error(E2_ST_LANDLOCK, abi < 0 ? abi : -EOPNOTSUPP, "landlock_create_ruleset", 0);
  struct e2_ruleset_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.handled_access_fs = handled_fs_for_abi(abi);
  size_t attr_size = sizeof attr.handled_access_fs;
  if (abi >= 6) {
    /* The task may not signal anything outside its own Landlock domain:
     * not pid 1, not the host. */
    attr.scoped = LANDLOCK_SCOPE_SIGNAL | (c->scope_abstract ? LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET : 0);
    attr_size = sizeof attr;
  }
  long rs = SC3(SYS_landlock_create_ruleset, &attr, attr_size, 0);
  if (rs < 0) die_with_error(E2_ST_LANDLOCK, rs, "landlock_create_ruleset", 0);

  for (unsigned i = 0; i < c->nrules; i++) {
    const char *mode = c->rules[2 * i], *path = c->rules[2 * i + 1];
    int optional = r_strchr(mode, '?') != 0;
    /* '!': a path the task can replace (its own directories). Following a
     * symlink planted there would, as root, grant whatever it points at. */
    int nofollow = r_strchr(mode, '!') != 0;
    AUTOCLOSE int fd = (int)r_open(path, O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
    if (fd < 0) {
      if (optional && (fd == -ENOENT || fd == -ENOTDIR)) continue;
      die_with_error(E2_ST_UNVEIL_PATH, fd, "open", path);
    }
    struct statx stx;
    long r = r_statx(fd, "", AT_EMPTY_PATH, STATX_TYPE, &stx);
    if (r < 0) die_with_error(E2_ST_UNVEIL_PATH, r, "statx", path);
    if (nofollow && (stx.stx_mode & S_IFMT) == S_IFLNK) {
      if (optional) continue;
      die_with_error(E2_ST_UNVEIL_PATH, -ELOOP, "open", path);
    }
    int is_dir = (stx.stx_mode & S_IFMT) == S_IFDIR;
    struct e2_path_beneath_attr pb;
    pb.allowed_access = mode_access(mode, is_dir) & attr.handled_access_fs &
                        (is_dir ? ~(uint64_t)0 : (uint64_t)FS_FILE_RIGHTS);
    pb.parent_fd = fd;
    /* An empty grant (e.g. "c" on a file) is a valid no-op for us, but the
     * kernel answers ENOMSG to it. */
    if (pb.allowed_access == 0) continue;
    r = SC4(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    /* EBADFD: the path leads to an object on an internal filesystem (pipefs,
     * sockfs: e.g. /dev/stdin when stdin is a pipe, as in an exec session).
     * Landlock never restricts those, so there is nothing to grant. */
    if (r == -EBADFD) continue;
    if (r < 0) die_with_error(E2_ST_LANDLOCK, r, "landlock_add_rule", path);
  }
  return (int)rs;
}

/* ---- the task ------------------------------------------------------------- */

static const char *env_lookup(char **envp, const char *name) {
  size_t n = r_strlen(name);
  for (char **e = envp; *e; e++)
    if (memcmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return 0;
}

/* execvp-like, but PATH comes from the task env and relative PATH entries
 * (including empty ones, which mean ".") are skipped: the result must not
 * depend on the working directory. The most informative failure wins, as
 * in execvp: EACCES over ENOENT. */
static __attribute__((noreturn)) void exec_command(const struct config *c) {
  const char *cmd = c->argv[0];
  long r;
  if (r_strchr(cmd, '/')) {
    r = r_execve(cmd, c->argv, c->envp);
    die_with_error(r == -ENOENT || r == -ENOTDIR ? E2_ST_NOT_FOUND : E2_ST_NOT_EXEC, r,
                   "execve", cmd);
  }
  const char *path = env_lookup(c->envp, "PATH");
  if (!path) path = DEFAULT_PATH;
  size_t clen = r_strlen(cmd);
  char buf[PATH_BUF];
  char eacces_path[PATH_BUF];
  int saw_eacces = 0;
  const char *p = path;
  for (;;) {
    size_t dlen = r_strcspn1(p, ':');
    if (dlen > 0 && p[0] == '/' && dlen + 1 + clen < sizeof buf) {
      memcpy(buf, p, dlen);
      buf[dlen] = '/';
      memcpy(buf + dlen + 1, cmd, clen + 1);
      r = r_execve(buf, c->argv, c->envp);
      switch (-r) {
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
          die_with_error(E2_ST_NOT_EXEC, r, "execve", buf);
      }
    }
    if (p[dlen] == '\0') break;
    p += dlen + 1;
  }
  if (saw_eacces) die_with_error(E2_ST_NOT_EXEC, EACCES, "execve", eacces_path);
  die_with_error(E2_ST_NOT_FOUND, ENOENT, "execvp", cmd);
}

static void write_oom_adj(int value) {
  char buf[24];
  size_t n = fmt_int(buf, value);
  AUTOCLOSE int fd = (int)r_open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0) die_with_error(E2_ST_OOM, fd, "open", "/proc/self/oom_score_adj");
  long w = r_write(fd, buf, n);
  if (w != (long)n) die_with_error(E2_ST_OOM, w < 0 ? w : -EIO, "write", "/proc/self/oom_score_adj");
}

/*
 * Everything between "stdio is in place" and the command's execve, shared by
 * the task and by exec sessions so that an exec session can never be less
 * confined than the task: oom_score_adj, working directory, Landlock ruleset
 * (built here, as root, so /proc/self rules name this very process),
 * capability sets, credentials, no_new_privs, Landlock, signal mask, PATH search.
 */
static __attribute__((noreturn)) void confine_and_exec(const struct config *c);

/*
 * The task child. It shares pid 1's memory (CLONE_VM|CLONE_VFORK: no page
 * table copy, no copy-on-write faults; pid 1 sleeps until the execve), so it
 * writes nothing but its own stack. Credentials, fd table, cwd, signal mask,
 * no_new_privs and the Landlock domain are all per task, not per mm.
 */
static int task_child(void *arg) {
  const struct config *c = arg;
  long r;
  /* Own session and process group: pid 1 signals the group, and the task
   * has no controlling terminal. */
  if ((r = r_setsid()) < 0) die_with_error(E2_ST_STDIO, r, "setsid", 0);

  int nul = (int)r_open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (nul < 0) die_with_error(E2_ST_STDIO, nul, "open", "/dev/null");
  if ((r = r_dup3(nul, 0, 0)) < 0 || (r = r_dup3(E2_FD_STDOUT, 1, 0)) < 0 ||
      (r = r_dup3(E2_FD_STDERR, 2, 0)) < 0)
    die_with_error(E2_ST_STDIO, r, "dup3", 0);
  /* The worker opens the log FIFOs O_NONBLOCK so a missing reader is an
   * error instead of a hang; the task must get ordinary blocking writes
   * (the flag lives on the shared open file description). */
  for (int fd = 1; fd <= 2; fd++) {
    long fl = r_fcntl(fd, F_GETFL, 0);
    if (fl < 0 || (r = r_fcntl(fd, F_SETFL, fl & ~(long)O_NONBLOCK)) < 0)
      die_with_error(E2_ST_STDIO, fl < 0 ? fl : r, "fcntl", 0);
  }
  /* The error pipe must vanish at the task's execve: that EOF is the
   * "started" signal for the addon. */
  if ((r = r_fcntl(E2_FD_ERR, F_SETFD, FD_CLOEXEC)) < 0)
    die_with_error(E2_ST_STDIO, r, "fcntl", 0);
  /* Status dir, netns, cgroup files, the /dev/null above: none of it is the
   * task's business. */
  if ((r = r_close_range(4, ~0U, 0)) < 0) die_with_error(E2_ST_STDIO, r, "close_range", 0);
  confine_and_exec(c);
}

/*
 * An exec session's command: a new session of its own (so the plugin can
 * kill everything it starts by process group and session), its terminal or
 * pipes on 0/1/2, nothing else, then the task's confinement.
 */
static int exec_child(void *arg) {
  const struct config *c = arg;
  long r;
  if ((r = r_setsid()) < 0) die_with_error(E2_ST_STDIO, r, "setsid", 0);
  if (c->tty) {
    /* Controlling terminal, so job control, ^C and SIGWINCH work. */
    if ((r = r_ioctl(E2_FDX_STDIN, TIOCSCTTY, 0)) < 0)
      die_with_error(E2_ST_STDIO, r, "ioctl(TIOCSCTTY)", 0);
    for (int fd = 0; fd <= 2; fd++)
      if ((r = r_dup3(E2_FDX_STDIN, fd, 0)) < 0) die_with_error(E2_ST_STDIO, r, "dup3", 0);
  } else {
    if ((r = r_dup3(E2_FDX_STDIN, 0, 0)) < 0 || (r = r_dup3(E2_FDX_STDOUT, 1, 0)) < 0 ||
        (r = r_dup3(E2_FDX_STDERR, 2, 0)) < 0)
      die_with_error(E2_ST_STDIO, r, "dup3", 0);
  }
  if ((r = r_fcntl(E2_FD_ERR, F_SETFD, FD_CLOEXEC)) < 0)
    die_with_error(E2_ST_STDIO, r, "fcntl", 0);
  /* The pidfd, cgroup files and the launcher's copies of the stdio: gone. */
  if ((r = r_close_range(4, ~0U, 0)) < 0) die_with_error(E2_ST_STDIO, r, "close_range", 0);
  confine_and_exec(c);
}

static __attribute__((noreturn)) void confine_and_exec(const struct config *c) {
  long r;
  /* pid 1 runs at -1000 and the task inherited that; never let it keep it.
   * (An exec session inherits the plugin's value, as a task without
   * oom_score_adj does.) */
  if (c->has_oom)
    write_oom_adj(c->oom);
  else if (c->pid1_protected)
    write_oom_adj(c->inherited_oom);

  if ((r = r_chdir(c->cwd)) < 0) die_with_error(E2_ST_WORKDIR, r, "chdir", c->cwd);

  int rs = build_ruleset(c);

  caps_bound(c);

  char op[48];
  if ((r = r_setgroups(c->ngroups, groups)) < 0) die_with_error(E2_ST_CREDS, r, "setgroups", 0);
  if ((r = r_setgid(c->gid)) < 0) {
    op_with_id(op, sizeof op, "setgid", (long)c->gid);
    die_with_error(E2_ST_CREDS, r, op, 0);
  }
  if ((r = r_setuid(c->uid)) < 0) {
    op_with_id(op, sizeof op, "setuid", (long)c->uid);
    die_with_error(E2_ST_CREDS, r, op, 0);
  }
  /* Trust but verify: a partial credential change must never run a task. */
  uint32_t ru, eu, su, rg, eg, sg;
  if ((r = r_getresuid(&ru, &eu, &su)) < 0 || (r = r_getresgid(&rg, &eg, &sg)) < 0)
    die_with_error(E2_ST_CREDS, r, "getresuid", 0);
  if (ru != c->uid || eu != c->uid || su != c->uid || rg != c->gid || eg != c->gid ||
      sg != c->gid)
    die_with_error(E2_ST_CREDS, EPERM, "credentials did not stick", 0);
  caps_apply(c);

  if ((r = r_prctl(PR_SET_NO_NEW_PRIVS, 1)) < 0)
    die_with_error(E2_ST_PRIVS, r, "prctl(PR_SET_NO_NEW_PRIVS)", 0);
  if ((r = SC2(SYS_landlock_restrict_self, rs, 0)) < 0)
    die_with_error(E2_ST_LANDLOCK, r, "landlock_restrict_self", 0);
  r_close(rs);

  /* Last: a signal pending now acts on the task with default dispositions,
   * as if it had arrived right after execve. */
  if ((r = sigmask_set(0)) < 0) die_with_error(E2_ST_STDIO, r, "rt_sigprocmask", 0);
  exec_command(c);
}

/* ---- exec mode -------------------------------------------------------------- */

/*
 * Joins the running task and starts one command in it. Started by the addon
 * with every signal blocked, in the task's cgroup (v2: CLONE_INTO_CGROUP;
 * v1: the cgroup.procs files below), as a child of the plugin.
 *
 * setns(CLONE_NEWPID) only changes where our *children* go, hence one more
 * clone. CLONE_PARENT makes the command the plugin's child, not ours: the
 * plugin then waits for it directly (its real exit status, which nothing in
 * the task can forge) and this helper leaves no process behind. The command
 * is confined by the very code that confines the task (confine_and_exec).
 */
static int exec_main(struct config *c) {
  long r;
  reset_signal_dispositions();
  for (unsigned i = 0; i < c->ncgroup; i++) {
    r = r_write(E2_FD_CGROUP0 + (int)i, "0", 1);
    if (r != 1) die_with_error(E2_ST_CGROUP, r < 0 ? r : -EIO, "write", "cgroup.procs");
  }
  /* All at once through the pidfd (5.8+): the task's pid namespace (for the
   * child), its private /proc and mounts, ipc, and the network namespace pid
   * 1 joined (the host's in host mode). ESRCH: pid 1 has exited. */
  r = r_setns(E2_FDX_TASK, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET);
  if (r < 0) die_with_error(E2_ST_JOIN, r, "setns", 0);
  r_close(E2_FDX_TASK);
  for (unsigned i = 0; i < c->ncgroup; i++) r_close(E2_FD_CGROUP0 + (int)i);

  if ((r = r_mprotect(task_stack, 4096, PROT_NONE)) < 0)
    die_with_error(E2_ST_FORK, r, "mprotect", 0);
  struct e2_clone_args ca;
  memset(&ca, 0, sizeof ca);
  /* exit_signal must be 0 with CLONE_PARENT: the kernel uses ours (SIGCHLD). */
  ca.flags = CLONE_VM | CLONE_VFORK | CLONE_PARENT;
  ca.stack = (uint64_t)(uintptr_t)(task_stack + 4096);
  ca.stack_size = TASK_STACK_SIZE;
  long pid = e2_clone3_raw(&ca, E2_CLONE_ARGS_SIZE_VER0, exec_child, c);
  /* ENOMEM here: the task's pid 1 is exiting and its namespace takes no
   * new processes. */
  if (pid < 0) die_with_error(E2_ST_FORK, pid, "clone3", 0);

  /* The command has execve'd or failed (and written its error record) by
   * now. Either way the launcher must learn its pid to reap it. */
  struct e2_pid_rec rec;
  rec.magic = E2_PID_MAGIC;
  rec.pid = (int32_t)pid;
  r = r_write(E2_FD_ERR, &rec, sizeof rec);
  /* Without the record the launcher cannot tell the command's pid: make
   * sure it does not run unsupervised. */
  if (r != (long)sizeof rec) r_kill((int)pid, SIGKILL);
  return 0;
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
   * The directory is root's and never reachable by the task; O_NOFOLLOW is
   * belt and braces. A failure here cannot be reported anywhere useful; the
   * exit code still carries the result. */
  int fd = (int)r_openat(E2_FD_STATUS, "status.tmp",
                         O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  long w = r_write(fd, buf, n);
  r_close(fd);
  if (w == (long)n) r_renameat2(E2_FD_STATUS, "status.tmp", E2_FD_STATUS, "status", 0);
}

static void signal_group(int task, int sig) {
  /* Before the task's setsid() its group does not exist yet; the signal is
   * still meant for it. */
  if (r_kill(-task, sig) == -ESRCH) r_kill(task, sig);
}

static __attribute__((noreturn)) void supervise(int task, int ctlsig) {
  const uint64_t all = ~(uint64_t)0;
  for (;;) {
    siginfo_t si;
    long sig = SC4(SYS_rt_sigtimedwait, &all, &si, 0, sizeof all);
    if (sig < 0) continue; /* EINTR only: nothing else can fail here */
    if (sig == SIGCHLD) {
      /* Signals coalesce: reap everything that is ready, orphans included. */
      int st, task_status = 0, task_done = 0;
      long p;
      while ((p = r_wait4(-1, &st, WNOHANG)) > 0) {
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
        r_exit(WIFEXITED(task_status) ? WEXITSTATUS(task_status) : 128 + WTERMSIG(task_status));
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
        r_kill(-1, (int)s); /* everything in the namespace but pid 1 */
      continue;
    }
    signal_group(task, (int)sig);
  }
}

int main(int argc, char **argv, char **envp) {
  struct config c;
  long r;

  if (argc > E2_ARG_MAGIC && r_streq(argv[E2_ARG_MAGIC], E2_EXEC_MAGIC)) {
    parse_config(argc, argv, envp, 1, &c);
    return exec_main(&c);
  }
  /* Refuse to run anywhere but as the init of a fresh namespace: as root
   * outside one, the mounts below would change the host. */
  if (r_getpid() != 1) die_with_error(E2_ST_ARGS, EPERM, "not pid 1 of a new namespace", 0);
  parse_config(argc, argv, envp, 0, &c);
  reset_signal_dispositions();

  /* Leave the plugin's session: a terminal's SIGINT/SIGHUP aimed at the
   * plugin must not reach tasks, which outlive the plugin. */
  if ((r = r_setsid()) < 0) die_with_error(E2_ST_SETUP, r, "setsid", 0);

  /* Private propagation first, so the proc mount below never leaks back to
   * the host's mount namespace. */
  if ((r = r_mount(0, "/", 0, MS_REC | MS_PRIVATE, 0)) < 0)
    die_with_error(E2_ST_SETUP, r, "mount(MS_PRIVATE)", "/");
  if ((r = r_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0)) < 0)
    die_with_error(E2_ST_SETUP, r, "mount(proc)", "/proc");

  /* v1 hosts: joining every controller's cgroup before the task starts puts
   * it there from its first instruction. */
  for (unsigned i = 0; i < c.ncgroup; i++) {
    r = r_write(E2_FD_CGROUP0 + (int)i, "0", 1);
    if (r != 1) die_with_error(E2_ST_CGROUP, r < 0 ? r : -EIO, "write", "cgroup.procs");
  }

  if (c.has_netns && (r = r_setns(E2_FD_NETNS, CLONE_NEWNET)) < 0)
    die_with_error(E2_ST_NETNS, r, "setns", 0);

  /* pid 1 must survive a cgroup OOM kill to record the task's status. The
   * inherited value (the plugin's) is what the task gets when the spec
   * leaves oom_score_adj alone. */
  {
    AUTOCLOSE int fd = (int)r_open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
    if (fd < 0) die_with_error(E2_ST_OOM, fd, "open", "/proc/self/oom_score_adj");
    char buf[16];
    long n = r_read(fd, buf, sizeof buf - 1);
    if (n <= 0) die_with_error(E2_ST_OOM, n < 0 ? n : -EIO, "read", "/proc/self/oom_score_adj");
    buf[n] = '\0';
    if (buf[n - 1] == '\n') buf[n - 1] = '\0';
    long long v;
    if (parse_ll(buf, -1000, 1000, &v) < 0)
      die_with_error(E2_ST_OOM, EINVAL, "parse", "/proc/self/oom_score_adj");
    c.inherited_oom = (int)v;
    /* proc ignores the file offset on write. Lowering needs
     * CAP_SYS_RESOURCE, which some container runtimes withhold from root:
     * then pid 1 stays at the plugin's value (best effort; the plugin still
     * learns about an OOM kill from memory.events). */
    r = r_write(fd, "-1000", 5);
    if (r == 5)
      c.pid1_protected = 1;
    else if (r != -EACCES && r != -EPERM)
      die_with_error(E2_ST_OOM, r < 0 ? r : -EIO, "write", "/proc/self/oom_score_adj");
  }

  /* An overflow of the task child's stack must fault, not scribble over our
   * memory, which it shares. */
  if ((r = r_mprotect(task_stack, 4096, PROT_NONE)) < 0)
    die_with_error(E2_ST_FORK, r, "mprotect", 0);
  struct e2_clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = CLONE_VM | CLONE_VFORK;
  ca.exit_signal = SIGCHLD;
  ca.stack = (uint64_t)(uintptr_t)(task_stack + 4096);
  ca.stack_size = TASK_STACK_SIZE;
  long task = e2_clone3_raw(&ca, E2_CLONE_ARGS_SIZE_VER0, task_child, &c);
  if (task < 0) die_with_error(E2_ST_FORK, task, "clone3", 0);

  /* The task has execve'd or died by now. Our copy of the error pipe must
   * go: the addon waits for EOF. The task's stdio must go too, or its
   * readers never see EOF. */
  r_close(E2_FD_ERR);
  r_close(E2_FD_STDOUT);
  r_close(E2_FD_STDERR);
  if (c.has_netns) r_close(E2_FD_NETNS);
  for (unsigned i = 0; i < c.ncgroup; i++) r_close(E2_FD_CGROUP0 + (int)i);
  supervise((int)task, c.ctlsig);
}
