// The embedded default as a user starts it: scripts/start (packages and build skipped) provisions
// a fresh var/, starts its loopback test TSA, the test CA's OCSP responder and qseald with the
// default-t and default-lt profiles; qsealctl seals a file B-LT, B-T and B-B over HTTPS, openssl
// checks the seals, the tokens and the B-LT seal's OCSP response, and SIGTERM to the script stops
// qseald, the TSA and the responder.
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include "tests/testing/qseald_harness.h"
#include "tests/testing/testing.h"
#include "tests/tsa/test_tsa.h"

namespace qseal {
namespace {

using testing::RunCommand;
using testing::ShellQuote;

bool Listening(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

TEST(StartScriptTest, EmbeddedDefaultSealsBltAndBtWithItsTestTsaAndResponderAndStopsThem) {
  testing::TempDir tmp;
  const std::string var = tmp.Sub("var");
  const int api = testing::FreeLoopbackPort(), metrics = testing::FreeLoopbackPort(),
            tsa = testing::FreeLoopbackPort(), ocsp = testing::FreeLoopbackPort();
  ASSERT_TRUE(api && metrics && tsa && ocsp);
  const std::string api_addr = "127.0.0.1:" + std::to_string(api);
  testing::ChildProcess start;
  ASSERT_TRUE(start
                  .Start({"/bin/bash", std::string(QSEAL_SOURCE_DIR) + "/scripts/start"},
                         tmp.Sub("start.log"),
                         {"QSEAL_SKIP_BUILD=1", "QSEAL_BUILD_DIR=" + std::string(QSEAL_BINARY_DIR),
                          "QSEAL_VAR=" + var, "QSEAL_API_ADDR=" + api_addr,
                          "QSEAL_METRICS_ADDR=127.0.0.1:" + std::to_string(metrics),
                          "QSEAL_TSA_PORT=" + std::to_string(tsa),
                          "QSEAL_OCSP_PORT=" + std::to_string(ocsp)})
                  .ok());
  ASSERT_NE(start.WaitForLine("\"qseald started\"", std::chrono::seconds(120)), "")
      << start.Stderr() << testing::ReadFile(var + "/tsa/tsa.log");
  EXPECT_TRUE(Listening(tsa));
  EXPECT_TRUE(Listening(ocsp));

  const std::string file = tmp.Sub("invoice.xml");
  testing::WriteFile(file, "<Invoice>scripts/start b-t</Invoice>\n");
  const std::string env = "QSEAL_VAR=" + ShellQuote(var) + " QSEAL_API_ADDR=" + api_addr + " ";
  const std::string qsealctl = std::string(QSEAL_BINARY_DIR) + "/cli/qsealctl";
  for (const std::string profile : {"default-lt", "default-t", "default"}) {
    const std::string out = tmp.Sub(profile);
    testing::CommandResult r =
        RunCommand(env + qsealctl + " submit " + ShellQuote(file) + " --profile " + profile +
                   " --out " + ShellQuote(out) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output << start.Stderr();
    const std::string seal = out + "/invoice.xml.p7s";
    EXPECT_EQ(testing::OpensslVerify(seal, var + "/pki/ca.pem", file), "") << profile;
    testing::TimestampedSeal parts = testing::ReadTimestampedSeal(testing::ReadFile(seal));
    ASSERT_TRUE(parts.parsed) << profile;
    if (profile == "default") {
      EXPECT_TRUE(parts.tokens.empty());
      continue;
    }
    ASSERT_EQ(parts.tokens.size(), 1u);
    // The token is the TSA's: it verifies against the CA scripts/start made for the TSA.
    EXPECT_EQ(testing::OpensslTsVerify(parts.tokens[0], parts.signature, var + "/tsa/ca.pem",
                                       tmp.Sub("token.tsr")),
              "");
    std::vector<std::string> ocsp_responses =
        testing::OcspResponsesInSeal(testing::ReadFile(seal), tmp.Sub("seal.der"));
    if (profile == "default-t") {
      EXPECT_TRUE(ocsp_responses.empty());
      continue;
    }
    ASSERT_EQ(ocsp_responses.size(), 1u);
    EXPECT_EQ(testing::OpensslOcspCheck(ocsp_responses[0], var + "/pki/ca.pem",
                                        var + "/pki/seal.pem", tmp.Sub("seal.ocsp")),
              "");
  }

  start.Signal(SIGTERM);
  EXPECT_EQ(start.Wait(std::chrono::seconds(60)), 0) << start.Stderr();
  EXPECT_TRUE(
      testing::WaitFor([&] { return !Listening(tsa) && !Listening(api) && !Listening(ocsp); },
                       std::chrono::seconds(10)));
}

}  // namespace
}  // namespace qseal
