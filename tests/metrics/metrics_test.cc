// Unit tests of metrics/: exposition content, histogram buckets, snapshot sources, label-set
// bounds, concurrent counting, promtool's verdict on the exposition, the /metrics listener.
#include "metrics/metrics.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cli/http_client.h"
#include "tests/metrics/metrics_test_util.h"
#include "tests/metrics/promql_names.h"
#include "tests/testing/testing.h"

namespace qseal::metrics {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using test::SampleValue;

TEST(MetricsTest, CountsDocumentsBySourceAndProfile) {
  Metrics m;
  m.DocumentAccepted("api", "invoices", 100);
  m.DocumentAccepted("api", "invoices", 50);
  m.DocumentAccepted("watch", "scans", 7);
  m.DocumentSealed("api", "invoices", milliseconds(3));
  m.DocumentFailed("watch", "scans", "kFailedPrecondition");
  m.DocumentRequeued("api", "invoices", "kUnavailable");
  m.DocumentRejected("api", "413");
  const std::string text = m.Serialize();
  EXPECT_EQ(SampleValue(text, R"(qseal_documents_accepted_total{profile="invoices",source="api"})"),
            2);
  EXPECT_EQ(SampleValue(text, R"(qseal_documents_accepted_total{profile="scans",source="watch"})"),
            1);
  EXPECT_EQ(SampleValue(text, R"(qseal_documents_accepted_bytes_total{source="api"})"), 150);
  EXPECT_EQ(SampleValue(text, R"(qseal_documents_sealed_total{profile="invoices",source="api"})"),
            1);
  EXPECT_EQ(
      SampleValue(
          text,
          R"(qseal_documents_failed_total{code="kFailedPrecondition",profile="scans",source="watch"})"),
      1);
  EXPECT_EQ(
      SampleValue(
          text,
          R"(qseal_documents_requeued_total{code="kUnavailable",profile="invoices",source="api"})"),
      1);
  EXPECT_EQ(SampleValue(text, R"(qseal_documents_rejected_total{code="413",source="api"})"), 1);
  EXPECT_EQ(
      SampleValue(text, R"(qseal_document_accept_to_sealed_seconds_count{profile="invoices"})"), 1);
}

TEST(MetricsTest, DeclaredProfilesStartAtZero) {
  Metrics m;
  m.DeclareProfile("p1");
  const std::string text = m.Serialize();
  for (const char* source : {"api", "watch"}) {
    const std::string labels = std::string(R"({profile="p1",source=")") + source + "\"}";
    EXPECT_EQ(SampleValue(text, "qseal_documents_sealed_total" + labels), 0) << text;
    EXPECT_EQ(SampleValue(text, "qseal_documents_accepted_total" + labels), 0) << text;
  }
}

TEST(MetricsTest, SecondsHistogramUsesExponentialBucketsFrom100Microseconds) {
  Metrics m;
  m.ObserveHash(microseconds(100));      // le 0.0001
  m.ObserveHash(microseconds(150));      // le 0.0002
  m.ObserveHash(microseconds(401));      // le 0.0008
  m.ObserveHash(std::chrono::hours(1));  // +Inf only
  const std::string text = m.Serialize();
  EXPECT_EQ(SampleValue(text, R"(qseal_engine_hash_seconds_bucket{le="0.0001"})"), 1) << text;
  EXPECT_EQ(SampleValue(text, R"(qseal_engine_hash_seconds_bucket{le="0.0002"})"), 2);
  EXPECT_EQ(SampleValue(text, R"(qseal_engine_hash_seconds_bucket{le="0.0004"})"), 2);
  EXPECT_EQ(SampleValue(text, R"(qseal_engine_hash_seconds_bucket{le="0.0008"})"), 3);
  EXPECT_EQ(SampleValue(text, R"(qseal_engine_hash_seconds_bucket{le="26.2144"})"), 3);
  EXPECT_EQ(SampleValue(text, R"(qseal_engine_hash_seconds_bucket{le="+Inf"})"), 4);
  EXPECT_EQ(SampleValue(text, "qseal_engine_hash_seconds_count"), 4);
  EXPECT_NEAR(*SampleValue(text, "qseal_engine_hash_seconds_sum"), 3600.000651, 1e-6);
}

TEST(MetricsTest, BatchSizeHistogramCountsDocuments) {
  Metrics m;
  m.ObserveBatchSize(1);
  m.ObserveBatchSize(3);
  m.ObserveBatchSize(4);
  m.ObserveBatchSize(5000);
  const std::string text = m.Serialize();
  EXPECT_EQ(SampleValue(text, R"(qseal_engine_batch_size_documents_bucket{le="1"})"), 1) << text;
  EXPECT_EQ(SampleValue(text, R"(qseal_engine_batch_size_documents_bucket{le="2"})"), 1);
  EXPECT_EQ(SampleValue(text, R"(qseal_engine_batch_size_documents_bucket{le="4"})"), 3);
  EXPECT_EQ(SampleValue(text, R"(qseal_engine_batch_size_documents_bucket{le="4096"})"), 3);
  EXPECT_EQ(SampleValue(text, R"(qseal_engine_batch_size_documents_bucket{le="+Inf"})"), 4);
  EXPECT_EQ(SampleValue(text, "qseal_engine_batch_size_documents_sum"), 5008);
}

TEST(MetricsTest, HttpRequestsByRouteMethodAndStatusClass) {
  Metrics m;
  m.HttpRequest("/v1/documents/{id}", "GET", 200, milliseconds(1));
  m.HttpRequest("/v1/documents/{id}", "GET", 204, milliseconds(1));
  m.HttpRequest("/v1/documents", "POST", 503, milliseconds(1));
  m.HttpRequest("/v1/documents", "POST", 99, milliseconds(1));
  const std::string text = m.Serialize();
  EXPECT_EQ(
      SampleValue(
          text,
          R"(qseal_http_requests_total{method="GET",route="/v1/documents/{id}",status_class="2xx"})"),
      2)
      << text;
  EXPECT_EQ(
      SampleValue(
          text,
          R"(qseal_http_requests_total{method="POST",route="/v1/documents",status_class="5xx"})"),
      1);
  EXPECT_EQ(
      SampleValue(
          text,
          R"(qseal_http_requests_total{method="POST",route="/v1/documents",status_class="other"})"),
      1);
  EXPECT_EQ(
      SampleValue(
          text,
          R"(qseal_http_request_duration_seconds_count{method="POST",route="/v1/documents"})"),
      2);
}

TEST(MetricsTest, EveryEventFamilyIsListedBeforeItsFirstEvent) {
  Metrics m;
  const std::set<std::string> names = test::FamilyNames(m.Serialize());
  for (const char* name :
       {"qseal_build_info", "qseal_documents_accepted_total",
        "qseal_documents_accepted_bytes_total", "qseal_documents_rejected_total",
        "qseal_documents_sealed_total", "qseal_documents_failed_total",
        "qseal_documents_requeued_total", "qseal_http_requests_total",
        "qseal_document_accept_to_sealed_seconds", "qseal_http_request_duration_seconds",
        "qseal_queue_wait_seconds", "qseal_engine_hash_seconds", "qseal_hsm_sign_seconds",
        "qseal_engine_batch_size_documents"}) {
    EXPECT_TRUE(names.count(name)) << name;
  }
}

TEST(MetricsTest, BuildInfoCarriesVersionAndOpenSsl) {
  Metrics m;
  const std::string text = m.Serialize();
  const auto pos = text.find("qseal_build_info{");
  ASSERT_NE(pos, std::string::npos) << text;
  const std::string line = text.substr(pos, text.find('\n', pos) - pos);
  EXPECT_NE(line.find("openssl_version=\"OpenSSL 3"), std::string::npos) << line;
  EXPECT_NE(line.find("version=\""), std::string::npos) << line;
  EXPECT_EQ(line.substr(line.size() - 2), " 1") << line;
}

TEST(MetricsTest, SnapshotSourcesAddFamiliesAndBadSamplesAreDropped) {
  Metrics m;
  m.AddSnapshotSource([](SnapshotWriter& w) {
    w.Gauge("qseal_queue_documents", "Documents by state.", {{"state", "pending"}}, 5);
    w.Gauge("qseal_queue_documents", "", {{"state", "leased"}}, 2);
    w.Counter("qseal_hsm_sign_errors_total", "Sign errors.",
              {{"partition", "p1"}, {"code", "CKR_DEVICE_ERROR"}}, 3);
    w.Gauge("queue_documents", "no prefix", {}, 1);                           // dropped
    w.Counter("qseal_bad_counter", "no _total", {}, 1);                       // dropped
    w.Gauge("qseal_documents_sealed_total", "shadows an event", {}, 99);      // dropped
    w.Gauge("qseal_queue_documents", "", {{"state", "pending"}}, 6);          // duplicate: dropped
    w.Counter("qseal_queue_documents_total", "", {{"__bad", "x"}}, 1);        // bad label: dropped
    w.DeclareCounter("qseal_hsm_verify_failures_total", "Verify failures.");  // empty family
  });
  const std::string text = m.Serialize();
  EXPECT_EQ(SampleValue(text, R"(qseal_queue_documents{state="pending"})"), 5) << text;
  EXPECT_EQ(SampleValue(text, R"(qseal_queue_documents{state="leased"})"), 2);
  EXPECT_EQ(
      SampleValue(text, R"(qseal_hsm_sign_errors_total{code="CKR_DEVICE_ERROR",partition="p1"})"),
      3);
  EXPECT_EQ(text.find("\nqueue_documents"), std::string::npos);
  EXPECT_EQ(text.find("qseal_bad_counter"), std::string::npos);
  EXPECT_EQ(text.find("qseal_queue_documents_total"), std::string::npos);
  EXPECT_FALSE(SampleValue(text, "qseal_documents_sealed_total").has_value());
  EXPECT_NE(text.find("# TYPE qseal_hsm_verify_failures_total counter"), std::string::npos);
  // A second scrape runs the sources again with fresh values.
  EXPECT_EQ(SampleValue(m.Serialize(), R"(qseal_queue_documents{state="pending"})"), 5);
}

TEST(MetricsTest, UnboundedLabelValuesFoldIntoOther) {
  Metrics m;
  for (int i = 0; i < 2000; ++i) m.DocumentRejected("api", "code" + std::to_string(i));
  const std::string text = m.Serialize();
  std::size_t series = 0;
  for (std::size_t pos = 0;
       (pos = text.find("\nqseal_documents_rejected_total{", pos)) != std::string::npos; ++pos) {
    ++series;
  }
  EXPECT_LE(series, 513u);
  EXPECT_EQ(SampleValue(text, R"(qseal_documents_rejected_total{code="other",source="other"})"),
            2000 - 512);
}

TEST(MetricsTest, ConcurrentCountingLosesNothing) {
  Metrics m;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50'000;
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) {
      }
      const std::string profile = "p" + std::to_string(t % 2);
      for (int i = 0; i < kPerThread; ++i) {
        m.DocumentSealed("api", profile, microseconds(i % 1000));
        m.ObserveSign(microseconds(300));
        m.HttpRequest("/v1/documents", "POST", 202, microseconds(50));
      }
    });
  }
  for (auto& th : threads) th.join();
  const std::string text = m.Serialize();
  EXPECT_EQ(*SampleValue(text, R"(qseal_documents_sealed_total{profile="p0",source="api"})") +
                *SampleValue(text, R"(qseal_documents_sealed_total{profile="p1",source="api"})"),
            kThreads * kPerThread);
  EXPECT_EQ(SampleValue(text, "qseal_hsm_sign_seconds_count"), kThreads * kPerThread);
  EXPECT_EQ(SampleValue(text, R"(qseal_hsm_sign_seconds_bucket{le="0.0004"})"),
            kThreads * kPerThread);
  EXPECT_EQ(
      SampleValue(
          text,
          R"(qseal_http_requests_total{method="POST",route="/v1/documents",status_class="2xx"})"),
      kThreads * kPerThread);
}

