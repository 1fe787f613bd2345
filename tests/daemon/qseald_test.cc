// Runs the real qseald binary: configuration errors, liveness, clean stop on SIGTERM, PIN
// hygiene (loose PIN files refused, env: PINs cleared) and core dumps off.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "common/exit_codes.h"
#include "tests/testing/qseald_harness.h"
#include "tests/testing/testing.h"

namespace qseal {
namespace {

using testing::ChildProcess;
using testing::TempDir;

const std::string kQseald = std::string(QSEAL_BINARY_DIR) + "/daemon/qseald";
constexpr std::chrono::seconds kShort{10};

TEST(QsealdTest, CheckConfigReportsEveryErrorAndExits78) {
  TempDir tmp;
  std::string conf = testing::ReadFile(std::string(QSEAL_SOURCE_DIR) + "/conf/qseald.toml");
  conf.replace(conf.find("max_connections = 1024"), 22, "max_connections = \"x\"");
  conf.replace(conf.find("lease_batch = 256"), 17, "lease_batch = 256\nturbo = true");
  testing::WriteFile(tmp.Sub("bad.toml"), conf);
  testing::CommandResult r =
      testing::RunCommand(kQseald + " --check-config --config " + tmp.Sub("bad.toml"));
  EXPECT_EQ(r.exit_code, kExitConfig) << r.output;
  EXPECT_NE(r.output.find("server.max_connections: expected an integer"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("engine.turbo: unknown key"), std::string::npos) << r.output;
}

TEST(QsealdTest, CheckConfigAcceptsTheShippedConfig) {
  testing::CommandResult r = testing::RunCommand(kQseald + " --check-config --config " +
                                                 QSEAL_SOURCE_DIR "/conf/qseald.toml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(QsealdTest, UnknownFlagIsAUsageError) {
  EXPECT_EQ(testing::RunCommand(kQseald + " --no-such-flag").exit_code, kExitUsage);
  testing::CommandResult v = testing::RunCommand(kQseald + " --version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.output.find("qseald "), std::string::npos);
}

TEST(QsealdTest, ServesLivezAndStopsCleanlyOnSigterm) {
  TempDir tmp;
  testing::Qseald qseald(tmp.Sub("d"));
  ASSERT_TRUE(qseald.Start().ok()) << qseald.Stderr();
  cli::HttpClient client = qseald.Client("");
  auto live = client.Request("GET", "/livez");
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->status, 200);
  auto ready = client.Request("GET", "/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto nothing = client.Request("GET", "/no/such/path");
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(nothing->status, 404);
  EXPECT_EQ(nothing->headers["content-type"], "application/problem+json");
  EXPECT_EQ(qseald.Stop(), 0) << qseald.Stderr();
  // A second start reuses the tokens, key and queue.
  ASSERT_TRUE(qseald.Start().ok()) << qseald.Stderr();
  EXPECT_EQ(qseald.Stop(), 0) << qseald.Stderr();
}

TEST(QsealdTest, WrongPinRefusesToStartWithAClearError) {
  TempDir tmp;
  testing::Qseald qseald(tmp.Sub("d"),
                         {.edit_config =
                              [](std::string& conf) {
                                const std::string pin_file = "file:${QSEAL_VAR:-var}/pin";
                                for (std::size_t p = conf.find(pin_file); p != std::string::npos;
                                     p = conf.find(pin_file)) {
                                  conf.replace(p, pin_file.size(), "env:QSEAL_TEST_WRONG_PIN");
                                }
                              },
                          .module = "",
                          .extra_env = {"QSEAL_TEST_WRONG_PIN=0000"}});
  Status s = qseald.Start();
  EXPECT_FALSE(s.ok());
  int rc = qseald.process().Wait(std::chrono::seconds(30));
  EXPECT_NE(rc, 0);
  EXPECT_NE(qseald.Stderr().find("startup failed"), std::string::npos) << qseald.Stderr();
}

// The PIN file's permissions after Prepare, changed to `mode`.
void ChmodPin(testing::Qseald& qseald, mode_t mode) {
  ASSERT_EQ(::chmod((qseald.var() + "/pin").c_str(), mode), 0);
}

TEST(QsealdPinTest, PinFileReadableByOthersIsAConfigErrorAndRefusesTheStart) {
  TempDir tmp;
  testing::Qseald qseald(tmp.Sub("d"));
  ASSERT_TRUE(qseald.Prepare().ok());
  ChmodPin(qseald, 0640);
  testing::CommandResult check = qseald.Run("--check-config");
  EXPECT_EQ(check.exit_code, kExitConfig) << check.output;
  EXPECT_NE(check.output.find(".pin_source: file " + qseald.var() +
                              "/pin is accessible to group or other (mode 0640); chmod 600 it"),
            std::string::npos)
      << check.output;
  ChmodPin(qseald, 0604);
  EXPECT_EQ(qseald.Run("--check-config").exit_code, kExitConfig);
  ChmodPin(qseald, 0600);
  EXPECT_EQ(qseald.Run("--check-config").exit_code, 0);
  // Loosened after a check: qseald will not run at all (exit 78), --probe-hsm included.
  ChmodPin(qseald, 0644);
  testing::CommandResult probe = qseald.Run("--probe-hsm");
  EXPECT_EQ(probe.exit_code, kExitConfig) << probe.output;
}

TEST(QsealdPinTest, EnvPinIsGoneFromTheEnvironmentOfTheRunningDaemon) {
  TempDir tmp;
  testing::Qseald qseald(tmp.Sub("d"));
  ASSERT_TRUE(qseald.Prepare().ok());
  std::string pin = testing::ReadFile(qseald.var() + "/pin");
  while (!pin.empty() && (pin.back() == '\n' || pin.back() == '\r')) pin.pop_back();
  ASSERT_FALSE(pin.empty());
  // Both partitions read the one variable: it is read once and both log in.
  std::string conf = testing::ReadFile(qseald.config_path());
  const std::string pin_file = "file:" + qseald.var() + "/pin";
  const std::string by_name = "file:${QSEAL_VAR:-var}/pin";
  int replaced = 0;
  for (const std::string& from : {pin_file, by_name}) {
    for (std::size_t p = conf.find(from + "\""); p != std::string::npos;
         p = conf.find(from + "\"")) {
      conf.replace(p, from.size(), "env:QSEAL_TEST_PIN");
      ++replaced;
    }
  }
  ASSERT_EQ(replaced, 2) << conf;
  testing::WriteFile(qseald.config_path(), conf);
  qseald.options().extra_env = {"QSEAL_TEST_PIN=" + pin};
  ASSERT_TRUE(qseald.Start().ok()) << qseald.Stderr();
  auto ready = qseald.Client("").Request("GET", "/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200) << ready->body;
  // What /proc/PID/environ shows (read as root, which may read a non-dumpable process).
  const std::string environ =
      testing::ReadFile("/proc/" + std::to_string(qseald.process().pid()) + "/environ");
  ASSERT_NE(environ.find("QSEAL_VAR="), std::string::npos) << "cannot read the environment";
  EXPECT_EQ(environ.find("QSEAL_TEST_PIN=" + pin), std::string::npos);
  EXPECT_EQ(environ.find(pin), std::string::npos);
  EXPECT_EQ(qseald.Stop(), 0) << qseald.Stderr();
}

// Core files named core or core.* in `dir`.
std::set<std::string> CoreFiles(const std::string& dir) {
  std::set<std::string> out;
  for (const std::string& name : testing::ListNames(dir)) {
    if (name == "core" || name.rfind("core.", 0) == 0) out.insert(name);
  }
  return out;
}

TEST(QsealdCoreTest, CoreDumpsAreOffAndASigabrtLeavesNoCore) {
  const std::string pattern = testing::ReadFile("/proc/sys/kernel/core_pattern");
  if (pattern.empty() || pattern[0] == '|' || pattern[0] == '/') {
    GTEST_SKIP() << "kernel.core_pattern is '" << pattern
                 << "': cores do not land in the process's cwd, so their absence proves nothing";
  }
  // Cores on for this test and its children, as `ulimit -c unlimited` does.
  struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
  if (::setrlimit(RLIMIT_CORE, &unlimited) != 0) {
    GTEST_SKIP() << "cannot raise RLIMIT_CORE: " << std::strerror(errno);
  }
  TempDir tmp;
  const std::string cwd = tmp.Sub("cwd");
  std::filesystem::create_directories(cwd);
  // The control: a plain process aborted in that directory does leave a core there.
  testing::CommandResult control =
      testing::RunCommand("cd " + testing::ShellQuote(cwd) + " && sh -c 'kill -ABRT $$'");
  if (CoreFiles(cwd).empty()) {
    GTEST_SKIP() << "an aborted shell left no core in its cwd (core_pattern '" << pattern
                 << "'): cannot tell";
  }
  for (const std::string& core : CoreFiles(cwd)) std::filesystem::remove(cwd + "/" + core);

  testing::Qseald qseald(tmp.Sub("d"));
  std::string old_cwd = std::filesystem::current_path();
  ASSERT_EQ(::chdir(cwd.c_str()), 0);
  Status started = qseald.Start();
  ASSERT_EQ(::chdir(old_cwd.c_str()), 0);
  ASSERT_TRUE(started.ok()) << qseald.Stderr();
  const std::string proc = "/proc/" + std::to_string(qseald.process().pid());
  ASSERT_EQ(std::filesystem::read_symlink(proc + "/cwd").string(), cwd);

  // RLIMIT_CORE 0, soft and hard, although qseald was started with it unlimited.
  std::string limits = testing::ReadFile(proc + "/limits");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(limits, m, std::regex(R"(Max core file size\s+(\S+)\s+(\S+))")))
      << limits;
  EXPECT_EQ(m[1], "0") << limits;
  EXPECT_EQ(m[2], "0") << limits;
  // Not dumpable, as qseald reads it back with prctl(PR_GET_DUMPABLE): /proc/PID/status has no
  // line for it, and from outside only its effects show (no core below).
  std::string line = qseald.process().WaitForLine("\"core dumps disabled\"", kShort);
  EXPECT_FALSE(line.empty()) << qseald.Stderr();
  if (!line.empty()) {
    nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j["dumpable"], 0) << line;
    EXPECT_EQ(j["core_limit"], 0) << line;
  }

  qseald.process().Signal(SIGABRT);
  EXPECT_EQ(qseald.process().Wait(std::chrono::seconds(60)), 128 + SIGABRT);
  EXPECT_TRUE(CoreFiles(cwd).empty()) << "qseald left a core file in its cwd";
  (void)control;
}

}  // namespace
}  // namespace qseal
