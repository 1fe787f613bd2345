// The real qseald's /metrics: counters against what was sealed (every seal verified by openssl),
// promtool's verdict, no secrets or paths in the exposition, the dashboard and alert rules naming
// only exported metrics, and a real Prometheus server scraping the daemon with conf/prometheus.yml.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "tests/metrics/metrics_test_util.h"
#include "tests/metrics/promql_names.h"
#include "tests/testing/qseald_harness.h"
#include "tests/testing/testing.h"

namespace qseal::metrics {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test::SampleValue;

const std::string kSource = QSEAL_SOURCE_DIR;

// Starts qseald and finds its metrics address in the "qseald started" line.
class QsealdMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    qseald_ = std::make_unique<testing::Qseald>(tmp_.Sub("d"));
    Status started = qseald_->Start();
    ASSERT_TRUE(started.ok()) << started;
    const std::string line =
        qseald_->process().WaitForLine("\"qseald started\"", std::chrono::seconds(5));
    ASSERT_FALSE(line.empty());
    metrics_addr_ = nlohmann::json::parse(line)["metrics"];
  }

  void TearDown() override {
    if (qseald_ != nullptr) {
      EXPECT_EQ(qseald_->Stop(), 0) << qseald_->Stderr();
    }
  }

  std::string Scrape() {
    cli::HttpClient client(metrics_addr_, "", seconds(30));
    auto reply = client.Request("GET", "/metrics");
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return "";
    EXPECT_EQ(reply->status, 200);
    return reply->body;
  }

  // Scrapes until `series` has `value` (the engine counts right after its commit, which may be
  // a moment after the API answered); returns the last scrape.
  std::string ScrapeUntil(const std::string& series, double value) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(30);
    std::string text;
    while (std::chrono::steady_clock::now() < deadline) {
      text = Scrape();
      if (SampleValue(text, series) == value) break;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return text;
  }

  // POSTs a document with ?wait and checks the seal with openssl.
  void SealThroughApi(const std::string& name, const std::string& bytes) {
    auto c = qseald_->Client();
    auto r =
        c.Request("POST", "/v1/documents?profile=default&wait=30", bytes, {{"X-Filename", name}});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
    const std::string id = nlohmann::json::parse(r->body)["id"];
    auto seal = c.Request("GET", "/v1/documents/" + id + "/seal");
    ASSERT_TRUE(seal.ok());
    ASSERT_EQ(seal->status, 200);
    testing::WriteFile(tmp_.Sub(name), bytes);
    testing::WriteFile(tmp_.Sub(name + ".p7s"), seal->body);
    EXPECT_EQ(testing::OpensslVerify(tmp_.Sub(name + ".p7s"), qseald_->ca_pem(), tmp_.Sub(name)),
              "");
  }

  testing::TempDir tmp_;
  std::unique_ptr<testing::Qseald> qseald_;
  std::string metrics_addr_;
};

