/*
 * clone3 + execve of exec2-init, without forking the (large, multi-threaded)
 * Node process: CLONE_VM|CLONE_VFORK shares the address space, so the cost
 * does not grow with the heap, and the calling thread sleeps until the child
 * has execve'd. The child runs on its own small stack and may only make
 * async-signal-safe calls: it shares memory (and TLS) with a live
 * multi-threaded process whose locks may be held by other threads.
 */
#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "protocol.h"

#include "clone3.h"

int64_t e2_monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- child side (async-signal-safe only) ------------------------------ */

static __attribute__((noreturn)) void child_fail(int fd, uint32_t stage,
                                                 int err, const char *op,
                                                 const char *path) {
  e2_report(fd, stage, err, op, path);
  _exit(127);
}

static int spawn_child(void *arg) {
  const struct e2_spawn_req *r = (const struct e2_spawn_req *)arg;
  int tmp[E2_SPAWN_MAX_SLOTS];
  int errfd = r->src[0];
  int i;

  /* Copy every source above the watermark first: a source may sit on a
   * destination number of another slot (e.g. stdout is fd 3). */
  int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (nul < 0) child_fail(errfd, E2_ST_SPAWN_FDS, errno, "open", "/dev/null");
  int nulhi = fcntl(nul, F_DUPFD_CLOEXEC, r->watermark);
  if (nulhi < 0) child_fail(errfd, E2_ST_SPAWN_FDS, errno, "fcntl(F_DUPFD_CLOEXEC)", NULL);
  for (i = 0; i < r->nslots; i++) {
    tmp[i] = -1;
    if (r->src[i] < 0) continue;
    tmp[i] = fcntl(r->src[i], F_DUPFD_CLOEXEC, r->watermark);
    if (tmp[i] < 0) child_fail(errfd, E2_ST_SPAWN_FDS, errno, "fcntl(F_DUPFD_CLOEXEC)", NULL);
  }
  errfd = tmp[0];

  /* dup2 clears FD_CLOEXEC on the destination, which is what we want. */
  for (i = 0; i < 3; i++)
    if (dup2(nulhi, i) < 0) child_fail(errfd, E2_ST_SPAWN_FDS, errno, "dup2", NULL);
  for (i = 0; i < r->nslots; i++) {
    if (tmp[i] >= 0) {
      if (dup2(tmp[i], E2_FD_ERR + i) < 0)
        child_fail(errfd, E2_ST_SPAWN_FDS, errno, "dup2", NULL);
    } else {
      /* Unused slot: make sure nothing of Node's survives under that number. */
      close(E2_FD_ERR + i);
    }
  }
  errfd = E2_FD_ERR;
  /* Everything else (Node's descriptors, temporaries) must not reach pid 1:
   * most of Node's fds are CLOEXEC, but not all, and other threads may be
   * creating descriptors right now. */
  if (syscall(SYS_close_range, (unsigned)(E2_FD_ERR + r->nslots), ~0U, 0) < 0)
    child_fail(errfd, E2_ST_SPAWN_FDS, errno, "close_range", NULL);

  execve(r->init_path, r->argv, r->envp);
  child_fail(errfd, E2_ST_INIT_EXEC, errno, "execve", r->init_path);
}

/* ---- parent side ------------------------------------------------------ */

/* One child stack per calling thread, kept for the life of the thread:
 * piscina workers live long, and an mmap/munmap pair per launch is waste. */
#define E2_STACK_SIZE (64 * 1024)
#define E2_GUARD_SIZE (4096)

static pthread_key_t stack_key;
static pthread_once_t stack_once = PTHREAD_ONCE_INIT;
static __thread void *thread_stack;

static void stack_free(void *p) {
  if (p) munmap(p, E2_STACK_SIZE + E2_GUARD_SIZE);
}
static void stack_key_init(void) {
  /* If this fails the stacks of exiting threads leak; harmless. */
  (void)pthread_key_create(&stack_key, stack_free);
}

static void *get_stack(void) {
  if (thread_stack) return thread_stack;
  pthread_once(&stack_once, stack_key_init);
  void *p = mmap(NULL, E2_STACK_SIZE + E2_GUARD_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) return NULL;
  /* The stack grows down into this page: an overflow faults instead of
   * silently corrupting the Node heap we share. */
  if (mprotect(p, E2_GUARD_SIZE, PROT_NONE) < 0) {
    munmap(p, E2_STACK_SIZE + E2_GUARD_SIZE);
    return NULL;
  }
  thread_stack = p;
  (void)pthread_setspecific(stack_key, p);
  return p;
}

int e2_spawn(const struct e2_spawn_req *req, struct e2_spawn_res *res) {
  if (req->nslots < 1 || req->nslots > E2_SPAWN_MAX_SLOTS || req->src[0] < 0)
    return -EINVAL;
  char *stack = (char *)get_stack();
  if (!stack) return -ENOMEM;

  int pidfd = -1;
  struct e2_clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD;
  if (req->new_namespaces) ca.flags |= CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNS;
  ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
  ca.exit_signal = SIGCHLD;
  ca.stack = (uint64_t)(uintptr_t)(stack + E2_GUARD_SIZE);
  ca.stack_size = E2_STACK_SIZE;
  size_t size = E2_CLONE_ARGS_SIZE_VER0;
  if (req->cgroup_fd >= 0) {
    ca.flags |= CLONE_INTO_CGROUP;
    ca.cgroup = (uint64_t)req->cgroup_fd;
    size = E2_CLONE_ARGS_SIZE_VER2;
  }

  /* Block everything, including the two signals glibc reserves (hence the
   * raw syscall): a handler of Node running in the child would run on
   * shared memory, and exec2-init relies on starting with all signals
   * blocked so that none is lost before it reaches sigwaitinfo. */
  uint64_t all = ~(uint64_t)0, old = 0;
  if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all) < 0)
    return -errno;
  res->t_clone_ns = e2_monotonic_ns();
  long r = e2_clone3_raw(&ca, size, spawn_child, (void *)req);
  (void)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof old);
  if (r < 0) return (int)r; /* the trampoline returns -errno, errno untouched */
  res->pid = (pid_t)r;
  res->pidfd = pidfd;
  return 0;
}
