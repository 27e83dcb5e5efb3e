// Node-API surface of exec2 (see native/exec2_native.d.ts for the contract).
//
// Only what needs raw syscalls lives here. launch() is the hot path and runs
// in a piscina worker; watchExit() runs on the main loop. launchExec() starts
// a command inside a running task (nomad alloc exec, script checks); the
// pty/pipe helpers give the plugin its ends of the command's stdio.

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include <napi.h>

#include "compat.h"
#include "protocol.h"
#include "spawn.h"

namespace {

// ---- errors ---------------------------------------------------------------

std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r: returns a pointer that may or may not be buf.
  return std::string(strerror_r(err, buf, sizeof buf));
}

// Typed error, better-sqlite3 style: message + code (+ errno, path, syscall).
Napi::Error NativeError(Napi::Env env, const char* code, const std::string& message,
                        int err = 0, const std::string* path = nullptr,
                        const char* syscall_name = nullptr) {
  Napi::Error e = Napi::Error::New(env, message);
  Napi::Object o = e.Value();
  o.Set("code", Napi::String::New(env, code));
  if (err) o.Set("errno", Napi::Number::New(env, err));
  if (path) o.Set("path", Napi::String::New(env, *path));
  if (syscall_name && *syscall_name) o.Set("syscall", Napi::String::New(env, syscall_name));
  return e;
}

[[noreturn]] void ThrowInvalid(Napi::Env env, const std::string& what) {
  throw NativeError(env, "EXEC2_INVALID_ARGUMENT", what);
}

[[noreturn]] void ThrowSyscall(Napi::Env env, const char* syscall_name, int err) {
  throw NativeError(env, "EXEC2_SYSCALL",
                    std::string(syscall_name) + " failed: " + ErrnoText(err), err, nullptr,
                    syscall_name);
}

// ---- argument access ------------------------------------------------------

double GetNumber(Napi::Env env, const Napi::Value& v, const char* name, double min,
                 double max) {
  if (!v.IsNumber()) ThrowInvalid(env, std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || std::floor(d) != d)
    ThrowInvalid(env, std::string(name) + " must be an integer in [" +
                          std::to_string((long long)min) + ", " +
                          std::to_string((long long)max) + "]");
  return d;
}

int GetFd(Napi::Env env, const Napi::Value& v, const char* name, int min) {
  return (int)GetNumber(env, v, name, min, INT32_MAX);
}

// Optional number fields: absent (undefined) means `dflt`.
int GetOptInt(Napi::Env env, const Napi::Value& v, const char* name, int min, int max, int dflt) {
  if (v.IsUndefined()) return dflt;
  return (int)GetNumber(env, v, name, min, max);
}

// Strings headed for execve/open: an embedded NUL would silently truncate.
std::string GetString(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsString()) ThrowInvalid(env, std::string(name) + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos)
    ThrowInvalid(env, std::string(name) + " must not contain NUL bytes");
  return s;
}

Napi::Array GetArray(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsArray()) ThrowInvalid(env, std::string(name) + " must be an array");
  return v.As<Napi::Array>();
}

struct UniqueFd {
  int fd = -1;
  UniqueFd() = default;
  explicit UniqueFd(int f) : fd(f) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  void reset() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

// ---- landlockAbi ----------------------------------------------------------

Napi::Value LandlockAbi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  int err = abi < 0 ? errno : 0;
  Napi::Object r = Napi::Object::New(env);
  r.Set("abi", Napi::Number::New(env, abi < 0 ? 0 : (double)abi));
  if (abi < 0)
    r.Set("error", Napi::String::New(env, ErrnoText(err)));
  else
    r.Set("error", env.Null());
  return r;
}

// ---- lookupUser -----------------------------------------------------------

Napi::Value LookupUser(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = GetString(env, info[0], "name");
  if (name.empty()) ThrowInvalid(env, "name must not be empty");

  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? (size_t)hint : 4096);
  struct passwd pw, *res = nullptr;
  int rc;
  for (;;) {
    rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res);
    if (rc != ERANGE) break;
    if (buf.size() >= (1u << 24)) break;  // a sane NSS never needs 16 MiB
    buf.resize(buf.size() * 2);
  }
  // "Not found" comes back as 0 + NULL, or from some NSS modules as one of
  // these (getpwnam_r(3)).
  if (rc == 0 && res == nullptr) return env.Null();
  if (rc == ENOENT || rc == ESRCH) return env.Null();
  if (rc != 0) {
    throw NativeError(env, "EXEC2_SYSCALL",
                      "getpwnam_r(\"" + name + "\") failed: " + ErrnoText(rc), rc, nullptr,
                      "getpwnam_r");
  }

  std::vector<gid_t> groups(32);
  for (;;) {
    int n = (int)groups.size();
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) >= 0) {
      groups.resize((size_t)n);
      break;
    }
    // -1 with n updated to the needed count
    if ((size_t)n <= groups.size()) n = (int)groups.size() * 2;
    if (n > 65536 * 2) ThrowSyscall(env, "getgrouplist", E2BIG);
    groups.resize((size_t)n);
  }

  Napi::Object r = Napi::Object::New(env);
  r.Set("name", Napi::String::New(env, pw.pw_name));
  r.Set("uid", Napi::Number::New(env, pw.pw_uid));
  r.Set("gid", Napi::Number::New(env, pw.pw_gid));
  r.Set("home", Napi::String::New(env, pw.pw_dir ? pw.pw_dir : ""));
  Napi::Array ga = Napi::Array::New(env, groups.size());
  for (size_t i = 0; i < groups.size(); i++) ga.Set((uint32_t)i, Napi::Number::New(env, groups[i]));
  r.Set("groups", ga);
  return r;
}

// ---- openBeneath ------------------------------------------------------------

// The first component of `rel` below `dirfd` that is a symlink, or "".
std::string FirstSymlink(int dirfd, const std::string& rel) {
  for (size_t i = 0; i <= rel.size(); i++) {
    if (i < rel.size() && rel[i] != '/') continue;
    std::string prefix = rel.substr(0, i);
    struct stat st;
    if (fstatat(dirfd, prefix.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
      return prefix;
  }
  return "";
}

// openat2(dirfd, rel, flags | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS): how the workers open, as root, anything the task
// can modify (log FIFOs, its tmp dir) from a directory they trust.
Napi::Value OpenBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirfd = GetFd(env, info[0], "dirfd", 0);
  std::string rel = GetString(env, info[1], "path");
  if (rel.empty() || rel[0] == '/') ThrowInvalid(env, "path must be relative: " + rel);
  int flags = (int)GetNumber(env, info[2], "flags", 0, INT32_MAX);
  struct e2_open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC);
  how.resolve = E2_RESOLVE_SAFE;
  long fd;
  do fd = syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int err = errno;
    if (err == ELOOP) {
      std::string link = FirstSymlink(dirfd, rel);
      if (link.empty()) link = rel;
      throw NativeError(env, "EXEC2_SYMLINK",
                        rel + ": " + link + " is a symbolic link; refusing to follow it (a task can plant one there)",
                        err, &link, "openat2");
    }
    throw NativeError(env, "EXEC2_SYSCALL", "openat2(" + rel + ") failed: " + ErrnoText(err), err,
                      &rel, "openat2");
  }
  return Napi::Number::New(env, (double)fd);
}