TEST_F(QsealdMetricsTest, CountersMatchWhatWasSealedAndPromtoolIsSilent) {
  constexpr int kApiDocs = 5;
  std::uint64_t api_bytes = 0;
  for (int i = 0; i < kApiDocs; ++i) {
    const std::string doc = "<invoice n=\"" + std::to_string(i) + "\">" +
                            std::string(static_cast<std::size_t>(100 * (i + 1)), 'x') +
                            "</invoice>\n";
    api_bytes += doc.size();
    SealThroughApi("metrics-doc-" + std::to_string(i) + ".xml", doc);
  }
  // Two documents through the watched folder.
  const std::string root = qseald_->watch_root();
  for (int i = 0; i < 2; ++i) {
    const std::string name = "watched-" + std::to_string(i) + ".txt";
    testing::WriteFile(root + "/inbox/." + name, "watched document " + std::to_string(i));
    std::filesystem::rename(root + "/inbox/." + name, root + "/inbox/" + name);
  }
  // One refused request: a wrong token.
  cli::HttpClient intruder = qseald_->Client("not-the-token");
  auto refused = intruder.Request("POST", "/v1/documents?profile=default", "x");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 401);

  const std::string text =
      ScrapeUntil(R"(qseal_documents_sealed_total{profile="default",source="watch"})", 2);
  for (int i = 0; i < 2; ++i) {
    const std::string name = "watched-" + std::to_string(i) + ".txt";
    EXPECT_EQ(testing::OpensslVerify(root + "/outbox/" + name + ".p7s", qseald_->ca_pem(),
                                     root + "/outbox/" + name),
              "");
  }

  EXPECT_EQ(SampleValue(text, R"(qseal_documents_sealed_total{profile="default",source="api"})"),
            kApiDocs)
      << text;
  EXPECT_EQ(SampleValue(text, R"(qseal_documents_sealed_total{profile="default",source="watch"})"),
            2);
  EXPECT_EQ(SampleValue(text, R"(qseal_documents_accepted_total{profile="default",source="api"})"),
            kApiDocs);
  EXPECT_EQ(SampleValue(text, R"(qseal_documents_accepted_bytes_total{source="api"})"),
            static_cast<double>(api_bytes));
  EXPECT_EQ(SampleValue(text, R"(qseal_documents_rejected_total{code="401",source="api"})"), 1);
  EXPECT_EQ(
      SampleValue(text, R"(qseal_documents_sealed_total{profile="invoice-p7m",source="api"})"), 0);
  EXPECT_EQ(SampleValue(text, R"(qseal_watch_files_claimed_total{profile="default",watch="0"})"),
            2);
  EXPECT_EQ(SampleValue(text, R"(qseal_watch_files_published_total{profile="default",watch="0"})"),
            2);
  EXPECT_EQ(
      SampleValue(
          text,
          R"(qseal_http_requests_total{method="POST",route="/v1/documents",status_class="2xx"})"),
      kApiDocs);
  EXPECT_EQ(
      SampleValue(
          text,
          R"(qseal_http_requests_total{method="GET",route="/v1/documents/{id}/seal",status_class="2xx"})"),
      kApiDocs);
  EXPECT_EQ(
      SampleValue(text, R"(qseal_document_accept_to_sealed_seconds_count{profile="default"})"),
      kApiDocs + 2);
  EXPECT_GE(*SampleValue(text, "qseal_hsm_sign_seconds_count"), kApiDocs + 2);
  EXPECT_GE(*SampleValue(text, "qseal_engine_hash_seconds_count"), kApiDocs + 2);
  EXPECT_GE(*SampleValue(text, "qseal_queue_wait_seconds_count"), kApiDocs + 2);
  EXPECT_EQ(SampleValue(text, R"(qseal_queue_documents{state="sealed"})"), kApiDocs + 2);
  EXPECT_EQ(SampleValue(text, R"(qseal_queue_documents{state="queued"})"), 0);
  EXPECT_EQ(SampleValue(text, R"(qseal_hsm_requests_total{outcome="succeeded"})"), kApiDocs + 2);
  EXPECT_EQ(SampleValue(text, R"(qseal_hsm_partition_up{partition="p1"})"), 1);
  EXPECT_EQ(SampleValue(text, R"(qseal_hsm_partition_up{partition="p2"})"), 1);
  EXPECT_EQ(SampleValue(text, R"(qseal_hsm_partition_state{partition="p1",state="up"})"), 1);
  EXPECT_EQ(SampleValue(text, "qseal_queue_saturated"), 0);
  EXPECT_EQ(SampleValue(text, R"(qseal_backpressure_throttled{stage="queue"})"), 0);
  EXPECT_GE(*SampleValue(text, R"(qseal_hsm_signatures_total{partition="p1"})") +
                *SampleValue(text, R"(qseal_hsm_signatures_total{partition="p2"})"),
            kApiDocs + 2);
  EXPECT_GT(*SampleValue(text, "qseal_process_resident_memory_bytes"), 1 << 20);
  // The audit trail: startup, config, one sealed record per document and their intents at least.
  EXPECT_EQ(SampleValue(text, "qseal_audit_healthy"), 1);
  EXPECT_GE(*SampleValue(text, "qseal_audit_records_total"), 2 + 2 * (kApiDocs + 2));
  EXPECT_GE(*SampleValue(text, "qseal_audit_last_sequence"),
            *SampleValue(text, "qseal_audit_records_total"));
  EXPECT_GT(*SampleValue(text, "qseal_audit_syncs_total"), 0);
  EXPECT_EQ(SampleValue(text, "qseal_audit_failures_total"), 0);

  // The certificate's not-after, as openssl reads it.
  testing::CommandResult end = testing::RunCommand(
      "date -u -d \"$(openssl x509 -noout -enddate -in " +
      testing::ShellQuote(qseald_->var() + "/pki/seal.pem") + " | cut -d= -f2)\" +%s");
  ASSERT_EQ(end.exit_code, 0) << end.output;
  EXPECT_EQ(SampleValue(text, R"(qseal_hsm_certificate_not_after_seconds{key="seal"})"),
            std::stod(end.output));

  // Nothing secret or private: no token, PIN, document names or paths.
  EXPECT_EQ(text.find(qseald_->token()), std::string::npos);
  EXPECT_EQ(text.find(tmp_.path().string()), std::string::npos);
  EXPECT_EQ(text.find("metrics-doc-"), std::string::npos);
  EXPECT_EQ(text.find("watched-"), std::string::npos);
  const std::string pin = testing::ReadFile(qseald_->var() + "/pin");
  EXPECT_EQ(text.find("\"" + pin.substr(0, pin.find('\n')) + "\""), std::string::npos);

  testing::WriteFile(tmp_.Sub("scrape.txt"), text);
  testing::CommandResult lint = testing::RunCommand("promtool check metrics < " +
                                                    testing::ShellQuote(tmp_.Sub("scrape.txt")));
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  EXPECT_EQ(lint.output, "");
}

