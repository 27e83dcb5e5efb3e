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
 * Statically linked, without libc code (see rawsys.h for why). Since
 * protocol 2 the task environment is this program's envp, never its argv
 * (argv is world-readable in /proc/<pid>/cmdline; see protocol.h); argv
 * only says how many entries to expect. While it runs as root it reads no
 * variable from it, so nothing the job author controls steers root code:
 * the only lookup, PATH (exec_command), happens in the task's own process
 * after confine_and_exec has dropped its credentials and applied Landlock,
 * to find the command as execvp would. The whole envp then goes to the
 * task's execve.
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
#define E2_KEYCTL_JOIN_SESSION_KEYRING 1

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
  int cwd_beneath;     /* anchor the working directory is resolved beneath, or -1 */
  const char *tmp_root; /* launch: "" or the task root whose tmp/ goes over /tmp */
  const char *keep[2];  /* launch: paths below /tmp to bind back, or "" */
  char **masks;        /* launch: paths hidden under an empty read-only tmpfs */
  unsigned nmask;
  const char *volroot; /* launch: the task root volume destinations lie below */
  char **vols;         /* launch: nvol triples: flags, host path, destination */
  unsigned nvol;
  char **rules; /* nrules pairs: "<letters>[?][+][@k]", path (protocol.h) */
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

static const char *below(const char *path, const char *dir);
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
  NUM(E2_ARG_NUNVEIL, 0, E2_MAX_RULES, "unveil count");
  c->nrules = (unsigned)v;
  NUM(E2_ARG_NARGV, 1, 10000000, "argv count");
  long long nargv = v;
  NUM(E2_ARG_NENV, 0, 10000000, "env count");
  long long nenv = v;
  NUM(E2_ARG_SCOPE, 0, 1, "scope");
  c->scope_abstract = (int)v;
  caps_parse(argv, c);
  c->cwd_beneath = -1;
  if (argv[E2_ARG_CWD_BENEATH][0] != '\0') {
    NUM(E2_ARG_CWD_BENEATH, 0, E2_MAX_ANCHORS - 1, "cwd anchor");
    c->cwd_beneath = (int)v;
  }
  /* Exec sessions join the task's mount namespace as it is. */
  c->tmp_root = argv[E2_ARG_TMP];
  if (c->tmp_root[0] && (exec_mode || c->tmp_root[0] != '/'))
    die_with_error(E2_ST_ARGS, EINVAL, "tmp", c->tmp_root);
  for (int k = 0; k < 2; k++) {
    const char *keep = argv[E2_ARG_KEEP0 + k];
    if (keep[0] && (!c->tmp_root[0] || memcmp(keep, "/tmp/", 5) != 0 || keep[5] == '\0'))
      die_with_error(E2_ST_ARGS, EINVAL, "keep path", keep);
    c->keep[k] = keep;
  }
  NUM(E2_ARG_NMASK, 0, exec_mode ? 0 : 16, "mask count");
  c->nmask = (unsigned)v;
  c->volroot = argv[E2_ARG_VOLROOT];
  NUM(E2_ARG_NVOL, 0, exec_mode || !c->volroot[0] ? 0 : E2_MAX_VOLUMES, "volume count");
  c->nvol = (unsigned)v;
  if (c->volroot[0] && c->volroot[0] != '/') die_with_error(E2_ST_ARGS, EINVAL, "volume root", c->volroot);
  if ((long long)argc != E2_ARG_FIXED + (long long)c->nmask + 3LL * c->nvol + 2LL * c->nrules + nargv)
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
  c->masks = &argv[E2_ARG_FIXED];
  c->vols = &argv[E2_ARG_FIXED + c->nmask];
  c->rules = &argv[E2_ARG_FIXED + c->nmask + 3 * c->nvol];
  c->argv = &argv[E2_ARG_FIXED + (int)c->nmask + 3 * (int)c->nvol + 2 * (int)c->nrules];
  c->envp = envp;
  for (unsigned m = 0; m < c->nmask; m++)
    if (c->masks[m][0] != '/') die_with_error(E2_ST_ARGS, EINVAL, "mask path", c->masks[m]);
  for (unsigned i = 0; i < c->nvol; i++) {
    const char *f = c->vols[3 * i];
    if (!((f[0] == 'r' || f[0] == 'w') && (f[1] == 'p' || f[1] == 's') && f[2] == '\0') ||
        c->vols[3 * i + 1][0] != '/' || !below(c->vols[3 * i + 2], c->volroot))
      die_with_error(E2_ST_ARGS, EINVAL, "volume", c->vols[3 * i + 2]);
  }
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

