// conf/qseald.service: systemd accepts it, and its restart policy matches qseald's exit codes
// (restart after an I/O or HSM failure, never after a configuration or usage error).
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "common/exit_codes.h"
#include "tests/testing/testing.h"

namespace qseal {
namespace {

std::string UnitText() {
  return testing::ReadFile(std::string(QSEAL_SOURCE_DIR) + "/conf/qseald.service");
}

// The values of `key=` in the unit (the last one wins, as in systemd).
std::string Value(const std::string& unit, const std::string& key) {
  std::istringstream in(unit);
  std::string value;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + "=", 0) == 0) value = line.substr(key.size() + 1);
  }
  return value;
}

TEST(ServiceUnitTest, SystemdAnalyzeVerifiesTheUnitWithTheBuiltBinary) {
  std::string unit = UnitText();
  const std::string installed = "/usr/local/bin/qseald";
  const std::string built = std::string(QSEAL_BINARY_DIR) + "/daemon/qseald";
  for (std::size_t at; (at = unit.find(installed)) != std::string::npos;) {
    unit.replace(at, installed.size(), built);
  }
  testing::TempDir tmp;
  testing::WriteFile(tmp.Sub("qseald.service"), unit);
  testing::CommandResult r =
      testing::RunCommand("cd " + testing::ShellQuote(tmp.path().string()) +
                          " && systemd-analyze verify ./qseald.service 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "");  // systemd warns on stderr about what it ignores
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
