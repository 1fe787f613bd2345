// Runs a command under a seccomp filter built like the one systemd installs for
// conf/qseald.service, for want of a systemd to run the unit here (PID 1 of the test machines is
// not systemd). What it reproduces, in the unit's words:
//   SystemCallFilter=@system-service / ~@privileged, SystemCallErrorNumber=EPERM: every system
//     call named in ALLOWED_FILE (one per line: the groups expanded by systemd-analyze
//     syscall-filter, see sandbox_test.cc) is allowed, every other fails with EPERM;
//   MemoryDenyWriteExecute=yes: mmap of memory both writable and executable, and mprotect or
//     pkey_mprotect adding PROT_EXEC, fail with EPERM;
//   RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6: socket() of any other family fails with
//     EAFNOSUPPORT;
//   NoNewPrivileges=yes (seccomp needs it anyway).
// Not reproduced: the mount namespace (ProtectSystem, PrivateTmp, ...), capabilities, user.
//
// usage: seccomp_exec ALLOWED_FILE COMMAND [ARGS...]
#include <errno.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include <seccomp.h>

namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "seccomp_exec: %s\n", what.c_str());
  return 126;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Fail("usage: seccomp_exec ALLOWED_FILE COMMAND [ARGS...]");
  std::ifstream in(argv[1]);
  if (!in) return Fail(std::string("cannot read ") + argv[1]);
  std::set<std::string> allowed;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) allowed.insert(line);
  }
  // Calls whose arguments the unit's other settings restrict get conditional rules below.
  for (const char* conditional : {"mmap", "mprotect", "pkey_mprotect", "socket"}) {
    allowed.erase(conditional);
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (ctx == nullptr) return Fail("seccomp_init failed");
  for (const std::string& name : allowed) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // not a call of this architecture (systemd skips it)
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0) return Fail("cannot allow " + name);
  }
  const scmp_datum_t wx = PROT_WRITE | PROT_EXEC;
  bool ok =
      // mmap: anything but writable and executable at once.
      seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                       SCMP_A2(SCMP_CMP_MASKED_EQ, wx, 0)) == 0 &&
      seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                       SCMP_A2(SCMP_CMP_MASKED_EQ, wx, PROT_WRITE)) == 0 &&
      seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                       SCMP_A2(SCMP_CMP_MASKED_EQ, wx, PROT_EXEC)) == 0 &&
      // mprotect, pkey_mprotect: never to executable.
      seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) == 0 &&
      seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(pkey_mprotect), 1,
                       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) == 0;
  for (scmp_datum_t family : {AF_UNIX, AF_INET, AF_INET6}) {
    ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                                SCMP_A0(SCMP_CMP_EQ, family)) == 0;
  }
  // Every other family: EAFNOSUPPORT, as systemd answers (AF_UNIX = 1, AF_INET = 2,
  // AF_INET6 = 10).
  for (scmp_datum_t family = 0; family < AF_INET6; ++family) {
    if (family == AF_UNIX || family == AF_INET) continue;
    ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                                SCMP_A0(SCMP_CMP_EQ, family)) == 0;
  }
  ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_GT, AF_INET6)) == 0;
  if (!ok) return Fail("cannot add the argument rules");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Fail("PR_SET_NO_NEW_PRIVS failed");
  if (seccomp_load(ctx) != 0) return Fail("seccomp_load failed");
  seccomp_release(ctx);
  execv(argv[2], argv + 2);
  return Fail(std::string("cannot run ") + argv[2]);
}
