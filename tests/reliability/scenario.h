// Shared steps of the reliability scenarios: a qseald configured for fast retries, and the
// common ending (settle, check every seal, stop cleanly, check the queue's counts).
//
// Test-only; thread-compatible.
#pragma once

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/reliability/checker.h"
#include "tests/reliability/load_generator.h"
#include "tests/testing/qseald_harness.h"

namespace qseal::reliability {

// Replaces `key = value` (the first occurrence of "key = ") in a config text.
inline void SetConfig(std::string& conf, const std::string& key, const std::string& value) {
  std::size_t p = conf.find("\n" + key + " = ");
  if (p == std::string::npos) return;
  std::size_t end = conf.find('\n', p + 1);
  conf.replace(p + 1, end - p - 1, key + " = " + value);
}

// Replaces the n-th (0-based) `module = "..."` line of the config.
inline void SetModule(std::string& conf, int n, const std::string& module) {
  std::size_t p = 0;
  for (int i = 0; i <= n; ++i) {
    p = conf.find("\nmodule = ", i == 0 ? 0 : p + 1);
    if (p == std::string::npos) return;
  }
  std::size_t end = conf.find('\n', p + 1);
  conf.replace(p + 1, end - p - 1, "module = \"" + module + "\"");
}

// Adds `line` to every [[partition]] table (after its `sessions = ` line).
inline void AddToPartitions(std::string& conf, const std::string& line) {
  for (std::size_t p = conf.find("\nsessions = "); p != std::string::npos;
       p = conf.find("\nsessions = ", p + 1)) {
    std::size_t end = conf.find('\n', p + 1);
    conf.insert(end, "\n" + line);
  }
}

// Sets `sessions = n` in every [[partition]] table.
inline void SetSessions(std::string& conf, int n) {
  for (std::size_t p = conf.find("\nsessions = "); p != std::string::npos;
       p = conf.find("\nsessions = ", p + 1)) {
    std::size_t end = conf.find('\n', p + 1);
    conf.replace(p + 1, end - p - 1, "sessions = " + std::to_string(n));
  }
}

// The text of qseald's /metrics at `metrics_addr`; empty when the scrape fails.
inline std::string ScrapeMetrics(const std::string& metrics_addr) {
  cli::HttpClient client(metrics_addr, "", std::chrono::seconds(10));
  auto r = client.Request("GET", "/metrics");
  if (!r.ok() || r->status != 200) return "";
  return r->body;
}

// The sum of the samples of metric `name` (exactly, before its labels) in `metrics_text` whose
// label text contains every string of `labels` (e.g. {"reason=\"device_error\""}).
inline double MetricSum(const std::string& metrics_text, const std::string& name,
                        const std::vector<std::string>& labels = {}) {
  double total = 0;
  std::istringstream in(metrics_text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    if (line[name.size()] != '{' && line[name.size()] != ' ') continue;
    const std::string label_text = line.substr(name.size(), line.rfind(' ') - name.size());
    bool match = true;
    for (const std::string& l : labels) match = match && label_text.find(l) != std::string::npos;
    if (match) total += std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
  }
  return total;
}

// Fast retries so transient faults resolve within a test's time.
inline testing::QsealdOptions ScenarioOptions() {
  testing::QsealdOptions o;
  o.edit_config = [](std::string& conf) {
    SetConfig(conf, "retry_backoff", "\"200ms\"");
    SetConfig(conf, "max_attempts", "20");  // queue retries (the first "max_attempts")
    SetConfig(conf, "drain_timeout", "\"10s\"");
  };
  return o;
}

// Starts qseald; a failure carries its stderr.
inline ::testing::AssertionResult Started(testing::Qseald& qseald) {
  Status started = qseald.Start();
  if (started.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << started << "\n" << qseald.Stderr();
}

// Load aimed at a running qseald: its API, token and watched folder, with the scenario's seed.
inline LoadOptions LoadFor(const testing::Qseald& qseald, std::uint64_t seed) {
  LoadOptions lo;
  lo.api = qseald.api();
  lo.token = qseald.token();
  lo.ca_file = qseald.ca_pem();
  lo.watch_root = qseald.watch_root();
  lo.seed = seed;
  return lo;
}

inline int Rounds(int default_rounds) {
  const char* env = std::getenv("QSEAL_RELIABILITY_ROUNDS");
  return env != nullptr && *env != '\0' ? std::max(1, std::atoi(env)) : default_rounds;
}

// The warn/error lines of every qseald log in `dir` (qseald.N.log), then its partition and module
// lines (why no partition is up), for a failure message.
inline std::string LogDigest(const std::string& dir) {
  return testing::RunCommand("cd " + testing::ShellQuote(dir) +
                             " && grep -H -E '\"(warn|error)\"|crash point' qseald.*.log | "
                             "cut -c1-400 | tail -40; grep -H -E 'partition|module' qseald.*.log | "
                             "grep -v 'document not sealed' | cut -c1-400 | tail -20; "
                             "ls -R var/watch | head -40")
      .output;
}

// Waits for every accepted document to be final, checks the run with the daemon up, stops it
// (exit 0 expected) and checks the queue's counts.
inline void ExpectRunKeptPromises(testing::Qseald& qseald, const Ledger& ledger, RunWindow& window,
                                  const CheckOptions& options = {},
                                  std::chrono::seconds settle = std::chrono::seconds(180),
                                  const std::string& watch_root = "",
                                  const std::string& queue_path = "") {
  RunOutputs out{qseald.api(),
                 qseald.token(),
                 {watch_root.empty() ? qseald.watch_root() : watch_root},
                 qseald.ca_pem()};
  Status settled = WaitUntilSettled(ledger, out, settle);
  EXPECT_TRUE(settled.ok()) << settled << "\nledger: " << ledger.Summary() << "\n"
                            << LogDigest(qseald.var() + "/..");
  window.Close();
  CheckReport report = CheckRun(ledger, out, qseald.ca_pem(), window, options);
  EXPECT_TRUE(report.ok()) << report.ToString() << "\nledger: " << ledger.Summary();
  EXPECT_GT(report.seals_verified, 0u);
  EXPECT_EQ(qseald.Stop(), 0) << qseald.Stderr().substr(0, 4000);
  CheckReport counts =
      CheckQueue(ledger, queue_path.empty() ? qseald.var() + "/queue" : queue_path);
  EXPECT_TRUE(counts.ok()) << counts.ToString();
}

}  // namespace qseal::reliability