// Every PromQL query of the dashboard and of the alert rules selects only exported names.
TEST_F(QsealdMetricsTest, DashboardAndAlertsNameOnlyExportedMetrics) {
  const std::set<std::string> exported = test::SelectableNames(Scrape());
  ASSERT_GT(exported.size(), 40u);

  std::vector<std::string> exprs;
  const nlohmann::json dashboard =
      nlohmann::json::parse(testing::ReadFile(kSource + "/conf/grafana/qseal.json"));
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& j) {
    if (j.is_object()) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "expr" && it->is_string()) exprs.push_back(*it);
        walk(*it);
      }
    } else if (j.is_array()) {
      for (const auto& e : j) walk(e);
    }
  };
  walk(dashboard);
  EXPECT_GE(exprs.size(), 20u);
  std::size_t dashboard_exprs = exprs.size();

  // The alert rules: every "expr:" line.
  std::istringstream rules(testing::ReadFile(kSource + "/conf/alerts.yml"));
  std::string line;
  while (std::getline(rules, line)) {
    const auto pos = line.find("expr: ");
    if (pos != std::string::npos) exprs.push_back(line.substr(pos + 6));
  }
  EXPECT_GE(exprs.size(), dashboard_exprs + 10);

  for (std::size_t i = 0; i < exprs.size(); ++i) {
    const bool is_rule = i >= dashboard_exprs;
    const std::vector<std::string> names = test::SelectedNames(exprs[i]);
    EXPECT_FALSE(names.empty()) << exprs[i];
    for (const std::string& name : names) {
      // `up` is the series Prometheus itself records per target.
      if (is_rule && name == "up") continue;
      EXPECT_TRUE(exported.count(name)) << "\"" << name << "\" in " << exprs[i];
    }
  }
}

// A port that was free a moment ago (Prometheus cannot report the port it picked for :0).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  // NOLINTNEXTLINE: the sockets API takes a sockaddr*.
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string UrlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