/* No MAKE_CHAR / MAKE_BLOCK: those stay handled and are never granted, so
 * no task, root included, creates a device node anywhere. */
#define FS_CREATE_RIGHTS                                                    \
  (LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_DIR |              \
   LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_MAKE_SOCK |             \
   LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_REMOVE_FILE |          \
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
      default: /* '?', '+', '@k': resolution markers, not rights */
        break;
    }
  }
  return a;
}

/* ---- resolving paths the task can modify ------------------------------- */

/* Anchors of the ruleset being built: directories the driver trusts (or
 * that were themselves resolved beneath one), kept open so that everything
 * below them is resolved from the fd and never through a planted symlink. */
static int anchor_fd[E2_MAX_ANCHORS];
static const char *anchor_path[E2_MAX_ANCHORS];
static unsigned nanchors;

/* `path` relative to the anchor directory `dir`, or 0 when it is not below. */
static const char *below(const char *path, const char *dir) {
  size_t n = r_strlen(dir);
  if (n == 1) return path[0] == '/' && path[1] ? path + 1 : 0; /* anchor "/" */
  if (memcmp(path, dir, n) != 0 || path[n] != '/' || path[n + 1] == '\0') return 0;
  return path + n + 1;
}

/* `len` bytes of `path` name a symlink met where none may be followed. */
static __attribute__((noreturn)) void die_planted(uint32_t stage, const char *path, size_t len) {
  char op[32];
  size_t n = r_strlen(E2_SYMLINK_OP);
  memcpy(op, E2_SYMLINK_OP, n);
  fmt_int(op + n, (long)len);
  die_with_error(stage, -ELOOP, op, path);
}

/* openat2 refused with ELOOP: name the symlink. Walks the components below
 * the anchor (without following anything) and reports the first symlink as
 * op "openat2:<n>", n = the length of its path within `path`. */
static __attribute__((noreturn)) void die_symlink(uint32_t stage, unsigned k, const char *path,
                                                  const char *rel) {
  char prefix[PATH_BUF];
  size_t off = (size_t)(rel - path);
  for (size_t i = 0;; i++) {
    if (rel[i] == '/' || rel[i] == '\0') {
      if (i >= sizeof prefix) break;
      memcpy(prefix, rel, i);
      prefix[i] = '\0';
      struct statx stx;
      if (r_statx(anchor_fd[k], prefix, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &stx) == 0 &&
          (stx.stx_mode & S_IFMT) == S_IFLNK)
        die_planted(stage, path, off + i);
    }
    if (rel[i] == '\0') break;
  }
  die_with_error(stage, -ELOOP, "openat2", path); /* replaced meanwhile */
}

/* Opens `path` (O_PATH | extra) beneath anchor k. Returns the fd, or -ENOENT
 * when the anchor itself was optional and absent. */
static long open_beneath(uint32_t stage, unsigned k, const char *path, uint64_t extra) {
  const char *rel = below(path, anchor_path[k]);
  if (!rel) die_with_error(E2_ST_ARGS, EINVAL, "path is not below its anchor", path);
  if (anchor_fd[k] < 0) return -ENOENT;
  struct e2_open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_CLOEXEC | extra;
  how.resolve = E2_RESOLVE_SAFE;
  long fd = r_openat2(anchor_fd[k], rel, &how);
  if (fd == -ELOOP) die_symlink(stage, k, path, rel);
  return fd;
}

/* "<letters>[?][+][@k]" (protocol.h). */
struct rule_mode {
  int optional;
  int anchor;
  int beneath; /* -1: opened by its absolute path */
};

static struct rule_mode parse_mode(const char *mode, const char *path) {
  struct rule_mode m = {0, 0, -1};
  const char *p = mode;
  while (*p == 'r' || *p == 'w' || *p == 'x' || *p == 'c') p++;
  if (*p == '?') m.optional = 1, p++;
  if (*p == '+') m.anchor = 1, p++;
  if (*p == '@') {
    long long v;
    if (parse_ll(p + 1, 0, (long long)nanchors - 1, &v) < 0)
      die_with_error(E2_ST_ARGS, EINVAL, "unveil anchor", path);
    m.beneath = (int)v;
  } else if (*p) {
    die_with_error(E2_ST_ARGS, EINVAL, "unveil mode", mode);
  }
  return m;
}

static void close_anchors(void) {
  for (unsigned k = 0; k < nanchors; k++)
    if (anchor_fd[k] >= 0) r_close(anchor_fd[k]);
  nanchors = 0;
}

