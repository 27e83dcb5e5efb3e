/*
 * The hot path of a launch: clone3 into fresh pid/ipc/mount namespaces (and a
 * cgroup), shuffle descriptors, execve exec2-init. No fork of the Node process.
 * Exec sessions use the same path without new namespaces.
 */
#ifndef EXEC2_SPAWN_H
#define EXEC2_SPAWN_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "protocol.h"

/* Destination slots E2_FD_ERR .. E2_FD_CGROUP0 + max cgroups - 1. */
#define E2_SPAWN_MAX_SLOTS E2_MAX_SLOTS

struct e2_spawn_req {
  const char *init_path;
  char *const *argv; /* NULL terminated, prepared by the caller */
  char *const *envp; /* NULL terminated */
  /* src[i] becomes descriptor E2_FD_ERR + i in exec2-init; -1 leaves that
   * number closed. src[0] (the error pipe) must be valid. */
  int src[E2_SPAWN_MAX_SLOTS];
  int nslots;
  /* Lowest descriptor number above every source and destination: temporary
   * copies go there so that dup2 never clobbers a source still needed. */
  int watermark;
  int cgroup_fd; /* -1: no CLONE_INTO_CGROUP */
  /* 1: new pid, ipc and mount namespaces (a task launch); 0: none (exec
   * mode joins a task's namespaces instead) */
  int new_namespaces;
};

struct e2_spawn_res {
  pid_t pid;
  int pidfd;
  int64_t t_clone_ns; /* CLOCK_MONOTONIC just before clone3 */
};

/* Returns 0, or -errno of clone3 (nothing was created then). When it returns
 * 0 the child has already execve'd exec2-init or exited (CLONE_VFORK); errors
 * of the child arrive on the error pipe. */
int e2_spawn(const struct e2_spawn_req *req, struct e2_spawn_res *res);

int64_t e2_monotonic_ns(void);

#ifdef __cplusplus
}
#endif

#endif
