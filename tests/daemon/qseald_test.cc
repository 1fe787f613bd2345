// Runs the real qseald binary: configuration errors, liveness, clean stop on SIGTERM.
#include <signal.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "common/exit_codes.h"
#include "tests/testing/testing.h"

namespace qseal {
namespace {

using testing::ChildProcess;
using testing::TempDir;

const std::string kQseald = std::string(QSEAL_BINARY_DIR) + "/daemon/qseald";

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
  std::string conf = testing::ReadFile(std::string(QSEAL_SOURCE_DIR) + "/conf/qseald.toml");
  testing::WriteFile(tmp.Sub("q.toml"), conf);
  ChildProcess qseald;
  ASSERT_TRUE(qseald
                  .Start({kQseald, "--config", tmp.Sub("q.toml")}, tmp.Sub("stderr.log"),
                         {"QSEAL_VAR=" + tmp.Sub("var"), "QSEAL_API_ADDR=127.0.0.1:0",
                          "QSEAL_METRICS_ADDR=127.0.0.1:0"})
                  .ok());
  std::string line = qseald.WaitForLine("\"qseald started\"", std::chrono::seconds(30));
  ASSERT_FALSE(line.empty()) << qseald.Stderr();
  std::string api = nlohmann::json::parse(line)["api"];
  cli::HttpClient client(api, "");
  auto live = client.Request("GET", "/livez");
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->status, 200);
  auto nothing = client.Request("GET", "/no/such/path");
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(nothing->status, 404);
  EXPECT_EQ(nothing->headers["content-type"], "application/problem+json");
  qseald.Signal(SIGTERM);
  EXPECT_EQ(qseald.Wait(std::chrono::seconds(30)), 0) << qseald.Stderr();
}

}  // namespace
}  // namespace qseal