// New label sets appear on several threads while scrapes run: nothing is lost or torn (this test
// is also the one that matters under QSEAL_SANITIZER=thread).
TEST(MetricsTest, NewLabelSetsWhileScraping) {
  Metrics m;
  constexpr int kThreads = 3;
  constexpr int kProfiles = 40;
  constexpr int kRounds = 50;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) EXPECT_FALSE(m.Serialize().empty());
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        for (int p = 0; p < kProfiles; ++p) {
          m.DocumentSealed("api", "profile-" + std::to_string(p), microseconds(p));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  done.store(true);
  scraper.join();
  const std::string text = m.Serialize();
  for (int p = 0; p < kProfiles; ++p) {
    const std::string profile = "profile-" + std::to_string(p);
    EXPECT_EQ(SampleValue(text, R"(qseal_documents_sealed_total{profile=")" + profile +
                                    R"(",source="api"})"),
              kThreads * kRounds)
        << profile;
    EXPECT_EQ(SampleValue(text, R"(qseal_document_accept_to_sealed_seconds_count{profile=")" +
                                    profile + R"("})"),
              kThreads * kRounds);
  }
}

TEST(ProcessMetricsTest, ReportsThisProcessFromProc) {
  Metrics m;
  m.AddSnapshotSource(ProcessMetricsSource());
  const std::string text = m.Serialize();
  const auto fds = SampleValue(text, "qseal_process_open_fds");
  ASSERT_TRUE(fds.has_value()) << text;
  EXPECT_GE(*fds, 3);  // stdin, stdout, stderr
  EXPECT_GT(*SampleValue(text, "qseal_process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(*SampleValue(text, "qseal_process_cpu_seconds_total"), 0);
  EXPECT_GE(*SampleValue(text, "qseal_process_threads"), 1);
  const double start = *SampleValue(text, "qseal_process_start_time_seconds");
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 24 * 3600);  // a unit test process is younger than a day
}

TEST(MetricsTest, PromtoolAcceptsTheExposition) {
  Metrics m;
  m.DeclareProfile("p1");
  m.DocumentAccepted("api", "p1", 10);
  m.DocumentRejected("watch", "too_large");
  m.DocumentSealed("api", "p1", milliseconds(20));
  m.DocumentFailed("api", "p1", "kInvalidArgument");
  m.ObserveQueueWait(milliseconds(1));
  m.ObserveHash(microseconds(10));
  m.ObserveSign(milliseconds(2));
  m.ObserveBatchSize(17);
  m.HttpRequest("/v1/documents", "POST", 202, milliseconds(3));
  m.AddSnapshotSource(ProcessMetricsSource());
  m.AddSnapshotSource([](SnapshotWriter& w) {
    w.Gauge("qseal_queue_documents", "Documents in the queue by state.", {{"state", "pending"}}, 1);
  });
  testing::TempDir tmp;
  testing::WriteFile(tmp.Sub("metrics.txt"), m.Serialize());
  testing::CommandResult r = testing::RunCommand("promtool check metrics < " +
                                                 testing::ShellQuote(tmp.Sub("metrics.txt")));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "") << r.output;
}

