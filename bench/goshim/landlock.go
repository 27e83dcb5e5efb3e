package main

// Landlock through raw system calls, as the official shim's Landlock
// library does it (no cgo): the ABI is probed and a default path set is
// stat'ed by a package initialiser, i.e. on every start of the binary;
// no_new_privs and restrict_self are applied to every OS thread of the
// Go process (restrict_self only confines the calling thread, and a Go
// program has several).

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	llExecute   = 1 << 0
	llWriteFile = 1 << 1
	llReadFile  = 1 << 2
	llReadDir   = 1 << 3
	llRemoveDir = 1 << 4
	llRemoveReg = 1 << 5
	llMakeChar  = 1 << 6
	llMakeDir   = 1 << 7
	llMakeReg   = 1 << 8
	llMakeSock  = 1 << 9
	llMakeFifo  = 1 << 10
	llMakeBlock = 1 << 11
	llMakeSym   = 1 << 12
	llRefer     = 1 << 13 // ABI 2

	llCreateRulesetVersion = 1 << 0
	llRulePathBeneath      = 1
)

// landlockABI is probed once per process start (0: unavailable).
var landlockABI int

// rule is one path and the mode letters (r, w, x, c) it is allowed.
type rule struct {
	path string
	mode string
	dir  bool
}

// defaultRules is the built-in set added when the driver passes
// `true` for unveil defaults: shared libraries, standard I/O devices,
// DNS and TLS files, the usual bin directories. Only paths that exist
// on this host are kept, decided at start-up as the official library does.
var defaultRules []rule

func init() {
	v, _, e := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, llCreateRulesetVersion)
	if e == 0 && int(v) > 0 {
		landlockABI = int(v)
	}
	for _, r := range []rule{
		{"/dev/null", "rw", false}, {"/lib", "rx", true}, {"/lib64", "rx", true}, {"/usr/lib", "rx", true},
		{"/usr/local/lib", "rx", true}, {"/usr/local/lib64", "rx", true}, {"/etc/ld.so.conf", "r", false},
		{"/etc/ld.so.cache", "r", false}, {"/etc/ld.so.conf.d", "r", true},
		{"/dev/full", "rw", false}, {"/dev/zero", "r", false}, {"/dev/fd", "r", false}, {"/dev/stdin", "rw", false},
		{"/dev/stdout", "rw", false}, {"/dev/urandom", "r", false}, {"/dev/log", "w", true},
		{"/usr/share/locale", "r", false}, {"/proc/self/cmdline", "r", false}, {"/usr/share/zoneinfo", "r", false},
		{"/proc/sys/kernel/ngroups_max", "r", false}, {"/proc/sys/kernel/cap_last_cap", "r", false},
		{"/proc/sys/vm/overcommit_memory", "r", false},
		{"/etc/hosts", "r", false}, {"/etc/services", "r", false}, {"/etc/protocols", "r", false},
		{"/etc/resolv.conf", "r", false}, {"/etc/ssl/certs/ca-certificates.crt", "r", false},
	} {
		if _, err := os.Stat(r.path); err == nil {
			defaultRules = append(defaultRules, r)
		}
	}
}

// handled is every filesystem right this ABI knows of (REFER from ABI 2).
func handled() uint64 {
	h := uint64(llExecute | llWriteFile | llReadFile | llReadDir | llRemoveDir | llRemoveReg | llMakeChar |
		llMakeDir | llMakeReg | llMakeSock | llMakeFifo | llMakeBlock | llMakeSym)
	if landlockABI >= 2 {
		h |= llRefer
	}
	return h
}

// access maps mode letters to rights: r reads (and lists a directory),
// w writes files, x executes, c creates entries inside a directory.
func (r rule) access() uint64 {
	var a uint64
	for _, c := range r.mode {
		switch c {
		case 'r':
			a |= llReadFile
			if r.dir {
				a |= llReadDir
			}
		case 'w':
			a |= llWriteFile
		case 'x':
			a |= llExecute
		case 'c':
			if r.dir {
				a |= llMakeReg | llMakeSock | llMakeFifo | llMakeBlock | llMakeSym | llMakeDir
				if landlockABI >= 2 {
					a |= llRefer
				}
			}
		}
	}
	return a
}

// parseRule reads "mode:path" (split at the LAST ':', so a path may hold
// colons); the path must exist.
func parseRule(s string) (rule, error) {
	i := -1
	for k := len(s) - 1; k >= 0; k-- {
		if s[k] == ':' {
			i = k
			break
		}
	}
	if i < 0 {
		return rule{}, fmt.Errorf("unveil path %q has no mode prefix", s)
	}
	fi, err := os.Stat(s[i+1:])
	if err != nil {
		return rule{}, fmt.Errorf("unveil path: %w", err)
	}
	return rule{path: s[i+1:], mode: s[:i], dir: fi.IsDir()}, nil
}

type rulesetAttr struct{ handledAccessFS uint64 }

// pathBeneathAttr is the kernel's packed 12-byte struct; it reads only
// those 12 bytes, so Go's tail padding is harmless.
type pathBeneathAttr struct {
	allowedAccess uint64
	parentFd      int32
}

// lockdown confines this process and everything it starts to rules, in
// mandatory mode: no Landlock, no task.
func lockdown(rules []rule) error {
	if landlockABI < 1 {
		return errors.New("landlock is not available on this kernel")
	}
	attr := rulesetAttr{handledAccessFS: handled()}
	fd, _, e := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if e != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", e)
	}
	seen := make(map[string]bool, len(rules))
	for _, r := range rules {
		key := r.mode + ":" + r.path
		if seen[key] {
			continue
		}
		seen[key] = true
		access := r.access()
		if access == 0 {
			// Grants nothing (e.g. the bench planner's anchors with an empty
			// mode); the kernel refuses an empty rule with ENOMSG.
			continue
		}
		pfd, err := syscall.Open(r.path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", r.path, err)
		}
		pb := pathBeneathAttr{allowedAccess: access, parentFd: int32(pfd)}
		_, _, e := syscall.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, llRulePathBeneath, uintptr(unsafe.Pointer(&pb)), 0, 0, 0)
		_ = syscall.Close(pfd)
		if e != 0 {
			return fmt.Errorf("landlock_add_rule %s: %w", r.path, e)
		}
	}
	// Every thread: the Go runtime has several, and a thread left
	// unconfined could be the one that forks the task.
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); e != 0 {
		return fmt.Errorf("prctl(NO_NEW_PRIVS): %w", e)
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); e != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", e)
	}
	return syscall.Close(int(fd))
}
