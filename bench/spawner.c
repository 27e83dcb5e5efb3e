/* The bench's launch helper for the baselines that are whole programs
 * (unshare+shim, bwrap): a small process that posix_spawn()s them, so the
 * bench's Node process is never forked per launch (libuv's spawn forks).
 * t0 is taken here right before posix_spawn, t2 right after waitpid.
 *
 * Also "warms" cgroup v1 migrations: writing our own pid to one of two
 * bench-made cgroup.procs files (argv[1], argv[2]) leaves the kernel's
 * cgroup_threadgroup_rwsem in its fast state for a grace period, so the
 * next launch's v1 cgroup join does not wait for an RCU grace period.
 *
 * Requests, one per line on stdin, fields separated by TAB:
 *   S <stdout: pipe|null> <cwd> <n env> <env...> <n open> <open...> <argv...>
 *       -> "<t0 ns> <t2 ns> <wait status> <output, newlines as spaces>\n"
 *       each <open> path is opened write-only here (as root, before t0) and
 *       handed to the program as fd 3, 4, ... (variant `unshare-cg`: the
 *       task's cgroup.procs files, for the shim to join)
 *   W   -> "<ns spent>\n"
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
	int warm[2] = { -1, -1 }, which = 0;
	for (int k = 0; k < 2 && k + 1 < argc; k++)
		if (argv[k + 1][0]) warm[k] = open(argv[k + 1], O_WRONLY | O_CLOEXEC);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	static char line[1 << 20];
	setvbuf(stdout, NULL, _IONBF, 0);
	while (fgets(line, sizeof line, stdin)) {
		size_t len = strlen(line);
		if (len && line[len - 1] == '\n') line[--len] = 0;
		char *f[4096];
		int n = 0;
		for (char *p = line; n < 4095;) {
			f[n++] = p;
			char *tab = strchr(p, '\t');
			if (!tab) break;
			*tab = 0;
			p = tab + 1;
		}
		f[n] = NULL;
		if (strcmp(f[0], "W") == 0) {
			long long a = now();
			if (warm[which] >= 0 && write(warm[which], "0", 1) != 1) perror("warm");
			which ^= 1;
			printf("%lld\n", now() - a);
			continue;
		}
		if (strcmp(f[0], "S") != 0 || n < 5) {
			printf("error bad request\n");
			continue;
		}
		int capture = strcmp(f[1], "pipe") == 0;
		const char *cwd = f[2];
		int nenv = atoi(f[3]);
		if (nenv < 0 || 5 + nenv > n) {
			printf("error bad request\n");
			continue;
		}
		char **env = f + 4;
		int nopen = atoi(f[4 + nenv]);
		if (nopen < 0 || nopen > 16 || 5 + nenv + nopen >= n) {
			printf("error bad request\n");
			continue;
		}
		char **opens = f + 5 + nenv;
		char **args = f + 5 + nenv + nopen;
		/* opened above every target number (3..), so no dup2 source is also a target */
		int ofd[16], opened = 0;
		for (; opened < nopen; opened++) {
			int fd = open(opens[opened], O_WRONLY | O_CLOEXEC);
			ofd[opened] = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 100);
			if (fd >= 0) close(fd);
			if (ofd[opened] < 0) break;
		}
		if (opened < nopen) {
			for (int k = 0; k < opened; k++) close(ofd[k]);
			printf("error open %s\n", opens[opened]);
			continue;
		}
		char *envv[4096];
		for (int k = 0; k < nenv; k++) envv[k] = env[k];
		envv[nenv] = NULL;
		int p[2] = { -1, -1 };
		if (capture && pipe2(p, O_CLOEXEC)) {
			for (int k = 0; k < nopen; k++) close(ofd[k]);
			printf("error pipe\n");
			continue;
		}
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, devnull, 0);
		posix_spawn_file_actions_adddup2(&fa, capture ? p[1] : devnull, 1);
		posix_spawn_file_actions_adddup2(&fa, devnull, 2);
		for (int k = 0; k < nopen; k++) posix_spawn_file_actions_adddup2(&fa, ofd[k], 3 + k);
		if (cwd[0]) posix_spawn_file_actions_addchdir_np(&fa, cwd);
		posix_spawnattr_t at;
		posix_spawnattr_init(&at);
		posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
		posix_spawnattr_setpgroup(&at, 0);
		pid_t pid;
		long long t0 = now();
		int e = posix_spawnp(&pid, args[0], &fa, &at, args, envv);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&at);
		for (int k = 0; k < nopen; k++) close(ofd[k]);
		if (capture) close(p[1]);
		if (e) {
			if (capture) close(p[0]);
			printf("error spawn %s: %s\n", args[0], strerror(e));
			continue;
		}
		char out[4096];
		size_t got = 0;
		if (capture) {
			ssize_t r;
			while (got < sizeof out - 1 && (r = read(p[0], out + got, sizeof out - 1 - got)) > 0) got += (size_t)r;
			close(p[0]);
		}
		out[got] = 0;
		for (size_t k = 0; k < got; k++)
			if (out[k] == '\n' || out[k] == '\t') out[k] = ' ';
		int st = 0;
		waitpid(pid, &st, 0);
		long long t2 = now();
		printf("%lld %lld %d %s\n", t0, t2, st, out);
	}
	return 0;
}