// ---- idOwners -------------------------------------------------------------

// Retries an NSS *_r lookup with a growing buffer. Returns the errno-style
// result (0 = answered, found or not).
template <typename F>
int NssLookup(long hint, F&& call) {
  std::vector<char> buf(hint > 0 ? (size_t)hint : 4096);
  for (;;) {
    int rc = call(buf);
    if (rc != ERANGE || buf.size() >= (1u << 24)) return rc;
    buf.resize(buf.size() * 2);
  }
}

// Who owns a uid and a gid in the passwd and group databases: a dynamic
// workload user's ids must belong to nobody.
Napi::Value IdOwners(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uid_t uid = (uid_t)GetNumber(env, info[0], "uid", 0, 4294967294.0);
  gid_t gid = (gid_t)GetNumber(env, info[1], "gid", 0, 4294967294.0);
  Napi::Object r = Napi::Object::New(env);

  std::string user;
  bool has_user = false;
  int rc = NssLookup(sysconf(_SC_GETPW_R_SIZE_MAX), [&](std::vector<char>& buf) {
    struct passwd pw, *res = nullptr;
    int e = getpwuid_r(uid, &pw, buf.data(), buf.size(), &res);
    if (e == 0 && res) {
      user = pw.pw_name;
      has_user = true;
    }
    return e;
  });
  // Not found: 0 + NULL, or ENOENT/ESRCH from some NSS modules (getpwnam_r(3)).
  if (rc != 0 && rc != ENOENT && rc != ESRCH)
    throw NativeError(env, "EXEC2_SYSCALL", "getpwuid_r(" + std::to_string(uid) + ") failed: " + ErrnoText(rc), rc, nullptr, "getpwuid_r");

  std::string group;
  bool has_group = false;
  rc = NssLookup(sysconf(_SC_GETGR_R_SIZE_MAX), [&](std::vector<char>& buf) {
    struct group gr, *res = nullptr;
    int e = getgrgid_r(gid, &gr, buf.data(), buf.size(), &res);
    if (e == 0 && res) {
      group = gr.gr_name;
      has_group = true;
    }
    return e;
  });
  if (rc != 0 && rc != ENOENT && rc != ESRCH)
    throw NativeError(env, "EXEC2_SYSCALL", "getgrgid_r(" + std::to_string(gid) + ") failed: " + ErrnoText(rc), rc, nullptr, "getgrgid_r");

  r.Set("user", has_user ? Napi::Value(Napi::String::New(env, user)) : env.Null());
  r.Set("group", has_group ? Napi::Value(Napi::String::New(env, group)) : env.Null());
  return r;
}

// ---- launch ---------------------------------------------------------------

constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";
constexpr int kMaxCgroupFds = E2_SPAWN_MAX_CGROUPS;

struct LaunchPlan {
  bool exec = false;  // launchExec(): join a task instead of creating one
  bool tty = false;   // exec: stdin_fd is a terminal for 0/1/2
  std::string init_path;
  std::vector<std::string> args;  // init argv, storage
  std::vector<std::string> envs;  // init envp = the task environment, storage
  std::string argv0;
  std::string path_env;  // the task's PATH, for messages
  bool has_path_env = false;
  std::string cwd;
  uint32_t uid = 0, gid = 0;
  int cgroup_fd = -1, stdout_fd = -1, stderr_fd = -1, status_fd = -1, netns_fd = -1;
  int stdin_fd = -1, task_pidfd = -1;  // exec only
  std::vector<int> cgroup_procs;
  uint64_t cap_bnd = 0, cap_amb = 0;
};

// A list of capability numbers (0..63, the kernel's limit for the 64-bit
// sets) as a mask.
uint64_t GetCapMask(Napi::Env env, const Napi::Value& v, const char* name) {
  Napi::Array a = GetArray(env, v, name);
  if (a.Length() > 64) ThrowInvalid(env, std::string(name) + " has more than 64 entries");
  uint64_t m = 0;
  for (uint32_t i = 0; i < a.Length(); i++)
    m |= 1ULL << (unsigned)GetNumber(env, a.Get(i), name, 0, 63);
  return m;
}

std::string HexMask(uint64_t m) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)m);
  return buf;
}