/* Opens every unveil path as root (before the task drops privileges), changes
 * to the working directory and returns the ruleset fd. Runs in the task's
 * mount namespace after its /proc and /tmp are in place. Paths below an
 * anchor are resolved from the anchor's fd without following any symlink:
 * the driver anchors everything the task (or another task of its allocation)
 * can modify, so what a rule grants is what the driver meant, whatever the
 * task planted since the last start. */
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

  nanchors = 0;
  for (unsigned i = 0; i < c->nrules; i++) {
    const char *mode = c->rules[2 * i], *path = c->rules[2 * i + 1];
    struct rule_mode m = parse_mode(mode, path);
    if (m.anchor && nanchors == E2_MAX_ANCHORS) die_with_error(E2_ST_ARGS, E2BIG, "unveil anchors", path);
    long fd = m.beneath >= 0 ? open_beneath(E2_ST_UNVEIL_PATH, (unsigned)m.beneath, path, 0)
                             : r_open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
      if (!(m.optional && (fd == -ENOENT || fd == -ENOTDIR)))
        die_with_error(E2_ST_UNVEIL_PATH, fd, "open", path);
      if (m.anchor) {
        /* rules below an absent optional anchor are absent too */
        anchor_fd[nanchors] = -1;
        anchor_path[nanchors++] = path;
      }
      continue;
    }
    struct statx stx;
    long r = r_statx((int)fd, "", AT_EMPTY_PATH, STATX_TYPE, &stx);
    if (r < 0) die_with_error(E2_ST_UNVEIL_PATH, r, "statx", path);
    int is_dir = (stx.stx_mode & S_IFMT) == S_IFDIR;
    struct e2_path_beneath_attr pb;
    pb.allowed_access = mode_access(mode, is_dir) & attr.handled_access_fs &
                        (is_dir ? ~(uint64_t)0 : (uint64_t)FS_FILE_RIGHTS);
    pb.parent_fd = (int)fd;
    /* An empty grant (an anchor only, or "c" on a file) is a valid no-op for
     * us, but the kernel answers ENOMSG to it. */
    if (pb.allowed_access != 0) {
      r = SC4(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
      /* EBADFD: the path leads to an object on an internal filesystem
       * (pipefs, sockfs: e.g. /dev/stdin when stdin is a pipe, as in an exec
       * session). Landlock never restricts those: nothing to grant. */
      if (r < 0 && r != -EBADFD) die_with_error(E2_ST_LANDLOCK, r, "landlock_add_rule", path);
    }
    if (m.anchor) {
      /* A file anchor (a "c" rule on a file) holds nothing below it: what
       * is resolved beneath it fails with ENOTDIR like any path below a file. */
      anchor_fd[nanchors] = (int)fd;
      anchor_path[nanchors++] = path;
    } else {
      r_close((int)fd);
    }
  }

  long r;
  if (c->cwd_beneath >= 0) {
    if ((unsigned)c->cwd_beneath >= nanchors) die_with_error(E2_ST_ARGS, EINVAL, "cwd anchor", c->cwd);
    unsigned k = (unsigned)c->cwd_beneath;
    if (r_streq(c->cwd, anchor_path[k])) {
      r = anchor_fd[k] < 0 ? -ENOENT : r_fchdir(anchor_fd[k]);
    } else {
      AUTOCLOSE int fd = (int)open_beneath(E2_ST_WORKDIR, k, c->cwd, O_DIRECTORY);
      r = fd < 0 ? fd : r_fchdir(fd);
    }
  } else {
    r = r_chdir(c->cwd);
  }
  if (r < 0) die_with_error(E2_ST_WORKDIR, r, "chdir", c->cwd);
  close_anchors();
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
 * (built here, as root), working directory, session keyring, capability
 * sets, credentials, no_new_privs, Landlock, signal mask, PATH search.
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

  int rs = build_ruleset(c);

  /* A session keyring of its own, joined as root so it counts against
   * root's key quota, not the task user's (the task possesses it all the
   * same): never the one the plugin inherited from the agent, which may
   * hold the agent's keys, and never one shared with another task. */
  if ((r = r_keyctl(E2_KEYCTL_JOIN_SESSION_KEYRING, 0)) < 0 && r != -ENOSYS)
    die_with_error(E2_ST_SETUP, r, "keyctl(JOIN_SESSION_KEYRING)", 0);

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

static void fd_path(char *buf, int fd) {
  memcpy(buf, "/proc/self/fd/", 14);
  fmt_int(buf + 14, fd);
}

/* mkdir -p of `rel` below the directory fd `dir`, one component at a time and
 * never through a symlink; returns an O_PATH fd of the last directory. For
 * mount points inside the task's own tmp dir, which a task may have filled
 * with anything in an earlier run. */
