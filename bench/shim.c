/* Baseline 2's shim, modelled on what the official driver's exec2-shim does
 * (spec §7.5): ignore signals, apply Landlock to the given mode:path rules,
 * run the command as a child, wait, write its exit code to a status file,
 * exit with it. Written in C, so it lacks the Go runtime's start-up cost:
 * this baseline is faster than the real Go chain, and ratios against it are
 * conservative.  usage: shim STATUS_FILE [mode:path ...] -- CMD [ARGS...] */
#define _GNU_SOURCE
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

#define FS_ALL ((1ULL << 13) - 1) /* ABI 1 rights */

static unsigned long long rights(const char *mode, int dir) {
	unsigned long long r = 0;
	if (strchr(mode, 'r')) r |= LANDLOCK_ACCESS_FS_READ_FILE | (dir ? LANDLOCK_ACCESS_FS_READ_DIR : 0);
	if (strchr(mode, 'w')) r |= LANDLOCK_ACCESS_FS_WRITE_FILE;
	if (strchr(mode, 'x')) r |= LANDLOCK_ACCESS_FS_EXECUTE;
	if (strchr(mode, 'c') && dir) r |= FS_ALL & ~(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_EXECUTE);
	return r;
}

int main(int argc, char **argv) {
	if (argc < 4) return 40;
	for (int s = 1; s < NSIG; s++) signal(s, SIG_IGN);
	struct landlock_ruleset_attr ra = { .handled_access_fs = FS_ALL };
	int rs = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof ra, 0);
	if (rs < 0) return 1;
	int i = 2;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		char *colon = strrchr(argv[i], ':');
		if (!colon) return 40;
		*colon = 0;
		struct landlock_path_beneath_attr pb = { 0 };
		pb.parent_fd = open(colon + 1, O_PATH | O_CLOEXEC);
		if (pb.parent_fd < 0) continue;
		struct stat st;
		fstat(pb.parent_fd, &st);
		pb.allowed_access = rights(argv[i], S_ISDIR(st.st_mode));
		if (pb.allowed_access) syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
		close(pb.parent_fd);
	}
	if (i >= argc - 1) return 40;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_landlock_restrict_self, rs, 0)) return 1;
	pid_t pid = fork();
	if (pid == 0) {
		for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
		execvp(argv[i + 1], argv + i + 1);
		_exit(127);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	FILE *f = fopen(argv[1], "w");
	if (f) { fprintf(f, "%d\n", code); fclose(f); }
	return code;
}