// One parser for both specs (LaunchSpec, ExecSpec): they share everything
// that decides how the command is confined, so they cannot drift apart.
void ParseSpec(Napi::Env env, const Napi::Value& v, bool exec, LaunchPlan& p) {
  if (!v.IsObject() || v.IsArray()) ThrowInvalid(env, "spec must be an object");
  Napi::Object s = v.As<Napi::Object>();
  p.exec = exec;

  p.init_path = GetString(env, s.Get("initPath"), "initPath");
  if (p.init_path.empty() || p.init_path[0] != '/') ThrowInvalid(env, "initPath must be absolute");
  p.cgroup_fd = GetFd(env, s.Get("cgroupFd"), "cgroupFd", -1);
  if (exec) {
    Napi::Value tty = s.Get("tty");
    if (!tty.IsBoolean()) ThrowInvalid(env, "tty must be a boolean");
    p.tty = tty.As<Napi::Boolean>().Value();
    p.task_pidfd = GetFd(env, s.Get("taskPidfd"), "taskPidfd", 0);
    p.stdin_fd = GetFd(env, s.Get("stdinFd"), "stdinFd", 0);
    if (p.tty) {
      if (!isatty(p.stdin_fd)) ThrowInvalid(env, "stdinFd must be a terminal when tty is true");
    } else {
      p.stdout_fd = GetFd(env, s.Get("stdoutFd"), "stdoutFd", 0);
      p.stderr_fd = GetFd(env, s.Get("stderrFd"), "stderrFd", 0);
    }
  } else {
    p.stdout_fd = GetFd(env, s.Get("stdoutFd"), "stdoutFd", 0);
    p.stderr_fd = GetFd(env, s.Get("stderrFd"), "stderrFd", 0);
    p.status_fd = GetFd(env, s.Get("statusDirFd"), "statusDirFd", 0);
    p.netns_fd = GetFd(env, s.Get("netnsFd"), "netnsFd", -1);
  }
  Napi::Array cg = GetArray(env, s.Get("cgroupProcsFds"), "cgroupProcsFds");
  if (cg.Length() > (uint32_t)kMaxCgroupFds)
    ThrowInvalid(env, "too many cgroupProcsFds (max " + std::to_string(kMaxCgroupFds) + ")");
  for (uint32_t i = 0; i < cg.Length(); i++)
    p.cgroup_procs.push_back(GetFd(env, cg.Get(i), "cgroupProcsFds[]", 0));

  p.uid = (uint32_t)GetNumber(env, s.Get("uid"), "uid", 0, 4294967294.0);
  p.gid = (uint32_t)GetNumber(env, s.Get("gid"), "gid", 0, 4294967294.0);
  Napi::Array groups = GetArray(env, s.Get("groups"), "groups");
  if (groups.Length() > 65536) ThrowInvalid(env, "too many groups");
  std::string gstr;
  for (uint32_t i = 0; i < groups.Length(); i++) {
    if (i) gstr += ',';
    gstr += std::to_string((uint32_t)GetNumber(env, groups.Get(i), "groups[]", 0, 4294967294.0));
  }

  p.cwd = GetString(env, s.Get("cwd"), "cwd");
  if (p.cwd.empty() || p.cwd[0] != '/') ThrowInvalid(env, "cwd must be an absolute path");

  std::string oom;
  Napi::Value oomv = s.Get("oomScoreAdj");
  if (!oomv.IsNull() && !oomv.IsUndefined())
    oom = std::to_string((int)GetNumber(env, oomv, "oomScoreAdj", -1000, 1000));

  p.cap_bnd = GetCapMask(env, s.Get("capBounding"), "capBounding");
  p.cap_amb = GetCapMask(env, s.Get("capAmbient"), "capAmbient");
  if (p.cap_amb & ~p.cap_bnd) ThrowInvalid(env, "capAmbient must be a subset of capBounding");
  if (p.uid == 0 && p.cap_amb)
    ThrowInvalid(env, "capAmbient must be empty for uid 0 (root gets the bounding set)");
  Napi::Value scope = s.Get("scopeAbstractUnixSockets");
  if (!scope.IsBoolean()) ThrowInvalid(env, "scopeAbstractUnixSockets must be a boolean");

  Napi::Array argv = GetArray(env, s.Get("argv"), "argv");
  Napi::Array envv = GetArray(env, s.Get("env"), "env");
  Napi::Array unveil = GetArray(env, s.Get("unveil"), "unveil");
  if (argv.Length() == 0) ThrowInvalid(env, "argv must not be empty");
  if (unveil.Length() > E2_MAX_RULES)
    ThrowInvalid(env, "too many unveil rules (max " + std::to_string(E2_MAX_RULES) + ")");
  int cwd_beneath = GetOptInt(env, s.Get("cwdBeneath"), "cwdBeneath", -1, E2_MAX_ANCHORS - 1, -1);

  // Launch only: the task's own /tmp, what stays reachable below it, and
  // the plugin's directories to hide.
  std::string tmp_root, keep_path[2], vol_root;
  std::vector<std::string> masks, vols;
  if (!exec) {
    Napi::Value vv = s.Get("volumes");
    if (!vv.IsUndefined()) {
      Napi::Array va = GetArray(env, vv, "volumes");
      if (va.Length() > E2_MAX_VOLUMES) ThrowInvalid(env, "too many volumes (max " + std::to_string(E2_MAX_VOLUMES) + ")");
      if (va.Length() > 0) {
        vol_root = GetString(env, s.Get("volumeRoot"), "volumeRoot");
        if (vol_root.empty() || vol_root[0] != '/') ThrowInvalid(env, "volumeRoot must be absolute");
      }
      for (uint32_t i = 0; i < va.Length(); i++) {
        Napi::Value e = va.Get(i);
        if (!e.IsObject()) ThrowInvalid(env, "volumes[] must be objects");
        Napi::Object o = e.As<Napi::Object>();
        Napi::Value ro = o.Get("readonly"), pr = o.Get("private");
        if (!ro.IsBoolean() || !pr.IsBoolean()) ThrowInvalid(env, "volumes[].readonly and .private must be booleans");
        std::string host = GetString(env, o.Get("hostPath"), "volumes[].hostPath");
        std::string dest = GetString(env, o.Get("dest"), "volumes[].dest");
        if (host.empty() || host[0] != '/') ThrowInvalid(env, "volumes[].hostPath must be absolute: " + host);
        if (dest.compare(0, vol_root.size() + 1, vol_root + "/") != 0 || dest.size() <= vol_root.size() + 1)
          ThrowInvalid(env, "volumes[].dest must lie below volumeRoot: " + dest);
        vols.push_back(std::string(ro.As<Napi::Boolean>().Value() ? "r" : "w") + (pr.As<Napi::Boolean>().Value() ? "p" : "s"));
        vols.push_back(std::move(host));
        vols.push_back(std::move(dest));
      }
    }
    Napi::Value tv = s.Get("tmp");
    if (!tv.IsUndefined() && !tv.IsNull()) {
      if (!tv.IsObject()) ThrowInvalid(env, "tmp must be an object or null");
      Napi::Object t = tv.As<Napi::Object>();
      tmp_root = GetString(env, t.Get("root"), "tmp.root");
      if (tmp_root.empty() || tmp_root[0] != '/') ThrowInvalid(env, "tmp.root must be absolute");
      Napi::Array keep = GetArray(env, t.Get("keep"), "tmp.keep");
      if (keep.Length() > 2) ThrowInvalid(env, "tmp.keep: at most 2 entries");
      for (uint32_t i = 0; i < keep.Length(); i++) {
        keep_path[i] = GetString(env, keep.Get(i), "tmp.keep[]");
        if (keep_path[i].compare(0, 5, "/tmp/") != 0 || keep_path[i].size() == 5)
          ThrowInvalid(env, "tmp.keep[] must be below /tmp: " + keep_path[i]);
      }
    }
    Napi::Value mv = s.Get("masks");
    Napi::Array m = mv.IsUndefined() ? Napi::Array::New(env) : GetArray(env, mv, "masks");
    if (m.Length() > 16) ThrowInvalid(env, "too many masks (max 16)");
    for (uint32_t i = 0; i < m.Length(); i++) {
      masks.push_back(GetString(env, m.Get(i), "masks[]"));
      if (masks.back().empty() || masks.back()[0] != '/')
        ThrowInvalid(env, "masks[] must be absolute: " + masks.back());
    }
  }

  std::vector<std::string>& a = p.args;
  a.reserve(E2_ARG_FIXED + masks.size() + 2 * unveil.Length() + argv.Length());
  a.emplace_back("exec2-init");
  a.emplace_back(exec ? E2_EXEC_MAGIC : E2_PROTO_MAGIC);
  a.push_back(std::to_string(p.uid));
  a.push_back(std::to_string(p.gid));
  a.push_back(std::move(gstr));
  a.push_back(p.cwd);
  a.push_back(std::move(oom));
  if (exec)
    a.emplace_back(p.tty ? "1" : "0");  // E2_ARG_TTY
  else
    a.push_back(std::to_string(SIGRTMIN));
  a.emplace_back(p.netns_fd >= 0 ? "1" : "0");
  a.push_back(std::to_string(p.cgroup_procs.size()));
  a.push_back(std::to_string(unveil.Length()));
  a.push_back(std::to_string(argv.Length()));
  a.push_back(std::to_string(envv.Length()));
  a.push_back(cwd_beneath < 0 ? std::string() : std::to_string(cwd_beneath));  // E2_ARG_CWD_BENEATH
  a.push_back(tmp_root);                                                       // E2_ARG_TMP
  a.push_back(keep_path[0]);                                                   // E2_ARG_KEEP0
  a.push_back(keep_path[1]);                                                   // E2_ARG_KEEP1
  a.push_back(std::to_string(masks.size()));                                   // E2_ARG_NMASK
  a.push_back(vol_root);                                                       // E2_ARG_VOLROOT
  a.push_back(std::to_string(vols.size() / 3));                                // E2_ARG_NVOL
  a.push_back(HexMask(p.cap_bnd));                               // E2_ARG_CAPBND
  a.push_back(HexMask(p.cap_amb));                               // E2_ARG_CAPAMB
  a.emplace_back(scope.As<Napi::Boolean>().Value() ? "1" : "0");  // E2_ARG_SCOPE
  for (auto& m : masks) a.push_back(std::move(m));
  for (auto& v : vols) a.push_back(std::move(v));

  uint32_t nanchors = 0;
  for (uint32_t i = 0; i < unveil.Length(); i++) {
    Napi::Value rv = unveil.Get(i);
    if (!rv.IsObject()) ThrowInvalid(env, "unveil[] must be objects");
    Napi::Object r = rv.As<Napi::Object>();
    std::string mode = GetString(env, r.Get("mode"), "unveil[].mode");
    std::string path = GetString(env, r.Get("path"), "unveil[].path");
    Napi::Value opt = r.Get("optional");
    if (!opt.IsBoolean()) ThrowInvalid(env, "unveil[].optional must be a boolean");
    if (mode.find_first_not_of("rwxc") != std::string::npos)
      ThrowInvalid(env, "unveil mode must be letters of \"rwxc\": \"" + mode + "\"");
    if (path.empty() || path[0] != '/') ThrowInvalid(env, "unveil path must be absolute: " + path);
    Napi::Value av = r.Get("anchor");
    if (!av.IsUndefined() && !av.IsBoolean()) ThrowInvalid(env, "unveil[].anchor must be a boolean");
    bool anchor = av.IsBoolean() && av.As<Napi::Boolean>().Value();
    int beneath = GetOptInt(env, r.Get("beneath"), "unveil[].beneath", -1, (int)nanchors - 1, -1);
    if (mode.empty() && !anchor)
      ThrowInvalid(env, "unveil mode must not be empty (except for an anchor): " + path);
    if (opt.As<Napi::Boolean>().Value()) mode += '?';
    if (anchor) {
      if (++nanchors > E2_MAX_ANCHORS)
        ThrowInvalid(env, "too many unveil anchors (max " + std::to_string(E2_MAX_ANCHORS) + ")");
      mode += '+';
    }
    if (beneath >= 0) mode += "@" + std::to_string(beneath);
    a.push_back(std::move(mode));
    a.push_back(std::move(path));
  }
  if (cwd_beneath >= (int)nanchors) ThrowInvalid(env, "cwdBeneath names no anchor");
  for (uint32_t i = 0; i < argv.Length(); i++) a.push_back(GetString(env, argv.Get(i), "argv[]"));
  p.argv0 = a[a.size() - argv.Length()];
  if (p.argv0.empty()) ThrowInvalid(env, "argv[0] (the command) must not be empty");
  for (uint32_t i = 0; i < envv.Length(); i++) {
    std::string e = GetString(env, envv.Get(i), "env[]");
    if (e.find('=') == std::string::npos || e[0] == '=')
      ThrowInvalid(env, "env entries must be KEY=VALUE: \"" + e + "\"");
    // execve's getenv finds the first PATH; so does exec2-init.
    if (!p.has_path_env && e.compare(0, 5, "PATH=") == 0) {
      p.path_env = e.substr(5);
      p.has_path_env = true;
    }
    // envp, not argv: /proc/<pid>/cmdline is readable by every local user.
    p.envs.push_back(std::move(e));
  }
}

