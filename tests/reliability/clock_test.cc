// Scenario 6, clock: the wall clock jumps past the seal certificate's notAfter while qseald runs
// (libfaketime with FAKETIME_DONT_FAKE_MONOTONIC=1, its offset file rewritten mid-run). No seal
// is made with a signing time past the certificate's expiry: documents are refused with a reason
// instead of sealed. The monotonic timers (leases, sign timeouts, back-off) are unaffected, and
// once the clock is back, sealing carries on.
//
// Seeded: QSEAL_SEED=<n> replays a run.
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/reliability/scenario.h"

namespace qseal::reliability {
namespace {

namespace fs = std::filesystem;
using testing::Qseald;
using testing::TempDir;

constexpr const char* kFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

// Days from now until the certificate's notAfter.
long DaysLeft(const std::string& cert_pem) {
  testing::CommandResult r =
      testing::RunCommand("date -d \"$(openssl x509 -noout -enddate -in " +
                          testing::ShellQuote(cert_pem) + " | cut -d= -f2)\" +%s");
  long end = std::strtol(r.output.c_str(), nullptr, 10);
  return (end - static_cast<long>(std::time(nullptr))) / 86400;
}

std::string Submit(Qseald& qseald, Ledger& ledger, const std::string& bytes, int* status) {
  std::string original = ledger.Keep(bytes);
  auto r = qseald.Client().Request("POST", "/v1/documents?profile=default", bytes);
  *status = r.ok() ? r->status : 0;
  if (!r.ok() || r->status != 202) return "";
  std::string id = nlohmann::json::parse(r->body)["id"];
  ledger.Accepted({Via::kApi, id, "clock", original});
  return id;
}

std::string Wait(Qseald& qseald, const std::string& id, nlohmann::json* status) {
  for (int i = 0; i < 600; ++i) {
    auto r = qseald.Client().Request("GET", "/v1/documents/" + id);
    if (r.ok() && r->status == 200) {
      *status = nlohmann::json::parse(r->body);
      std::string s = (*status)["status"];
      if (s == "sealed" || s == "failed") return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "timeout";
}

TEST(ReliabilityClockTest, WallClockJumpPastCertificateExpirySealsNothingPastIt) {
  const std::uint64_t seed = SeedFromEnv();
  SCOPED_TRACE("QSEAL_SEED=" + std::to_string(seed));
  if (!fs::exists(kFaketime)) GTEST_SKIP() << kFaketime << " is not installed (faketime)";
  TempDir tmp;
  const std::string offset_file = tmp.Sub("faketime");
  testing::WriteFile(offset_file, "+0\n");
  testing::QsealdOptions o = ScenarioOptions();
  o.extra_env = {std::string("LD_PRELOAD=") + kFaketime, "FAKETIME_DONT_FAKE_MONOTONIC=1",
                 "FAKETIME_TIMESTAMP_FILE=" + offset_file, "FAKETIME_NO_CACHE=1"};
  Qseald qseald(tmp.Sub("d"), o);
  Ledger ledger(tmp.Sub("ledger"));
  RunWindow window = RunWindow::StartNow();
  ASSERT_TRUE(Started(qseald));
  const long days = DaysLeft(qseald.var() + "/pki/seal.pem");
  ASSERT_GT(days, 0);

  // Before the jump: sealed.
  LoadOptions lo = LoadFor(qseald, seed);
  lo.max_api_documents = 60;
  lo.max_watch_documents = 20;
  LoadGenerator load(ledger, lo);
  load.Start();
  ASSERT_TRUE(load.WaitUntilDone(std::chrono::minutes(2)));
  load.Stop();
  RunOutputs out{qseald.api(), qseald.token(), {qseald.watch_root()}, qseald.ca_pem()};
  ASSERT_TRUE(WaitUntilSettled(ledger, out, std::chrono::seconds(120)).ok());

  // The wall clock jumps past notAfter (a year and more): nothing may be sealed now.
  testing::WriteFile(offset_file, "+" + std::to_string(days + 400) + "d\n");
  std::vector<std::string> after;
  ASSERT_TRUE(testing::RunCommand("sleep 0.2").exit_code == 0);  // libfaketime re-reads the file
  for (int i = 0; i < 5; ++i) {
    int status = 0;
    std::string id = Submit(qseald, ledger, "after the jump " + std::to_string(i), &status);
    if (!id.empty()) after.push_back(id);
  }
  CheckOptions may;
  for (const auto& id : after) {
    nlohmann::json st;
    std::string final_state = Wait(qseald, id, &st);
    EXPECT_NE(final_state, "sealed") << id << " sealed with the clock past the certificate";
    EXPECT_EQ(final_state, "failed") << id;
    EXPECT_NE(st.dump().find("validity"), std::string::npos) << st.dump();
    may.may_fail.insert(id);
  }
  // The process lives on and its monotonic timers still run: /livez answers.
  auto live = qseald.Client().Request("GET", "/livez");
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->status, 200);

  // The clock comes back: sealing carries on.
  testing::WriteFile(offset_file, "+0\n");
  int status = 0;
  std::string back = Submit(qseald, ledger, "after the clock came back", &status);
  ASSERT_FALSE(back.empty()) << status;
  nlohmann::json st;
  EXPECT_EQ(Wait(qseald, back, &st), "sealed") << st.dump();

  // Every seal of the run: signing time within the certificate and the real run window.
  ExpectRunKeptPromises(qseald, ledger, window, may);
}

}  // namespace
}  // namespace qseal::reliability