static int make_dirs_beneath(int dir, const char *rel, const char *what) {
  char comp[256];
  int cur = dir;
  size_t skip = (size_t)(rel - what);
  for (const char *p = rel; *p;) {
    size_t n = r_strcspn1(p, '/');
    if (n == 0 || n >= sizeof comp) die_with_error(E2_ST_SETUP, EINVAL, "mkdir", what);
    memcpy(comp, p, n);
    comp[n] = '\0';
    long r = r_mkdirat(cur, comp, 0755);
    if (r < 0 && r != -EEXIST) die_with_error(E2_ST_SETUP, r, "mkdir", what);
    struct e2_open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = E2_RESOLVE_SAFE;
    long next = r_openat2(cur, comp, &how);
    if (next == -ELOOP) die_planted(E2_ST_SETUP, what, skip + (size_t)(p - rel) + n);
    if (next < 0) die_with_error(E2_ST_SETUP, next, "open", what);
    if (cur != dir) r_close(cur);
    cur = (int)next;
    p += n;
    while (*p == '/') p++;
  }
  return cur;
}

/*
 * The task's mount namespace, before anything of the task runs:
 * - slave propagation: host mounts made later (autofs, a late NFS mount)
 *   reach the task; nothing mounted here ever reaches the host;
 * - a fresh /proc for the new pid namespace;
 * - nosuid,nodev on every mount but /dev: a device node the task finds or
 *   makes anywhere else cannot be opened;
 * - the plugin's own directories (its socket, its state) hidden under an
 *   empty read-only tmpfs, so not even a root task can connect to the
 *   plugin or see what it records;
 * - the task's own tmp dir over /tmp, with what must stay reachable below
 *   /tmp (a dev agent's data dir) bound back at its path.
 */
static void setup_tmp(const struct config *c);
static void setup_volumes(const struct config *c);

static void setup_mounts(const struct config *c) {
  long r;
  if ((r = r_mount(0, "/", 0, MS_REC | MS_SLAVE, 0)) < 0)
    die_with_error(E2_ST_SETUP, r, "mount(MS_SLAVE)", "/");
  if ((r = r_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0)) < 0)
    die_with_error(E2_ST_SETUP, r, "mount(proc)", "/proc");

  struct e2_mount_attr ma;
  memset(&ma, 0, sizeof ma);
  ma.attr_set = E2_MOUNT_ATTR_NOSUID | E2_MOUNT_ATTR_NODEV;
  if ((r = r_mount_setattr(AT_FDCWD, "/", E2_AT_RECURSIVE, &ma)) < 0)
    die_with_error(E2_ST_SETUP, r, "mount_setattr(nosuid,nodev)", "/");
  memset(&ma, 0, sizeof ma);
  ma.attr_clr = E2_MOUNT_ATTR_NODEV;
  r = r_mount_setattr(AT_FDCWD, "/dev", E2_AT_RECURSIVE, &ma);
  if (r == -EINVAL) {
    /* /dev is no mount of its own here: make it one, then clear nodev */
    if ((r = r_mount("/dev", "/dev", 0, MS_BIND | MS_REC, 0)) == 0)
      r = r_mount_setattr(AT_FDCWD, "/dev", E2_AT_RECURSIVE, &ma);
  }
  if (r < 0) die_with_error(E2_ST_SETUP, r, "mount_setattr(dev)", "/dev");

  for (unsigned m = 0; m < c->nmask; m++) {
    r = r_mount("tmpfs", c->masks[m], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "size=4k,nr_inodes=1,mode=000");
    if (r < 0 && r != -ENOENT) die_with_error(E2_ST_SETUP, r, "mount(mask)", c->masks[m]);
  }
  setup_tmp(c);
  setup_volumes(c);
}