// "<symlink> is a symbolic link ..." from an E2_SYMLINK_OP record (protocol.h).
std::string SymlinkText(const std::string& op, const std::string& path) {
  std::string link = path;
  size_t n = strlen(E2_SYMLINK_OP);
  if (op.compare(0, n, E2_SYMLINK_OP) == 0) {
    size_t len = strtoul(op.c_str() + n, nullptr, 10);
    if (len > 0 && len <= path.size()) link = path.substr(0, len);
  }
  return link + " is a symbolic link; refusing to follow it (a task can plant one there)";
}

// The one map from where a launch failed (the record's stage, protocol.h) to
// the NativeErrorCode it is thrown with. A stage has one code; the two
// refinements by errno say that the task, not the setup, is gone. The
// switch has no default, and -Wswitch is an error here, so a stage added to
// protocol.h does not build until it has its row. (TypeScript then maps each
// code to a DriverErrorCode once: src/workers/launch-failure.ts.)
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wswitch"
const char* StageCode(const LaunchPlan& p, uint32_t stage, int err) {
  switch (static_cast<e2_stage>(stage)) {
    case E2_ST_NOT_FOUND: return "EXEC2_COMMAND_NOT_FOUND";
    case E2_ST_NOT_EXEC: return "EXEC2_COMMAND_NOT_EXECUTABLE";
    case E2_ST_UNVEIL_PATH: return "EXEC2_UNVEIL_PATH";
    case E2_ST_LANDLOCK: return "EXEC2_LANDLOCK";
    case E2_ST_CREDS: return "EXEC2_CREDENTIALS";
    case E2_ST_CAPS: return "EXEC2_CAPABILITIES";
    case E2_ST_WORKDIR: return "EXEC2_WORKDIR";
    case E2_ST_NETNS: return "EXEC2_NETNS";
    case E2_ST_VOLUME: return "EXEC2_VOLUME";
    case E2_ST_CGROUP: return "EXEC2_CGROUP";
    case E2_ST_ARGS: return "EXEC2_INVALID_ARGUMENT";
    // ESRCH: the task's pid 1 has exited, there is nothing to join.
    case E2_ST_JOIN: return err == ESRCH ? "EXEC2_TASK_EXITED" : "EXEC2_SPAWN";
    // ENOMEM in exec mode: the task's pid namespace, whose init has exited,
    // takes no new processes.
    case E2_ST_FORK: return p.exec && err == ENOMEM ? "EXEC2_TASK_EXITED" : "EXEC2_SPAWN";
    case E2_ST_INIT_EXEC:
    case E2_ST_SETUP:
    case E2_ST_SPAWN_FDS: return "EXEC2_SPAWN";
    case E2_ST_STDIO:
    case E2_ST_OOM:
    case E2_ST_PRIVS:
    case E2_ST_NONE: return "EXEC2_SYSCALL";
  }
  return "EXEC2_SYSCALL";  // a stage number this build does not know
}
#pragma GCC diagnostic pop

