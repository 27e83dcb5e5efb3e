/* Baseline 2's shim, modelled on the official driver's `exec2-shim` (spec
 * §7.5), in C instead of Go:
 *   - ignores every catchable signal;
 *   - opens the two log FIFOs write-only without following symlinks (41);
 *   - applies Landlock in mandatory mode (1) to the given mode:path rules
 *     (split at the last ':', every path must exist) plus w: on both FIFOs;
 *   - runs the command, resolved on the task env's PATH, as a CHILD with
 *     stdout/stderr on the FIFOs, waits for it;
 *   - writes the exit code to $NOMAD_TASK_DIR/.exit_status.txt (0644) and
 *     exits with it (-1 / 255 when the child died from a signal).
 * usage: shim [--join-fd=N ...] <defaults true|false> <stdout fifo> <stderr fifo> [mode:path ...] -- CMD [ARGS...]
 *
 * --join-fd=N (bench variant `unshare-cg` only, v1/hybrid): N is an open
 * cgroup.procs file of one of the task's cgroups (opened by the bench's root
 * helper, inherited through unshare); the shim writes "0" (itself) to each
 * before anything else and closes it (42 when a write fails), so the task it
 * starts runs in the same cgroups the driver's task joins. This is the
 * work exec2's chain would do on a v1 host, where it cannot clone into a
 * cgroup: the first write after a quiet spell waits an RCU grace period.
 *
 * What it leaves out: the Go runtime's start-up (a fresh Go binary costs
 * around a millisecond or more before main runs, twice in the real chain
 * when the plugin binary is re-executed), go-landlock's ABI negotiation.
 * So this baseline is FASTER than the real Go chain, and every ratio
 * against it understates exec2's advantage (it is conservative). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* go-landlock's V3 set: the 13 ABI-1 rights, REFER (ABI 2), TRUNCATE (ABI 3). */
#define FS_ABI1 ((1ULL << 13) - 1)
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

static unsigned long long handled;

static unsigned long long rights(const char *mode, int dir) {
	const unsigned long long file_r = LANDLOCK_ACCESS_FS_READ_FILE, file_w = LANDLOCK_ACCESS_FS_WRITE_FILE | (handled & LANDLOCK_ACCESS_FS_TRUNCATE);
	unsigned long long r = 0;
	if (strchr(mode, 'r')) r |= file_r | (dir ? LANDLOCK_ACCESS_FS_READ_DIR : 0);
	if (strchr(mode, 'w')) r |= file_w;
	if (strchr(mode, 'x')) r |= LANDLOCK_ACCESS_FS_EXECUTE;
	if (strchr(mode, 'c') && dir) r |= handled & ~(file_r | file_w | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_EXECUTE);
	return r;
}

static int add_rule(int rs, const char *mode, const char *path) {
	struct landlock_path_beneath_attr pb = { 0 };
	pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
	if (pb.parent_fd < 0) return -1;
	struct stat st;
	if (fstat(pb.parent_fd, &st)) return -1;
	pb.allowed_access = rights(mode, S_ISDIR(st.st_mode));
	int r = pb.allowed_access ? (int)syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) : 0;
	close(pb.parent_fd);
	return r;
}

int main(int argc, char **argv) {
	int a = 1;
	for (; a < argc && strncmp(argv[a], "--join-fd=", 10) == 0; a++) {
		char *end;
		long fd = strtol(argv[a] + 10, &end, 10);
		if (*end || fd < 3 || fd > 1023) return 40;
		if (write((int)fd, "0", 1) != 1) return 42;
		close((int)fd);
	}
	/* the rest is the plain shim's argv, with argv[0] just before it */
	argv += a - 1;
	argc -= a - 1;
	if (argc < 6) return 40;
	for (int s = 1; s < NSIG; s++) signal(s, SIG_IGN);
	int out = open(argv[2], O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	int err = open(argv[3], O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (out < 0 || err < 0) return 41;

	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1) return 1;
	handled = FS_ABI1 | (abi >= 2 ? LANDLOCK_ACCESS_FS_REFER : 0) | (abi >= 3 ? LANDLOCK_ACCESS_FS_TRUNCATE : 0);
	struct landlock_ruleset_attr ra = { .handled_access_fs = handled };
	int rs = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof ra, 0);
	if (rs < 0) return 1;
	int i = 4;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		char *colon = strrchr(argv[i], ':');
		if (!colon) return 40;
		*colon = 0;
		if (add_rule(rs, argv[i], colon + 1)) return 1;
	}
	if (i >= argc - 1) return 40;
	if (add_rule(rs, "w", argv[2]) || add_rule(rs, "w", argv[3])) return 1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_landlock_restrict_self, rs, 0)) return 1;

	pid_t pid = fork();
	if (pid < 0) return 1;
	if (pid == 0) {
		for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
		dup2(out, 1);
		dup2(err, 2);
		execvp(argv[i + 1], argv + i + 1);
		_exit(127);
	}
	close(out);
	close(err);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	const char *td = getenv("NOMAD_TASK_DIR");
	if (td) {
		char path[4096];
		snprintf(path, sizeof path, "%s/.exit_status.txt", td);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dprintf(fd, "%d", code);
			close(fd);
		}
	}
	return code & 0xff;
}