/* The task's own tmp dir over /tmp, and what must stay reachable below it. */
static void setup_tmp(const struct config *c) {
  long r;
  if (!c->tmp_root[0]) return;
  /* Opened here, in this namespace: a bind mount's source must be a mount
   * of the caller's own namespace, so the worker's fds would not do. The
   * root is the host's (Nomad's); its tmp/ belongs to the task and is
   * resolved without following a symlink. */
  AUTOCLOSE int root = (int)r_open(c->tmp_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die_with_error(E2_ST_SETUP, root, "open", c->tmp_root);
  AUTOCLOSE int keep0 = -1;
  AUTOCLOSE int keep1 = -1;
  int *keepfd[2] = {&keep0, &keep1};
  for (int k = 0; k < 2; k++) {
    if (!c->keep[k][0]) continue;
    *keepfd[k] = (int)r_open(c->keep[k], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*keepfd[k] < 0) die_with_error(E2_ST_SETUP, *keepfd[k], "open", c->keep[k]);
  }
  struct e2_open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = E2_RESOLVE_SAFE;
  AUTOCLOSE int src_fd = (int)r_openat2(root, "tmp", &how);
  if (src_fd < 0) {
    char tmp_dir[PATH_BUF];
    size_t n = r_strlen(c->tmp_root);
    if (n + 5 > sizeof tmp_dir) die_with_error(E2_ST_SETUP, ENAMETOOLONG, "task tmp", c->tmp_root);
    memcpy(tmp_dir, c->tmp_root, n);
    memcpy(tmp_dir + n, "/tmp", 5);
    if (src_fd == -ELOOP) die_planted(E2_ST_SETUP, tmp_dir, n + 4);
    die_with_error(E2_ST_SETUP, src_fd, "open(task tmp)", tmp_dir);
  }
  char src[40], dst[40];
  fd_path(src, src_fd);
  if ((r = r_mount(src, "/tmp", 0, MS_BIND, 0)) < 0)
    die_with_error(E2_ST_SETUP, r, "mount(bind task tmp)", "/tmp");
  if (!c->keep[0][0] && !c->keep[1][0]) return;
  /* Through the new mount: a mount point made via E2_FD_TMP itself would
   * sit on the task dir's original path, not below /tmp. */
  AUTOCLOSE int tmp = (int)r_open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (tmp < 0) die_with_error(E2_ST_SETUP, tmp, "open", "/tmp");
  for (int k = 0; k < 2; k++) {
    if (!c->keep[k][0]) continue;
    AUTOCLOSE int leaf = make_dirs_beneath(tmp, c->keep[k] + 5, c->keep[k]);
    fd_path(src, *keepfd[k]);
    fd_path(dst, leaf);
    if ((r = r_mount(src, dst, 0, MS_BIND | MS_REC, 0)) < 0)
      die_with_error(E2_ST_SETUP, r, "mount(bind)", c->keep[k]);
  }
}

/*
 * Volumes: each host path bound at its destination below the task root
 * (made if missing, one component at a time, never through a symlink),
 * recursively, read-only when asked, private unless the job wants host
 * mounts below it to propagate in. In this namespace only: the host's mount
 * table never shows them.
 */
static void setup_volumes(const struct config *c) {
  if (c->nvol == 0) return;
  long r;
  /* By path, now: in a -dev layout the task root is the copy bound back
   * over the task's /tmp, the one the task sees. */
  AUTOCLOSE int root = (int)r_open(c->volroot, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die_with_error(E2_ST_SETUP, root, "open", c->volroot);
  for (unsigned i = 0; i < c->nvol; i++) {
    const char *flags = c->vols[3 * i], *host = c->vols[3 * i + 1], *dest = c->vols[3 * i + 2];
    AUTOCLOSE int src = (int)r_open(host, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (src < 0) die_with_error(E2_ST_VOLUME, src, "open", host);
    AUTOCLOSE int leaf = make_dirs_beneath(root, below(dest, c->volroot), dest);
    char s[40], d[40];
    fd_path(s, src);
    fd_path(d, leaf);
    if ((r = r_mount(s, d, 0, MS_BIND | MS_REC, 0)) < 0) die_with_error(E2_ST_VOLUME, r, "mount(bind)", dest);
    /* The new mount, through its destination (the leaf fd is the dir below it). */
    struct e2_open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = E2_RESOLVE_SAFE;
    AUTOCLOSE int mnt = (int)r_openat2(root, below(dest, c->volroot), &how);
    if (mnt < 0) die_with_error(E2_ST_VOLUME, mnt, "open", dest);
    struct e2_mount_attr ma;
    memset(&ma, 0, sizeof ma);
    if (flags[0] == 'r') ma.attr_set = E2_MOUNT_ATTR_RDONLY;
    if (flags[1] == 'p') ma.propagation = MS_PRIVATE;
    if ((ma.attr_set || ma.propagation) &&
        (r = r_mount_setattr(mnt, "", AT_EMPTY_PATH | E2_AT_RECURSIVE, &ma)) < 0)
      die_with_error(E2_ST_VOLUME, r, "mount_setattr", dest);
  }
}

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

  setup_mounts(&c);

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

  /* Not dumpable: no process of the task, a root one included, may open
   * pid 1's /proc entries (fd/, environ, mem) or ptrace it. The task
   * becomes dumpable again at its own execve. */
  if ((r = r_prctl(PR_SET_DUMPABLE, 0)) < 0) die_with_error(E2_ST_SETUP, r, "prctl(PR_SET_DUMPABLE)", 0);

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