// The message for a record: what failed, in words a job author can act on.
// Only the text depends on the errno here; the code is StageCode's.
std::string RecordMessage(const LaunchPlan& p, uint32_t stage, int err, const std::string& op,
                          const std::string& path, bool task_exited) {
  std::string reason = ErrnoText(err);
  std::string what = op + (path.empty() ? "" : " " + path) + ": " + reason;
  switch (stage) {
    case E2_ST_NOT_FOUND:
      if (p.argv0.find('/') != std::string::npos)
        return "command not found: \"" + p.argv0 + "\" (" + reason + ")";
      return "command not found: \"" + p.argv0 + "\" (searched PATH=" +
             (p.has_path_env ? p.path_env : std::string(kDefaultPath)) +
             (p.has_path_env ? "" : ", the default") + ")";
    case E2_ST_NOT_EXEC: {
      std::string hint;
      if (err == EACCES) hint = " (is it unveiled with \"x\", and executable by the task user?)";
      if (err == ENOEXEC) hint = " (neither a binary for this machine nor a script with #!)";
      return "cannot execute \"" + path + "\": " + reason + hint;
    }
    case E2_ST_UNVEIL_PATH:
      if (err == ELOOP) return "unveil path " + path + ": " + SymlinkText(op, path);
      if (err == ENOENT) return "unveil path does not exist: " + path;
      return "cannot open unveil path " + path + ": " + reason;
    case E2_ST_LANDLOCK:
      if (op == "landlock_create_ruleset" && (err == ENOSYS || err == EOPNOTSUPP))
        return "Landlock is not available (" + reason + "); refusing to run the task unconfined";
      return op + (path.empty() ? "" : " on " + path) + " failed: " + reason;
    case E2_ST_CREDS:
      return "cannot switch to uid " + std::to_string(p.uid) + " gid " + std::to_string(p.gid) +
             ": " + op + " failed: " + reason;
    case E2_ST_CAPS: {
      // Syscall failures say which call; the checks of init name what was
      // wrong and the capability number in parentheses.
      bool call = op.compare(0, 5, "prctl") == 0 || op == "capset" || op == "capget";
      return "cannot set the task's capabilities: " + op + (call ? " failed: " + reason : "");
    }
    case E2_ST_WORKDIR:
      if (err == ELOOP) return "working directory " + p.cwd + ": " + SymlinkText(op, path);
      return "cannot change to the working directory \"" + p.cwd + "\": " + reason;
    case E2_ST_NETNS:
      return "cannot join the network namespace: " + reason;
    case E2_ST_JOIN:
      if (task_exited) return "the task is not running (its pid 1 has exited)";
      return "cannot enter the task's namespaces: " + reason;
    case E2_ST_VOLUME:
      if (op == "open" && err == ENOENT) return "volume host path does not exist: " + path;
      if (err == ELOOP) return "volume destination " + path + ": " + SymlinkText(op, path);
      return "cannot mount the volume at " + path + ": " + op + " failed: " + reason;
    case E2_ST_CGROUP:
      return "cannot join the task cgroup (write to cgroup.procs): " + reason;
    case E2_ST_INIT_EXEC:
      return "cannot start the init helper \"" + path + "\": " + reason;
    case E2_ST_ARGS:
      return "init helper rejected its arguments (" + op + (path.empty() ? "" : ": " + path) +
             "); is build/Release/exec2-init from the same build?";
    case E2_ST_SETUP:
      if (err == ELOOP) return "task setup failed: " + SymlinkText(op, path);
      return "task setup failed: " + what;
    case E2_ST_FORK:
      if (task_exited) return "the task is exiting (its pid namespace takes no new processes)";
      return "task setup failed: " + what;
    default:  // SPAWN_FDS, STDIO, OOM, PRIVS
      return "task setup failed: " + what;
  }
}

// The record from the error pipe, turned into the NativeError the contract
// promises: StageCode's code, RecordMessage's text, and errno, path, syscall.
Napi::Error ErrorFromRecord(Napi::Env env, const LaunchPlan& p, uint32_t stage, int err,
                            const std::string& op, const std::string& path) {
  const char* code = StageCode(p, stage, err);
  bool task_exited = strcmp(code, "EXEC2_TASK_EXITED") == 0;
  return NativeError(env, code, RecordMessage(p, stage, err, op, path, task_exited), err,
                     path.empty() ? nullptr : &path, op.c_str());
}

// NULL-terminated char* views of strings that outlive the spawn.
std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// clone3 itself failed: nothing was started. With CLONE_INTO_CGROUP these
// errnos mean the task cgroup is unusable rather than the kernel refusing.
Napi::Error SpawnError(Napi::Env env, const LaunchPlan& p, int err) {
  bool cg = p.cgroup_fd >= 0 && (err == EBADF || err == EBUSY || err == EOPNOTSUPP ||
                                 err == ENOENT || err == EACCES || err == EPERM);
  return NativeError(env, cg ? "EXEC2_CGROUP" : "EXEC2_SPAWN",
                     std::string(cg ? "clone3 into the task cgroup failed: " : "clone3 failed: ") +
                         ErrnoText(err),
                     err, nullptr, "clone3");
}

// Starts exec2-init (launch or exec mode) with the error pipe's write end on
// E2_FD_ERR, then `fds` (-1: that slot stays closed), then the cgroup.procs
// fds. The write end is closed here once the child holds it, so EOF on `rd`
// means every holder has exec'd or exited.
struct e2_spawn_res StartInit(Napi::Env env, LaunchPlan& p, bool new_namespaces,
                              std::initializer_list<int> fds, UniqueFd& rd) {
  std::vector<char*> argv = CStrings(p.args), envp = CStrings(p.envs);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) ThrowSyscall(env, "pipe2", errno);
  rd.fd = pipefd[0];
  UniqueFd wr(pipefd[1]);

  struct e2_spawn_req req;
  memset(&req, 0, sizeof req);
  req.init_path = p.init_path.c_str();
  req.argv = argv.data();
  req.envp = envp.data();
  req.cgroup_fd = p.cgroup_fd;
  req.new_namespaces = new_namespaces ? 1 : 0;
  int slot = 0;
  req.src[slot++] = wr.fd;  // E2_FD_ERR
  for (int fd : fds) req.src[slot++] = fd;
  for (int fd : p.cgroup_procs) req.src[slot++] = fd;  // from E2_FD_CGROUP0
  req.nslots = slot;
  // The child first moves every source fd above this number, so a source
  // sitting on a destination slot is never overwritten before it is copied.
  int wm = E2_FD_ERR + slot;
  for (int i = 0; i < slot; i++)
    if (req.src[i] >= wm) wm = req.src[i] + 1;
  req.watermark = wm;

  struct e2_spawn_res res;
  int rc = e2_spawn(&req, &res);
  if (rc < 0) throw SpawnError(env, p, -rc);
  return res;
}

