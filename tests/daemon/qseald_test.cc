// Runs the real qseald binary: configuration errors, liveness, clean stop on SIGTERM.
#include <signal.h>

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

}  // namespace
}  // namespace qseal