TEST(MetricsServerTest, ServesMetricsOnItsOwnPort) {
  Metrics m;
  m.DocumentSealed("api", "p1", milliseconds(1));
  MetricsServer server({"127.0.0.1", 0, 1, nullptr}, &m);
  ASSERT_TRUE(server.Start().ok());
  ASSERT_NE(server.port(), 0);
  cli::HttpClient client("127.0.0.1:" + std::to_string(server.port()), "",
                         std::chrono::seconds(10));
  auto reply = client.Request("GET", "/metrics");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(SampleValue(reply->body, R"(qseal_documents_sealed_total{profile="p1",source="api"})"),
            1);
  // The counter moves between scrapes.
  m.DocumentSealed("api", "p1", milliseconds(1));
  reply = client.Request("GET", "/metrics?x=1");
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(SampleValue(reply->body, R"(qseal_documents_sealed_total{profile="p1",source="api"})"),
            2);
  auto missing = client.Request("GET", "/v1/documents");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  auto post = client.Request("POST", "/metrics", "x");
  ASSERT_TRUE(post.ok());
  EXPECT_EQ(post->status, 405);

  // The port is taken: a second server on it cannot start.
  MetricsServer second({"127.0.0.1", server.port(), 1, nullptr}, &m);
  Status s = second.Start();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s;

  server.Stop();
  server.Stop();
  // A stopped server leaves its open connections unanswered (the kept-alive one runs into the
  // client's timeout); a new connection is refused.
  cli::HttpClient fresh("127.0.0.1:" + std::to_string(server.port()), "", std::chrono::seconds(10));
  EXPECT_FALSE(fresh.Request("GET", "/metrics").ok());
}