// Reads the error pipe until EOF or `cap` bytes (records are small; more
// would be garbage). Returns the bytes read; *err is the errno of a failed
// read, else 0.
size_t ReadPipe(int fd, char* buf, size_t cap, int* err) {
  size_t got = 0;
  *err = 0;
  while (got < cap) {
    ssize_t n = read(fd, buf + got, cap - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = errno;
      break;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  return got;
}

// Reaps exec2-init after a failed launch. It exits right after reporting (or
// right after reaping the failed task), so blocking here is short.
void ReapFailed(int pidfd) {
  siginfo_t si;
  while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR) {
  }
}

Napi::Value Launch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LaunchPlan p;
  ParseSpec(env, info[0], false, p);

  UniqueFd rd;
  struct e2_spawn_res res = StartInit(env, p, true,
                                      {p.stdout_fd,    // E2_FD_STDOUT
                                       p.stderr_fd,    // E2_FD_STDERR
                                       p.status_fd,    // E2_FD_STATUS
                                       p.netns_fd},    // E2_FD_NETNS (-1: closed)
                                      rd);
  UniqueFd pidfd(res.pidfd);

  // EOF means the task's execve went through.
  char buf[E2_ERR_MAX];
  int read_err = 0;
  size_t got = ReadPipe(rd.fd, buf, sizeof buf, &read_err);
  if (read_err) {
    // Cannot tell what happened: kill, reap, report.
    syscall(SYS_pidfd_send_signal, pidfd.fd, SIGKILL, nullptr, 0);
    ReapFailed(pidfd.fd);
    ThrowSyscall(env, "read(error pipe)", read_err);
  }
  int64_t t_exec = e2_monotonic_ns();

  if (got > 0) {
    ReapFailed(pidfd.fd);
    // A failed task leaves pid 1's "exited 127" behind; the launch never
    // happened as far as the caller is concerned.
    unlinkat(p.status_fd, "status", 0);
    struct e2_err_hdr h;
    if (got < sizeof h) throw NativeError(env, "EXEC2_SPAWN", "truncated error record from the init helper");
    memcpy(&h, buf, sizeof h);
    if (h.magic != E2_ERR_MAGIC || sizeof h + h.op_len + h.path_len > got)
      throw NativeError(env, "EXEC2_SPAWN", "malformed error record from the init helper");
    std::string op(buf + sizeof h, h.op_len);
    std::string path(buf + sizeof h + h.op_len, h.path_len);
    throw ErrorFromRecord(env, p, h.stage, h.err, op, path);
  }

  Napi::Object r = Napi::Object::New(env);
  r.Set("pid", Napi::Number::New(env, res.pid));
  r.Set("pidfd", Napi::Number::New(env, pidfd.release()));
  r.Set("tCloneNs", Napi::BigInt::New(env, (int64_t)res.t_clone_ns));
  r.Set("tExecNs", Napi::BigInt::New(env, (int64_t)t_exec));
  return r;
}

// ---- launchExec -----------------------------------------------------------

// Records on the error pipe of an exec launch: at most one error record (of
// the helper or of the command) and the pid record of the command.
struct ExecRecords {
  bool has_error = false;
  e2_err_hdr err{};
  std::string op, path;
  pid_t pid = -1;
  bool malformed = false;
};

ExecRecords ParseExecRecords(const char* buf, size_t got) {
  ExecRecords r;
  size_t off = 0;
  while (off + sizeof(uint32_t) <= got) {
    uint32_t magic;
    memcpy(&magic, buf + off, sizeof magic);
    if (magic == E2_PID_MAGIC && off + sizeof(e2_pid_rec) <= got) {
      e2_pid_rec pr;
      memcpy(&pr, buf + off, sizeof pr);
      r.pid = pr.pid;
      off += sizeof pr;
    } else if (magic == E2_ERR_MAGIC && off + sizeof(e2_err_hdr) <= got && !r.has_error) {
      e2_err_hdr h;
      memcpy(&h, buf + off, sizeof h);
      if (off + sizeof h + h.op_len + h.path_len > got) break;
      r.has_error = true;
      r.err = h;
      r.op.assign(buf + off + sizeof h, h.op_len);
      r.path.assign(buf + off + sizeof h + h.op_len, h.path_len);
      off += sizeof h + h.op_len + h.path_len;
    } else {
      break;
    }
  }
  if (off != got) r.malformed = true;
  return r;
}

Napi::Value LaunchExec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LaunchPlan p;
  ParseSpec(env, info[0], true, p);

  UniqueFd rd;
  struct e2_spawn_res res = StartInit(env, p, false,
                                      {p.stdin_fd,                 // E2_FDX_STDIN (or the terminal)
                                       p.tty ? -1 : p.stdout_fd,   // E2_FDX_STDOUT
                                       p.tty ? -1 : p.stderr_fd,   // E2_FDX_STDERR
                                       p.task_pidfd},              // E2_FDX_TASK
                                      rd);
  UniqueFd helper(res.pidfd);

  char buf[2 * E2_ERR_MAX];
  int read_err = 0;
  size_t got = ReadPipe(rd.fd, buf, sizeof buf, &read_err);
  int64_t t_exec = e2_monotonic_ns();
  ExecRecords rec = ParseExecRecords(buf, got);
  // The helper exits right after its pid record (or its error record).
  if (read_err) syscall(SYS_pidfd_send_signal, helper.fd, SIGKILL, nullptr, 0);
  ReapFailed(helper.fd);

  // The command is our child (CLONE_PARENT). On any failure it has exited
  // already or must not live on: kill and reap it.
  auto reap_command = [&]() {
    if (rec.pid <= 0) return;
    kill(rec.pid, SIGKILL);  // still unreaped: the pid cannot have been reused
    siginfo_t si;
    while (waitid(P_PID, (id_t)rec.pid, &si, WEXITED) < 0 && errno == EINTR) {
    }
  };
  if (read_err) {
    reap_command();
    ThrowSyscall(env, "read(error pipe)", read_err);
  }
  if (rec.has_error) {
    reap_command();
    throw ErrorFromRecord(env, p, rec.err.stage, rec.err.err, rec.op, rec.path);
  }
  if (rec.malformed || rec.pid <= 0) {
    reap_command();
    throw NativeError(env, "EXEC2_SPAWN",
                      got == 0 ? "the exec helper died before starting the command"
                               : "malformed record from the exec helper");
  }
  long cfd = syscall(SYS_pidfd_open, rec.pid, 0);
  if (cfd < 0) {
    int err = errno;
    reap_command();
    ThrowSyscall(env, "pidfd_open", err);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("pid", Napi::Number::New(env, rec.pid));
  r.Set("pidfd", Napi::Number::New(env, (double)cfd));
  r.Set("tCloneNs", Napi::BigInt::New(env, (int64_t)res.t_clone_ns));
  r.Set("tExecNs", Napi::BigInt::New(env, (int64_t)t_exec));
  return r;
}

// ---- stdio for exec sessions ------------------------------------------------

