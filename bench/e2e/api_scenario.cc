#include "bench/e2e/api_scenario.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/e2e/process_stats.h"
#include "bench/e2e/timing.h"

namespace qseal::bench::e2e {
namespace {

namespace fs = std::filesystem;

// POSTs documents [first, first + count) as one multipart/mixed batch; fills their ids.
// Returns "" or the first error.
std::string SubmitBatch(cli::HttpClient& client, const std::vector<std::string>& contents,
                        const Corpus& corpus, int first, int count, const SealKind& kind,
                        std::vector<std::string>& ids, std::atomic<int>& busy) {
  std::string body;
  for (int i = first; i < first + count; ++i) {
    std::size_t k = static_cast<std::size_t>(i) % contents.size();
    body += "--qseal-bench\r\nX-Filename: " + corpus.names[k] + "\r\n";
    if (!kind.content_type.empty()) body += "Content-Type: " + kind.content_type + "\r\n";
    body += "\r\n";
    body += contents[k];
    body += "\r\n";
  }
  body += "--qseal-bench--\r\n";
  for (;;) {
    auto r = client.Request("POST", "/v1/batches?profile=" + kind.profile, body,
                            {{"Content-Type", "multipart/mixed; boundary=qseal-bench"}});
    if (r.ok() && r->status == 503) {
      ++busy;
      std::this_thread::sleep_for(std::chrono::milliseconds(1050));
      continue;
    }
    if (!r.ok() || r->status != 202) {
      return r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString();
    }
    auto j = nlohmann::json::parse(r->body);
    std::string error;
    for (int i = 0; i < count; ++i) {
      const auto& d = j["documents"][static_cast<std::size_t>(i)];
      if (d.contains("id")) {
        ids[static_cast<std::size_t>(first + i)] = d["id"].get<std::string>();
      } else if (error.empty()) {
        error = d.dump();
      }
    }
    return error;
  }
}

}  // namespace

Figures ApiScenario(const Options& o, testing::Qseald& q, const Corpus& corpus, int n,
                    const std::string& name, const std::string& verify_dir, int batch,
                    const SealKind& kind, double arrival_per_s) {
  Figures fig;
  fig.scenario = name;
  fig.docs = n;
  PerfRecord perf(o, q.process().pid(), name);
  double cpu0 = ProcCpuSeconds(q.process().pid());
  double client_cpu0 = RusageCpu(RUSAGE_SELF);
  std::vector<std::string> ids(static_cast<std::size_t>(n));
  std::vector<double> due_ms(static_cast<std::size_t>(n), -1);  // open loop only
  std::atomic<int> next{0}, failed{0}, busy{0};
  std::mutex mu;
  std::string first_error;
  std::vector<std::string> contents;
  if (batch > 0) {
    for (const auto& path : corpus.paths) contents.push_back(testing::ReadFile(path));
  }
  // Every client opens its connection (TLS handshake, one authenticated request) before the clock
  // starts: the figures are the steady state a kept-alive integration sees, not 64 handshakes
  // at once (which made the first 0.5 s of an open-loop run most of its p99 tail).
  const int client_count = batch > 0 ? o.batch_clients : o.clients;
  std::latch connected(client_count), go(1);
  double t0 = 0;
  auto connect = [&] {
    cli::HttpClient client = q.Client();
    (void)client.Request("GET", "/v1/profiles");
    connected.count_down();
    go.wait();
    return client;
  };
  auto submit_batches = [&] {
    cli::HttpClient client = connect();
    for (int i = next.fetch_add(batch); i < n; i = next.fetch_add(batch)) {
      int count = std::min(batch, n - i);
      std::string error = SubmitBatch(client, contents, corpus, i, count, kind, ids, busy);
      if (!error.empty()) {
        failed += count;
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.empty()) first_error = error;
      }
    }
  };
  auto submit = [&] {
    cli::HttpClient client = connect();
    for (int i = next++; i < n; i = next++) {
      if (arrival_per_s > 0) {
        double due = t0 + 1000.0 * i / arrival_per_s;
        due_ms[static_cast<std::size_t>(i)] = due;
        double wait = due - NowMs();
        if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(wait));
      }
      const std::string& path = corpus.paths[static_cast<std::size_t>(i) % corpus.paths.size()];
      std::map<std::string, std::string> headers = {
          {"X-Filename", corpus.names[static_cast<std::size_t>(i) % corpus.names.size()]}};
      if (!kind.content_type.empty()) headers["Content-Type"] = kind.content_type;
      for (;;) {
        auto r = client.UploadFile("POST", "/v1/documents?profile=" + kind.profile, path, headers);
        if (r.ok() && r->status == 503) {
          ++busy;
          int after = std::atoi(r->Header("retry-after").c_str());
          std::this_thread::sleep_for(
              std::chrono::milliseconds(std::clamp(after, 0, 1) * 1000 + 50));
          continue;
        }
        if (r.ok() && r->status / 100 == 2) {
          ids[static_cast<std::size_t>(i)] = nlohmann::json::parse(r->body).value("id", "");
        } else {
          ++failed;
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) {
            first_error =
                r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString();
          }
        }
        break;
      }
    }
  };
  std::vector<std::thread> clients;
  for (int c = 0; c < client_count; ++c) {
    clients.emplace_back(batch > 0 ? std::function<void()>(submit_batches)
                                   : std::function<void()>(submit));
  }
  connected.wait();
  cpu0 = ProcCpuSeconds(q.process().pid());
  client_cpu0 = RusageCpu(RUSAGE_SELF);
  t0 = NowMs();
  go.count_down();
  for (auto& t : clients) t.join();
  double submitted_ms = NowMs();
  fig.client_cpu_s_per_1000 = (RusageCpu(RUSAGE_SELF) - client_cpu0) * 1000.0 / std::max(1, n);
  Say(name + ": " + std::to_string(n) + " submitted in " + Fmt((submitted_ms - t0) / 1000.0, 2) +
      " s" + (busy > 0 ? " (" + std::to_string(busy.load()) + " x 503)" : ""));
  if (!first_error.empty()) Say(name + ": first submit error: " + first_error);

  // Collect the outcome of every document; a status still queued/sealing is asked again later.
  std::vector<double> latencies(static_cast<std::size_t>(n), -1);
  std::vector<double> sealed_at(static_cast<std::size_t>(n), -1);
  std::vector<double> created_at(static_cast<std::size_t>(n), -1);
  std::atomic<int> poll_next{0}, poll_failed{0};
  auto poll = [&] {
    cli::HttpClient client = q.Client();
    for (int i = poll_next++; i < n; i = poll_next++) {
      const std::string& id = ids[static_cast<std::size_t>(i)];
      if (id.empty()) continue;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(30);
      while (std::chrono::steady_clock::now() < deadline) {
        auto r = client.Request("GET", "/v1/documents/" + id);
        if (!r.ok() || r->status != 200) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
        auto j = nlohmann::json::parse(r->body);
        std::string st = j.value("status", "");
        if (st == "sealed") {
          double due = due_ms[static_cast<std::size_t>(i)];
          double created = ParseUtcMs(j.value("created_at", ""));
          double c = due >= 0 ? due : created;
          double s = ParseUtcMs(j.value("sealed_at", ""));
          created_at[static_cast<std::size_t>(i)] = created;
          sealed_at[static_cast<std::size_t>(i)] = s;
          latencies[static_cast<std::size_t>(i)] = s - c;
          break;
        }
        if (st == "failed") {
          ++poll_failed;
          std::lock_guard<std::mutex> lock(mu);
          Say(name + ": document failed: " + r->body);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  };
  // The batch client's way: many ids per long-poll.
  auto poll_batches = [&] {
    cli::HttpClient client = q.Client();
    constexpr int kChunk = 500;
    for (int i = poll_next.fetch_add(kChunk); i < n; i = poll_next.fetch_add(kChunk)) {
      std::vector<int> open;
      for (int k = i; k < std::min(n, i + kChunk); ++k) {
        if (!ids[static_cast<std::size_t>(k)].empty()) open.push_back(k);
      }
      auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(30);
      while (!open.empty() && std::chrono::steady_clock::now() < deadline) {
        nlohmann::json req;
        req["ids"] = nlohmann::json::array();
        for (int k : open) req["ids"].push_back(ids[static_cast<std::size_t>(k)]);
        auto r = client.Request("POST", "/v1/batches/status?wait=30", req.dump());
        if (!r.ok() || r->status != 200) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
        auto j = nlohmann::json::parse(r->body);
        std::vector<int> still;
        for (std::size_t x = 0; x < open.size(); ++x) {
          const auto& d = j["documents"][x];
          std::string st = d.value("status", "");
          auto k = static_cast<std::size_t>(open[x]);
          if (st == "sealed") {
            double c = ParseUtcMs(d.value("created_at", ""));
            double sealed = ParseUtcMs(d.value("sealed_at", ""));
            created_at[k] = c;
            sealed_at[k] = sealed;
            latencies[k] = sealed - c;
          } else if (st == "failed" || st.empty()) {
            ++poll_failed;
            std::lock_guard<std::mutex> lock(mu);
            Say(name + ": document failed: " + d.dump());
          } else {
            still.push_back(open[x]);
          }
        }
        open = std::move(still);
      }
    }
  };
  std::vector<std::thread> pollers;
  for (int c = 0; c < 4; ++c)
    pollers.emplace_back(batch > 0 ? std::function<void()>(poll_batches)
                                   : std::function<void()>(poll));
  for (auto& t : pollers) t.join();
  double last = *std::max_element(sealed_at.begin(), sealed_at.end());
  std::vector<double> lat;
  for (double l : latencies) {
    if (l >= 0) lat.push_back(l);
  }
  if (last > 0) fig.docs_per_s = static_cast<double>(lat.size()) / ((last - t0) / 1000.0);
  if (!o.latency_dir.empty()) {
    // Where a document's time went: before acceptance (HTTP, the synced enqueue) or after it.
    fs::create_directories(o.latency_dir);
    std::ofstream out(o.latency_dir + "/" + name + ".latency.tsv");
    out << "doc\tdue_ms\taccepted_ms\tsealed_ms\tlatency_ms\n";
    for (int i = 0; i < n; ++i) {
      auto k = static_cast<std::size_t>(i);
      if (latencies[k] < 0) continue;
      out << i << '\t' << (due_ms[k] >= 0 ? due_ms[k] - t0 : -1) << '\t' << created_at[k] - t0
          << '\t' << sealed_at[k] - t0 << '\t' << latencies[k] << '\n';
    }
  }
  fig.p50_ms = Percentile(lat, 0.50);
  fig.p99_ms = Percentile(lat, 0.99);
  // Failed submissions, failed documents and documents never seen sealed.
  fig.failed = n - static_cast<int>(lat.size());
  FillDaemonFigures(q, cpu0, &fig);

  // Independent check of a sample of seals.
  cli::HttpClient client = q.Client();
  fs::create_directories(verify_dir);
  int checked = 0;
  for (int i = 0; i < n && checked < o.verify_sample; i += std::max(1, n / o.verify_sample)) {
    const std::string& id = ids[static_cast<std::size_t>(i)];
    if (id.empty()) continue;
    std::string seal = verify_dir + "/" + id + kind.seal_suffix;
    const std::string& content = corpus.paths[static_cast<std::size_t>(i) % corpus.paths.size()];
    auto r = client.Download("/v1/documents/" + id + "/seal", seal);
    std::string err = !r.ok() || r->status != 200 ? "fetch failed"
                      : kind.check                ? kind.check(seal, content)
                                   : testing::OpensslVerify(seal, q.ca_pem(), content);
    if (!err.empty()) {
      Say(name + " verify failed: " + err);
      ++fig.failed;
    }
    ++checked;
  }
  return fig;
}

}  // namespace qseal::bench::e2e