TEST_F(QsealdMetricsTest, PrometheusServerStoresTheSeriesAndSeesTheRate) {
  // conf/prometheus.yml and conf/alerts.yml, with our daemon as the target and 1 s intervals.
  std::string conf = testing::ReadFile(kSource + "/conf/prometheus.yml");
  const std::string target = "targets: [\"127.0.0.1:9464\"]";
  ASSERT_NE(conf.find(target), std::string::npos);
  conf.replace(conf.find(target), target.size(), "targets: [\"" + metrics_addr_ + "\"]");
  conf = std::regex_replace(conf, std::regex("scrape_interval: 15s"), "scrape_interval: 1s");
  conf =
      std::regex_replace(conf, std::regex("evaluation_interval: 15s"), "evaluation_interval: 1s");
  conf = std::regex_replace(conf, std::regex("scrape_timeout: 10s"), "scrape_timeout: 1s");
  std::filesystem::create_directories(tmp_.Sub("prom"));
  testing::WriteFile(tmp_.Sub("prom/prometheus.yml"), conf);
  std::filesystem::copy_file(kSource + "/conf/alerts.yml", tmp_.Sub("prom/alerts.yml"));
  testing::CommandResult check =
      testing::RunCommand("promtool check config " + tmp_.Sub("prom/prometheus.yml"));
  ASSERT_EQ(check.exit_code, 0) << check.output;

  const int port = FreePort();
  ASSERT_GT(port, 0);
  const std::string web = "127.0.0.1:" + std::to_string(port);
  testing::ChildProcess prometheus;
  ASSERT_TRUE(prometheus
                  .Start({"/usr/bin/prometheus", "--config.file=" + tmp_.Sub("prom/prometheus.yml"),
                          "--storage.tsdb.path=" + tmp_.Sub("prom/data"),
                          "--web.listen-address=" + web, "--log.level=info"},
                         tmp_.Sub("prometheus.log"))
                  .ok());
  ASSERT_FALSE(
      prometheus.WaitForLine("Server is ready to receive web requests", seconds(30)).empty())
      << prometheus.Stderr();

  cli::HttpClient api(web, "", seconds(10));
  auto query = [&](const std::string& promql) -> nlohmann::json {
    auto r = api.Request("GET", "/api/v1/query?query=" + UrlEncode(promql));
    if (!r.ok() || r->status != 200) return nlohmann::json::array();
    return nlohmann::json::parse(r->body)["data"]["result"];
  };

  // Seal documents while Prometheus scrapes every second, until it sees a non-zero rate.
  const std::string rate = R"(sum(rate(qseal_documents_sealed_total{source="api"}[10s])))";
  double seen_rate = 0;
  const auto deadline = std::chrono::steady_clock::now() + seconds(45);
  for (int i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
    SealThroughApi("p" + std::to_string(i) + ".txt", "document " + std::to_string(i));
    nlohmann::json result = query(rate);
    if (!result.empty()) {
      seen_rate = std::stod(result[0]["value"][1].get<std::string>());
      if (seen_rate > 0) break;
    }
    std::this_thread::sleep_for(milliseconds(200));
  }
  auto targets = api.Request("GET", "/api/v1/targets");
  EXPECT_GT(seen_rate, 0) << (targets.ok() ? targets->body : "") << prometheus.Stderr();

  // The target is up and the series are stored.
  nlohmann::json up = query(R"(up{job="qseald"})");
  ASSERT_EQ(up.size(), 1u) << up.dump();
  EXPECT_EQ(up[0]["value"][1], "1");
  for (const char* series :
       {"qseal_build_info", R"(qseal_hsm_partition_up{partition="p1"})", "qseal_queue_documents",
        "qseal_hsm_sign_seconds_bucket", "qseal_process_open_fds"}) {
    EXPECT_FALSE(query(series).empty()) << series;
  }
  auto series = api.Request(
      "GET", "/api/v1/series?match[]=" + UrlEncode(R"({__name__=~"qseal_documents_.*"})"));
  ASSERT_TRUE(series.ok());
  EXPECT_NE(series->body.find("qseal_documents_sealed_total"), std::string::npos);
  // The shipped alert rules were loaded.
  auto rules = api.Request("GET", "/api/v1/rules");
  ASSERT_TRUE(rules.ok());
  EXPECT_NE(rules->body.find("QsealAllPartitionsDown"), std::string::npos);

  prometheus.Signal(SIGTERM);
  EXPECT_EQ(prometheus.Wait(seconds(30)), 0) << prometheus.Stderr();
}

}  // namespace
}  // namespace qseal::metrics
