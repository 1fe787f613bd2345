// conf/qseald.service: systemd accepts it, its restart policy matches qseald's exit codes
// (restart after an I/O or HSM failure, never after a configuration or usage error), and its
// sandbox scores at most 2.0 in `systemd-analyze security` while leaving HSM device nodes visible.
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/exit_codes.h"
#include "tests/testing/testing.h"

namespace qseal {
namespace {

std::string UnitText() {
  return testing::ReadFile(std::string(QSEAL_SOURCE_DIR) + "/conf/qseald.service");
}

// Every value of `key=` in the unit, in order.
std::vector<std::string> Values(const std::string& unit, const std::string& key) {
  std::istringstream in(unit);
  std::vector<std::string> values;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + "=", 0) == 0) values.push_back(line.substr(key.size() + 1));
  }
  return values;
}

// The value of `key=` in the unit (the last one wins, as in systemd).
std::string Value(const std::string& unit, const std::string& key) {
  std::vector<std::string> values = Values(unit, key);
  return values.empty() ? "" : values.back();
}

// The unit with the built qseald in place of the installed one, so systemd-analyze finds the
// binary, written as DIR/qseald.service.
void WriteUnitWithBuiltBinary(const testing::TempDir& dir) {
  std::string unit = UnitText();
  const std::string installed = "/usr/local/bin/qseald";
  const std::string built = std::string(QSEAL_BINARY_DIR) + "/daemon/qseald";
  for (std::size_t at; (at = unit.find(installed)) != std::string::npos;) {
    unit.replace(at, installed.size(), built);
  }
  testing::WriteFile(dir.Sub("qseald.service"), unit);
}

TEST(ServiceUnitTest, SystemdAnalyzeVerifiesTheUnitWithTheBuiltBinary) {
  testing::TempDir tmp;
  WriteUnitWithBuiltBinary(tmp);
  testing::CommandResult r =
      testing::RunCommand("cd " + testing::ShellQuote(tmp.path().string()) +
                          " && systemd-analyze verify ./qseald.service 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "");  // systemd warns on stderr about what it ignores
}

// systemd 252 scores a unit file without a running systemd (--offline=yes); --threshold=20 makes
// it exit non-zero above an exposure of 2.0, and the printed score is checked as well.
TEST(ServiceUnitTest, SystemdAnalyzeSecurityExposureIsAtMostTwo) {
  testing::TempDir tmp;
  WriteUnitWithBuiltBinary(tmp);
  testing::CommandResult r = testing::RunCommand(
      "cd " + testing::ShellQuote(tmp.path().string()) +
      " && systemd-analyze security --offline=yes --threshold=20 --no-pager ./qseald.service 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::smatch m;
  const std::regex overall(R"(Overall exposure level for qseald\.service: ([0-9]+\.[0-9]))");
  ASSERT_TRUE(std::regex_search(r.output, m, overall)) << r.output;
  EXPECT_LE(std::stod(m[1].str()), 2.0) << r.output;
}

TEST(ServiceUnitTest, SandboxDirectivesOfTheSecurityReview) {
  const std::string unit = UnitText();
  // Present and empty: no capability at all, not even in the bounding set.
  ASSERT_EQ(Values(unit, "CapabilityBoundingSet").size(), 1u);
  EXPECT_EQ(Value(unit, "CapabilityBoundingSet"), "");
  EXPECT_EQ(Value(unit, "NoNewPrivileges"), "yes");
  EXPECT_EQ(Values(unit, "SystemCallFilter"),
            (std::vector<std::string>{"@system-service", "~@privileged"}));
  EXPECT_EQ(Value(unit, "ProtectProc"), "invisible");
  EXPECT_EQ(Value(unit, "RestrictSUIDSGID"), "yes");
  EXPECT_EQ(Value(unit, "MemoryDenyWriteExecute"), "yes");
  EXPECT_EQ(Value(unit, "LimitCORE"), "0");
  EXPECT_EQ(Value(unit, "ProtectSystem"), "strict");
  // The PCIe HSM exception: no directive may hide device nodes or turn on a device allow-list
  // (ProtectClock=yes implies DeviceAllow=char-rtc).
  for (const char* key : {"PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"}) {
    EXPECT_TRUE(Values(unit, key).empty()) << key;
  }
}

TEST(ServiceUnitTest, RestartsAfterFailuresButNotAfterBadConfiguration) {
  const std::string unit = UnitText();
  EXPECT_EQ(Value(unit, "Restart"), "on-failure");
  std::istringstream prevent(Value(unit, "RestartPreventExitStatus"));
  std::set<int> codes;
  for (int code; prevent >> code;) codes.insert(code);
  EXPECT_EQ(codes, (std::set<int>{kExitUsage, kExitConfig}));
  // qseald drains for up to drain_timeout (30 s by default) on SIGTERM: systemd must wait longer.
  EXPECT_EQ(Value(unit, "TimeoutStopSec"), "60");
  EXPECT_NE(Value(unit, "ExecStartPre").find("--check-config"), std::string::npos);
}

}  // namespace
}  // namespace qseal