TEST(MetricsServerTest, BadHostIsInvalidArgument) {
  Metrics m;
  MetricsServer server({"not-an-address", 0, 1, nullptr}, &m);
  EXPECT_EQ(server.Start().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qseal::metrics

namespace qseal::metrics {
namespace {

TEST(ShippedConfigTest, PromtoolAcceptsTheAlertRules) {
  testing::CommandResult r =
      testing::RunCommand("promtool check rules " QSEAL_SOURCE_DIR "/conf/alerts.yml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("SUCCESS"), std::string::npos) << r.output;
}

TEST(ShippedConfigTest, PromtoolAcceptsTheScrapeConfig) {
  testing::CommandResult r =
      testing::RunCommand("promtool check config " QSEAL_SOURCE_DIR "/conf/prometheus.yml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(PromqlNamesTest, FindsMetricNamesAndSkipsLabelsFunctionsAndRanges) {
  EXPECT_EQ(
      test::SelectedNames(
          R"(histogram_quantile(0.99, sum by (le, route) (rate(qseal_x_bucket{a="b c"}[$__rate_interval]))))"),
      std::vector<std::string>{"qseal_x_bucket"});
  EXPECT_EQ(test::SelectedNames("qseal_a - time() < 30 * 86400 and on (key) qseal_b / 1e9"),
            (std::vector<std::string>{"qseal_a", "qseal_b"}));
  EXPECT_EQ(test::SelectedNames(R"(sum without (instance) (qseal_typo_total))"),
            std::vector<std::string>{"qseal_typo_total"});
}

}  // namespace
}  // namespace qseal::metrics