// A pty pair. The plugin keeps the master (read with tty.ReadStream); the
// slave becomes the command's controlling terminal. Both O_CLOEXEC so no
// other child of the plugin inherits them; O_NOCTTY so the plugin never
// acquires a controlling terminal.
Napi::Value OpenPty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (master.fd < 0) ThrowSyscall(env, "posix_openpt", errno);
  if (grantpt(master.fd) < 0) ThrowSyscall(env, "grantpt", errno);
  if (unlockpt(master.fd) < 0) ThrowSyscall(env, "unlockpt", errno);
  char name[128];
  int rc = ptsname_r(master.fd, name, sizeof name);
  if (rc != 0) ThrowSyscall(env, "ptsname_r", rc);
  UniqueFd slave(open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (slave.fd < 0) ThrowSyscall(env, "open(pty slave)", errno);
  Napi::Object r = Napi::Object::New(env);
  r.Set("master", Napi::Number::New(env, master.release()));
  r.Set("slave", Napi::Number::New(env, slave.release()));
  r.Set("path", Napi::String::New(env, name));
  return r;
}

Napi::Value SetWindowSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = GetFd(env, info[0], "fd", 0);
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  ws.ws_row = (unsigned short)GetNumber(env, info[1], "rows", 0, 65535);
  ws.ws_col = (unsigned short)GetNumber(env, info[2], "cols", 0, 65535);
  // The kernel sends SIGWINCH to the terminal's foreground process group.
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) ThrowSyscall(env, "ioctl(TIOCSWINSZ)", errno);
  return env.Undefined();
}

// The character that ends input on a terminal in canonical mode (VEOF, ^D by
// default), or null when the line discipline is not canonical (raw mode:
// there is no in-band end of input).
Napi::Value TerminalEof(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = GetFd(env, info[0], "fd", 0);
  struct termios t;
  if (tcgetattr(fd, &t) < 0) ThrowSyscall(env, "tcgetattr", errno);
  if (!(t.c_lflag & ICANON)) return env.Null();
  return Napi::Number::New(env, (unsigned char)t.c_cc[VEOF]);
}

// pipe2(O_CLOEXEC): [read end, write end]. Pipes rather than socketpairs so
// that the command can reopen /dev/stdin, /dev/stdout and /dev/stderr.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) ThrowSyscall(env, "pipe2", errno);
  Napi::Array r = Napi::Array::New(env, 2);
  r.Set((uint32_t)0, Napi::Number::New(env, fds[0]));
  r.Set((uint32_t)1, Napi::Number::New(env, fds[1]));
  return r;
}

// ---- watchExit ------------------------------------------------------------
//
// A pidfd becomes readable when its process exits; that, and only that, is
// an exit. A poll error (libuv reports POLLERR as UV_EBADF and stops the
// handle) says nothing about the process: it is checked directly (poll(2)
// on the pidfd), and while it lives the watch goes on, re-armed from a
// timer with backoff so a persistent error cannot spin the loop. When the
// poll handle cannot be set up at all (epoll out of watches or memory), the
// timer alone watches the pidfd.

struct ExitWatch;

// Per-env registry so that an env teardown (worker exit, process exit) can
// close the handles it still owns.
struct EnvWatches {
  std::unordered_set<ExitWatch*> live;
};

constexpr uint64_t kRecheckFirstMs = 10;
constexpr uint64_t kRecheckMaxMs = 250;

struct ExitWatch {
  uv_poll_t poll;
  uv_timer_t timer;
  bool has_poll = false;
  bool has_timer = false;
  int open_handles = 0;  // freed when the last close callback ran
  uint64_t recheck_ms = kRecheckFirstMs;
  napi_env env;
  Napi::FunctionReference cb;
  int pidfd;
  EnvWatches* owner;
};

void OnWatchHandleClosed(uv_handle_t* h) {
  ExitWatch* w = static_cast<ExitWatch*>(h->data);
  if (--w->open_handles == 0) delete w;
}

// Stops watching and releases the pidfd; the struct is freed by the close
// callbacks on a later loop turn.
void FinishWatch(ExitWatch* w) {
  if (w->has_poll) uv_poll_stop(&w->poll);  // removes the fd from epoll before we close it
  if (w->has_timer) uv_timer_stop(&w->timer);
  if (w->pidfd >= 0) close(w->pidfd);
  w->pidfd = -1;
  w->owner->live.erase(w);
  if (w->has_poll) uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnWatchHandleClosed);
  if (w->has_timer) uv_close(reinterpret_cast<uv_handle_t*>(&w->timer), OnWatchHandleClosed);
  w->has_poll = w->has_timer = false;
}

// Whether the pidfd says its process has exited (readable), asked directly.
bool PidfdExited(int pidfd) {
  struct pollfd pfd = {pidfd, POLLIN, 0};
  int rc;
  do rc = poll(&pfd, 1, 0);
  while (rc < 0 && errno == EINTR);
  return rc > 0 && (pfd.revents & POLLIN);
}

// Reap (our child) or just note (not our child) the exit and call back once.
void ReportExit(ExitWatch* w) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int rc;
  do rc = waitid((idtype_t)P_PIDFD, (id_t)w->pidfd, &si, WEXITED | WNOHANG);
  while (rc < 0 && errno == EINTR);

  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  Napi::Value arg = env.Null();
  if (rc == 0 && si.si_pid != 0) {
    Napi::Object st = Napi::Object::New(env);
    int code = 0, sig = 0;
    if (si.si_code == CLD_EXITED) {
      code = si.si_status;
    } else {  // CLD_KILLED, CLD_DUMPED
      sig = si.si_status;
      code = 128 + sig;
    }
    st.Set("exitCode", Napi::Number::New(env, code));
    st.Set("signal", Napi::Number::New(env, sig));
    arg = st;
  }
  // ECHILD (not our child, e.g. a recovered task) and anything unexpected:
  // the process is gone but its status is not ours to know -> null.

  Napi::FunctionReference cb = std::move(w->cb);
  FinishWatch(w);
  try {
    cb.MakeCallback(env.Global(), {arg});
  } catch (const Napi::Error& e) {
    // No JS frame to throw into: hand it to process 'uncaughtException'.
    napi_fatal_exception(env, e.Value());
  }
}

void OnPidfdReadable(uv_poll_t* handle, int status, int events);

// The timer: after a poll error, or instead of the poll handle.
void OnRecheck(uv_timer_t* handle) {
  ExitWatch* w = static_cast<ExitWatch*>(handle->data);
  if (PidfdExited(w->pidfd)) return ReportExit(w);
  if (w->has_poll && uv_poll_start(&w->poll, UV_READABLE, OnPidfdReadable) == 0) {
    // The exit may have happened between the check and the re-arm: a
    // level-triggered poll reports it on the next turn.
    return;
  }
  w->recheck_ms = std::min(w->recheck_ms * 2, kRecheckMaxMs);
  uv_timer_start(&w->timer, OnRecheck, w->recheck_ms, 0);
}

