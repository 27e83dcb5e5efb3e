/*
 * The few pieces of a C runtime that exec2-init needs, on raw syscalls.
 *
 * Why not glibc: a static glibc binary runs init_cpu_features() (dozens of
 * CPUID instructions) and IRELATIVE/ifunc setup before main(). Under
 * virtualisation every CPUID is a VM exit; on the development VM that is
 * ~6.7 us each and ~540 us per exec -- more than the whole launch budget.
 * exec2-init runs once per task start, on the hot path, so it carries its own
 * entry point and syscall stubs instead. Only glibc's *headers* are used, for
 * constants and kernel-identical types (siginfo_t, W* macros); none of its
 * functions are linked.
 *
 * Every wrapper returns the raw kernel result: >= 0 on success, -errno on
 * failure. There is no errno variable.
 */
#ifndef EXEC2_RAWSYS_H
#define EXEC2_RAWSYS_H

#include <stddef.h>
#include <stdint.h>

#include "compat.h"

#if defined(__x86_64__)
static inline long sc6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
static inline long sc6(long n, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory", "cc");
  return x0;
}
#endif

#define SC0(n) sc6((n), 0, 0, 0, 0, 0, 0)
#define SC1(n, a) sc6((n), (long)(a), 0, 0, 0, 0, 0)
#define SC2(n, a, b) sc6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define SC3(n, a, b, c) sc6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define SC4(n, a, b, c, d) sc6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define SC5(n, a, b, c, d, e) \
  sc6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

#ifndef AT_FDCWD
#define AT_FDCWD (-100)
#endif

/* aarch64 has only the *at / dup3 / wait4 / clone flavours; use those
 * everywhere so both architectures run the same code. */
static inline long r_openat(int dfd, const char *p, int flags, int mode) {
  return SC4(SYS_openat, dfd, p, flags, mode);
}
static inline long r_open(const char *p, int flags) { return r_openat(AT_FDCWD, p, flags, 0); }
static inline long r_openat2(int dfd, const char *p, const struct e2_open_how *how) {
  return SC4(SYS_openat2, dfd, p, how, sizeof *how);
}
static inline long r_mkdirat(int dfd, const char *p, int mode) { return SC3(SYS_mkdirat, dfd, p, mode); }
static inline long r_fchdir(int fd) { return SC1(SYS_fchdir, fd); }
static inline long r_mount_setattr(int dfd, const char *p, unsigned flags, struct e2_mount_attr *a) {
  return SC5(SYS_mount_setattr, dfd, p, flags, a, sizeof *a);
}
static inline long r_keyctl(int op, long a) { return SC5(SYS_keyctl, op, a, 0, 0, 0); }
static inline long r_close(int fd) { return SC1(SYS_close, fd); }
static inline long r_read(int fd, void *b, size_t n) { return SC3(SYS_read, fd, b, n); }
static inline long r_write(int fd, const void *b, size_t n) { return SC3(SYS_write, fd, b, n); }
static inline long r_dup3(int o, int n, int flags) { return SC3(SYS_dup3, o, n, flags); }
static inline long r_fcntl(int fd, int cmd, long arg) { return SC3(SYS_fcntl, fd, cmd, arg); }
static inline long r_close_range(unsigned a, unsigned b, unsigned flags) {
  return SC3(SYS_close_range, a, b, flags);
}
static inline long r_getpid(void) { return SC0(SYS_getpid); }
static inline long r_setsid(void) { return SC0(SYS_setsid); }
static inline long r_chdir(const char *p) { return SC1(SYS_chdir, p); }
static inline long r_mount(const char *src, const char *dst, const char *type,
                           unsigned long flags, const void *data) {
  return SC5(SYS_mount, src, dst, type, flags, data);
}
static inline long r_setns(int fd, int type) { return SC2(SYS_setns, fd, type); }
static inline long r_setgroups(size_t n, const uint32_t *g) { return SC2(SYS_setgroups, n, g); }
static inline long r_setgid(uint32_t g) { return SC1(SYS_setgid, g); }
static inline long r_setuid(uint32_t u) { return SC1(SYS_setuid, u); }
static inline long r_getresuid(uint32_t *r, uint32_t *e, uint32_t *s) {
  return SC3(SYS_getresuid, r, e, s);
}
static inline long r_getresgid(uint32_t *r, uint32_t *e, uint32_t *s) {
  return SC3(SYS_getresgid, r, e, s);
}
static inline long r_prctl(int op, unsigned long a) { return SC5(SYS_prctl, op, a, 0, 0, 0); }
static inline long r_execve(const char *p, char *const *argv, char *const *envp) {
  return SC3(SYS_execve, p, argv, envp);
}
static inline long r_kill(int pid, int sig) { return SC2(SYS_kill, pid, sig); }
static inline long r_wait4(int pid, int *st, int opts) { return SC4(SYS_wait4, pid, st, opts, 0); }
static inline long r_renameat2(int od, const char *o, int nd, const char *n, unsigned flags) {
  return SC5(SYS_renameat2, od, o, nd, n, flags);
}
static inline long r_statx(int dfd, const char *p, int flags, unsigned mask, void *buf) {
  return SC5(SYS_statx, dfd, p, flags, mask, buf);
}
static inline long r_ioctl(int fd, unsigned long req, long arg) { return SC3(SYS_ioctl, fd, req, arg); }
static inline long r_mprotect(void *p, size_t n, int prot) { return SC3(SYS_mprotect, p, n, prot); }
static inline __attribute__((noreturn)) void r_exit(int code) {
  for (;;) SC1(SYS_exit_group, code);
}

/* ---- string helpers (no libc) ---------------------------------------- */

static inline size_t r_strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}
static inline int r_streq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}
static inline const char *r_strchr(const char *s, int c) {
  for (; *s; s++)
    if (*s == (char)c) return s;
  return 0;
}
static inline size_t r_strcspn1(const char *s, char c) {
  size_t n = 0;
  while (s[n] && s[n] != c) n++;
  return n;
}

#endif
