/*
 * Kernel ABI constants that older userspace headers lack.
 *
 * The build must work with Debian 12's linux-libc-dev (6.1: Landlock ABI 2,
 * no TRUNCATE/IOCTL_DEV/scopes), while the code must use whatever the running
 * kernel offers. Every value here is fixed kernel ABI, so defining it locally
 * is safe; the running kernel tells us at runtime which of them it accepts.
 * Shared by the addon (C++) and the static init helper (C).
 */
#ifndef EXEC2_COMPAT_H
#define EXEC2_COMPAT_H

#include <stdint.h>
#include <linux/sched.h>
#include <linux/landlock.h>
#include <sys/syscall.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "exec2 native code supports x86_64 and aarch64 only"
#endif

/* Syscall numbers: these come from the unified table and are identical on
 * x86_64 and aarch64. */
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

/* openat2(2): struct open_how and its resolve flags (5.6). */
struct e2_open_how {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};
#define E2_RESOLVE_NO_MAGICLINKS 0x02
#define E2_RESOLVE_NO_SYMLINKS 0x04
#define E2_RESOLVE_BENEATH 0x08
/* What "beneath a trusted directory" means everywhere in exec2: no symlink
 * (and no /proc magic link) in any component, no escape by "..". */
#define E2_RESOLVE_SAFE (E2_RESOLVE_BENEATH | E2_RESOLVE_NO_SYMLINKS | E2_RESOLVE_NO_MAGICLINKS)

/* mount_setattr(2) (5.12). */
struct e2_mount_attr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};
#define E2_MOUNT_ATTR_RDONLY 0x00000001
#define E2_MOUNT_ATTR_NOSUID 0x00000002
#define E2_MOUNT_ATTR_NODEV 0x00000004
#define E2_AT_RECURSIVE 0x8000

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Our own copy of struct clone_args (VER2, 88 bytes) so the layout does not
 * depend on how recent the installed header is. */
struct e2_clone_args {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};
#define E2_CLONE_ARGS_SIZE_VER0 64
#define E2_CLONE_ARGS_SIZE_VER2 88

/* Landlock. ABI 1 (5.13) has bits 0..12; the rest arrived later. */
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13) /* ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1) /* ABI 6 */
#endif

/* Full-size ruleset attribute (ABI 6 layout). Older kernels accept a shorter
 * size, so callers pass only as many bytes as they use. */
struct e2_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net; /* ABI 4; never used: network is not our job */
  uint64_t scoped;             /* ABI 6 */
};

struct e2_path_beneath_attr {
  uint64_t allowed_access;
  int32_t parent_fd;
} __attribute__((packed));

#endif