void ScheduleRecheck(ExitWatch* w) {
  if (w->has_poll) uv_poll_stop(&w->poll);
  uv_timer_start(&w->timer, OnRecheck, w->recheck_ms, 0);
  w->recheck_ms = std::min(w->recheck_ms * 2, kRecheckMaxMs);
}

void OnPidfdReadable(uv_poll_t* handle, int status, int /*events*/) {
  ExitWatch* w = static_cast<ExitWatch*>(handle->data);
  if (status < 0) {
    // Not an exit: only the pidfd itself can say the process is gone.
    if (PidfdExited(w->pidfd)) return ReportExit(w);
    return ScheduleRecheck(w);
  }
  w->recheck_ms = kRecheckFirstMs;
  // Readable means exited; for our child, also wait until it is a zombie.
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int rc = waitid((idtype_t)P_PIDFD, (id_t)w->pidfd, &si, WEXITED | WNOHANG | WNOWAIT);
  if (rc == 0 && si.si_pid == 0) return;   // not a zombie yet: poll again
  if (rc < 0 && errno == EINTR) return;    // level-triggered: comes back
  ReportExit(w);
}

void CleanupEnvWatches(void* arg) {
  EnvWatches* ew = static_cast<EnvWatches*>(arg);
  std::vector<ExitWatch*> all(ew->live.begin(), ew->live.end());
  for (ExitWatch* w : all) {
    w->cb.Reset();
    FinishWatch(w);
  }
}

Napi::Value WatchExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pidfd = GetFd(env, info[0], "pidfd", 0);
  if (!info[1].IsFunction()) ThrowInvalid(env, "onExit must be a function");
  EnvWatches* ew = env.GetInstanceData<EnvWatches>();
  if (fcntl(pidfd, F_GETFD) < 0)
    throw NativeError(env, "EXEC2_INVALID_ARGUMENT", "cannot watch pidfd: " + ErrnoText(errno), errno,
                      nullptr, "fcntl");

  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop)
    throw NativeError(env, "EXEC2_SYSCALL", "no libuv loop for this environment");

  ExitWatch* w = new ExitWatch();
  w->env = env;
  w->pidfd = pidfd;
  w->owner = ew;
  w->poll.data = w;
  w->timer.data = w;
  int rc = uv_timer_init(loop, &w->timer);
  if (rc < 0) {
    delete w;
    throw NativeError(env, "EXEC2_SYSCALL", std::string("cannot watch pidfd: ") + uv_strerror(rc),
                      -rc, nullptr, "uv_timer_init");
  }
  w->has_timer = true;
  w->open_handles = 1;
  rc = uv_poll_init(loop, &w->poll, pidfd);
  if (rc == 0) {
    w->has_poll = true;
    w->open_handles++;
    rc = uv_poll_start(&w->poll, UV_READABLE, OnPidfdReadable);
  }
  // Only now does the watch own the pidfd and the callback.
  w->cb = Napi::Persistent(info[1].As<Napi::Function>());
  ew->live.insert(w);
  // No epoll watch possible (ENOSPC, ENOMEM): the timer watches alone.
  if (rc < 0) ScheduleRecheck(w);
  return env.Undefined();
}

// Test hook: what libuv does on POLLERR (stop the handle, call back with
// UV_EBADF), for the watch of `pidfd`. Returns whether such a watch exists.
Napi::Value SimulateWatchError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pidfd = GetFd(env, info[0], "pidfd", 0);
  EnvWatches* ew = env.GetInstanceData<EnvWatches>();
  for (ExitWatch* w : ew->live) {
    if (w->pidfd != pidfd || !w->has_poll) continue;
    uv_poll_stop(&w->poll);
    OnPidfdReadable(&w->poll, UV_EBADF, 0);
    return Napi::Boolean::New(env, true);
  }
  return Napi::Boolean::New(env, false);
}

// ---- pidfds and signals ---------------------------------------------------

Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pid = (int)GetNumber(env, info[0], "pid", 1, INT32_MAX);
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) {
    int err = errno;
    throw NativeError(env, "EXEC2_SYSCALL",
                      "pidfd_open(" + std::to_string(pid) + ") failed: " + ErrnoText(err), err,
                      nullptr, "pidfd_open");
  }
  return Napi::Number::New(env, (double)fd);
}

Napi::Value SendSignal(Napi::Env env, int pidfd, int sig, siginfo_t* si) {
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, si, 0) == 0) return Napi::Boolean::New(env, true);
  int err = errno;
  if (err == ESRCH) return Napi::Boolean::New(env, false);
  ThrowSyscall(env, "pidfd_send_signal", err);
}

Napi::Value SignalTask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pidfd = GetFd(env, info[0], "pidfd", 0);
  int sig = (int)GetNumber(env, info[1], "signal", 0, 64);
  int target = (int)GetNumber(env, info[2], "target", 0, 1);
  // SI_QUEUE is the one negative si_code the kernel lets us supply for
  // another process; pid 1 only obeys control signals that carry it.
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int ctl = SIGRTMIN;
  si.si_signo = ctl;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_int = target << 8 | sig;
  return SendSignal(env, pidfd, ctl, &si);
}

Napi::Value PidfdKill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pidfd = GetFd(env, info[0], "pidfd", 0);
  int sig = (int)GetNumber(env, info[1], "signal", 0, 64);
  return SendSignal(env, pidfd, sig, nullptr);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = GetFd(env, info[0], "fd", 0);
  // Linux closes the fd even when close() reports EINTR: never retry.
  if (close(fd) < 0 && errno != EINTR) ThrowSyscall(env, "close", errno);
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  EnvWatches* ew = new EnvWatches();
  env.SetInstanceData<EnvWatches>(ew);  // deleted by node-addon-api at teardown
  napi_add_env_cleanup_hook(env, CleanupEnvWatches, ew);

  exports.Set("landlockAbi", Napi::Function::New(env, LandlockAbi, "landlockAbi"));
  exports.Set("lookupUser", Napi::Function::New(env, LookupUser, "lookupUser"));
  exports.Set("openBeneath", Napi::Function::New(env, OpenBeneath, "openBeneath"));
  exports.Set("idOwners", Napi::Function::New(env, IdOwners, "idOwners"));
  exports.Set("launch", Napi::Function::New(env, Launch, "launch"));
  exports.Set("launchExec", Napi::Function::New(env, LaunchExec, "launchExec"));
  exports.Set("openPty", Napi::Function::New(env, OpenPty, "openPty"));
  exports.Set("setWindowSize", Napi::Function::New(env, SetWindowSize, "setWindowSize"));
  exports.Set("terminalEof", Napi::Function::New(env, TerminalEof, "terminalEof"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("watchExit", Napi::Function::New(env, WatchExit, "watchExit"));
  exports.Set("simulateWatchError", Napi::Function::New(env, SimulateWatchError, "simulateWatchError"));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("signalTask", Napi::Function::New(env, SignalTask, "signalTask"));
  exports.Set("pidfdKill", Napi::Function::New(env, PidfdKill, "pidfdKill"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  return exports;
}

}  // namespace

NODE_API_MODULE(exec2_native, Init)
