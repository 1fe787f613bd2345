// conf/qseald.service's system-call sandbox around a real qseald, for want of a systemd on the
// test machines (their PID 1 is not systemd, so the unit itself cannot be started):
// tests/sandbox/seccomp_exec installs what SystemCallFilter=@system-service ~@privileged
// (SystemCallErrorNumber=EPERM), MemoryDenyWriteExecute, RestrictAddressFamilies and
// NoNewPrivileges install, with the call lists systemd-analyze itself gives. The filter is first
// shown to bite (chroot, memory both writable and executable, a packet socket: each works without
// it, as root, and is refused under it), then qseald runs under it: it starts, seals through the
// TLS API and the watched folder (seals checked by openssl cms -verify), reloads its certificates
// on SIGHUP and stops with 0. What a vendor PKCS#11 module would call outside the list shows up
// here as EPERM, as it would under systemd.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/testing/qseald_harness.h"
#include "tests/testing/testing.h"

namespace qseal {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;
using testing::ShellQuote;

// The system calls of a systemd-analyze group, its nested groups expanded.
std::set<std::string> GroupCalls(const std::string& group) {
  std::set<std::string> calls;
  testing::CommandResult r = RunCommand("systemd-analyze syscall-filter --no-pager " + group);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    line.erase(0, line.find_first_not_of(" \t"));
    if (line.empty() || line[0] == '#' || line == group) continue;
    if (line[0] == '@') {
      std::set<std::string> nested = GroupCalls(line);
      calls.insert(nested.begin(), nested.end());
    } else {
      calls.insert(line);
    }
  }
  return calls;
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::set<std::string> allowed = GroupCalls("@system-service");
    for (const std::string& c : GroupCalls("@privileged")) allowed.erase(c);
    ASSERT_GT(allowed.size(), 200u);  // a few hundred calls
    ASSERT_EQ(allowed.count("chroot"), 0u);
    list_ = tmp_.Sub("allowed.txt");
    std::ofstream out(list_);
    for (const std::string& c : allowed) out << c << "\n";
  }

  // `command` (a shell command line) under the filter, or without it.
  testing::CommandResult Run(const std::string& command, bool sandboxed) const {
    const std::string prefix = sandboxed ? std::string(QSEAL_SECCOMP_EXEC) + " " + list_ + " " : "";
    return RunCommand(prefix + "/bin/sh -c " + ShellQuote(command) + " 2>&1");
  }

  testing::TempDir tmp_;
  std::string list_;
};

TEST_F(SandboxTest, TheFilterRefusesWhatTheUnitRefuses) {
  const std::string wx =
      "python3 -c 'import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | "
      "mmap.PROT_EXEC)'";
  const std::string packet =
      "python3 -c 'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)'";
  // As root each works without the filter, so a refusal under it is the filter's doing.
  if (geteuid() != 0) GTEST_SKIP() << "needs root (CI and the test machines run as root)";
  for (const auto& [name, command, refusal] :
       {std::tuple<std::string, std::string, std::string>{"chroot", "chroot / true",
                                                          "Operation not permitted"},
        {"W+X memory", wx, "PermissionError"},
        {"AF_PACKET", packet, "Address family not supported"}}) {
    SCOPED_TRACE(name);
    testing::CommandResult open = Run(command, false);
    EXPECT_EQ(open.exit_code, 0) << open.output;
    testing::CommandResult refused = Run(command, true);
    EXPECT_NE(refused.exit_code, 0) << refused.output;
    EXPECT_NE(refused.output.find(refusal), std::string::npos) << refused.output;
  }
  // What qseald needs still works: a TLS client over AF_INET, threads, files.
  testing::CommandResult fine = Run("openssl version && ls / > /dev/null", true);
  EXPECT_EQ(fine.exit_code, 0) << fine.output;
}

TEST_F(SandboxTest, QsealdSealsReloadsAndStopsUnderTheFilter) {
  testing::QsealdOptions o;
  o.wrapper = {QSEAL_SECCOMP_EXEC, list_};
  testing::Qseald q(tmp_.Sub("d"), o);
  Status started = q.Start();
  ASSERT_TRUE(started.ok()) << started << q.Stderr();
  // The kernel's word that qseald runs filtered (mode 2: a seccomp filter) without new privileges.
  const std::string status =
      testing::ReadFile("/proc/" + std::to_string(q.process().pid()) + "/status");
  EXPECT_NE(status.find("\nSeccomp:\t2\n"), std::string::npos) << status;
  EXPECT_NE(status.find("\nNoNewPrivs:\t1\n"), std::string::npos) << status;

  for (int i = 0; i < 5; ++i) {
    const std::string content = "invoice " + std::to_string(i) + " under the sandbox\n";
    auto r = q.Client().Request("POST", "/v1/documents?profile=default&wait=30", content);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
    const std::string id = nlohmann::json::parse(r->body)["id"];
    auto seal = q.Client().Request("GET", "/v1/documents/" + id + "/seal");
    ASSERT_TRUE(seal.ok());
    ASSERT_EQ(seal->status, 200);
    testing::WriteFile(tmp_.Sub(id + ".txt"), content);
    testing::WriteFile(tmp_.Sub(id + ".p7s"), seal->body);
    EXPECT_EQ(testing::OpensslVerify(tmp_.Sub(id + ".p7s"), q.ca_pem(), tmp_.Sub(id + ".txt")), "");
  }

  // The watched folder: inotify, renames, fsyncs.
  const std::string root = q.watch_root();
  testing::WriteFile(root + "/inbox/.folder.txt.tmp", "watched invoice\n");
  fs::rename(root + "/inbox/.folder.txt.tmp", root + "/inbox/folder.txt");
  ASSERT_TRUE(testing::WaitFor([&] { return fs::exists(root + "/outbox/folder.txt.p7s"); },
                               std::chrono::seconds(30), std::chrono::milliseconds(50)))
      << q.Stderr();
  EXPECT_EQ(testing::OpensslVerify(root + "/outbox/folder.txt.p7s", q.ca_pem(),
                                   root + "/outbox/folder.txt"),
            "");

  q.process().Signal(SIGHUP);
  EXPECT_FALSE(q.process().WaitForLine("reload", std::chrono::seconds(10)).empty()) << q.Stderr();
  EXPECT_EQ(q.Stop(), 0) << q.Stderr();
  EXPECT_EQ(q.Stderr().find("Operation not permitted"), std::string::npos) << q.Stderr();
}

}  // namespace
}  // namespace qseal
