package main

// The shim: what runs between `unshare` and the task in the official
// chain. argv (after the subcommand):
//
//	<defaults true|false> <stdout fifo> <stderr fifo> [mode:path ...] -- CMD [ARGS...]
//
// It ignores the signals sent to its process group (so it lives to record
// the exit code), opens both log FIFOs write-only without following a
// symlink in the last component, confines itself with Landlock (plus w: on
// both FIFOs), runs CMD as its CHILD with stdout/stderr on the FIFOs, waits,
// writes the exit code to $NOMAD_TASK_DIR/.exit_status.txt and exits with it.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

const (
	exitWrongArgs  = 40 // bad invocation (before logging exists)
	exitBadLogging = 41 // a log FIFO could not be opened
	exitFailure    = 1  // Landlock could not be applied
	exitNotFound   = 127
)

// openFifo opens path write-only relative to its parent directory, refusing
// a symlink as the last component.
func openFifo(path string) (*os.File, error) {
	dir, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Dir(path), err)
	}
	defer unix.Close(dir)
	fd, err := unix.Openat(dir, filepath.Base(path), unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

func shimMain(args []string) int {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs)
	go func() {
		for range sigs {
		}
	}()

	if len(args) < 5 {
		fmt.Fprintf(os.Stderr, "%s: want <defaults> <stdout> <stderr> [mode:path ...] -- CMD, got %d args\n", shimSubcommand, len(args))
		return exitWrongArgs
	}
	defaults := args[0] == "true"
	outPath, errPath := args[1], args[2]
	var unveil, command []string
	for i, a := range args[3:] {
		if a == "--" {
			unveil, command = args[3:3+i], args[4+i:]
			break
		}
	}
	if len(command) == 0 {
		fmt.Fprintf(os.Stderr, "%s: no command after --\n", shimSubcommand)
		return exitWrongArgs
	}

	stdout, err := openFifo(outPath)
	if err != nil {
		return exitBadLogging
	}
	stderr, err := openFifo(errPath)
	if err != nil {
		return exitBadLogging
	}
	fail := func(code int, format string, a ...any) int {
		_, _ = io.WriteString(stderr, fmt.Sprintf(format+"\n", a...))
		return code
	}

	rules := make([]rule, 0, len(unveil)+len(defaultRules)+5)
	// A fresh slice: appending to unveil would overwrite the command in args.
	specs := make([]string, 0, len(unveil)+2)
	specs = append(append(specs, unveil...), "w:"+outPath, "w:"+errPath)
	for _, u := range specs {
		r, err := parseRule(u)
		if err != nil {
			return fail(exitFailure, "unable to lockdown: %v", err)
		}
		rules = append(rules, r)
	}
	if defaults {
		rules = append(rules, defaultRules...)
		for _, d := range []string{"/bin", "/usr/bin", "/usr/local/bin"} {
			if _, err := os.Stat(d); err == nil {
				rules = append(rules, rule{path: d, mode: "rx", dir: true})
			}
		}
	}
	if err := lockdown(rules); err != nil {
		return fail(exitFailure, "unable to lockdown: %v", err)
	}

	path, err := exec.LookPath(command[0])
	if err != nil {
		return fail(exitNotFound, "failed to locate command %q: %v", command[0], err)
	}
	cmd := exec.Command(path, command[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return fail(exitFailure, "failed to run %q: %v", path, err)
		}
		code = ee.ExitCode() // -1 when a signal ended it
	}
	_ = stdout.Close()
	_ = stderr.Close()
	_ = os.WriteFile(filepath.Join(os.Getenv("NOMAD_TASK_DIR"), ".exit_status.txt"), []byte(strconv.Itoa(code)), 0o644)
	return code
}
