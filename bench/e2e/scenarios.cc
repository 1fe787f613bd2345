#include "bench/e2e/scenarios.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/e2e/process_stats.h"
#include "bench/e2e/timing.h"
#include "queue/queue.h"
#include "tests/p11shim/p11shim.h"

namespace qseal::bench::e2e {
namespace {

namespace fs = std::filesystem;

double MtimeMs(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<double>(st.st_mtim.tv_sec) * 1000.0 +
         static_cast<double>(st.st_mtim.tv_nsec) / 1e6;
}

}  // namespace

std::function<void(std::string&)> EditConfig(int partitions, int sessions) {
  return [partitions, sessions](std::string& conf) {
    // Room for the big scenario's document; no other scenario comes near either limit.
    for (const std::string from : {"max_body_bytes = \"256MiB\"", "max_file_bytes = \"256MiB\""}) {
      auto p = conf.find(from);
      if (p != std::string::npos) conf.replace(p, from.size(), from.substr(0, 17) + "\"2GiB\"");
    }
    const std::string from = "sessions = 4";
    for (std::size_t p = conf.find(from); p != std::string::npos; p = conf.find(from, p + 1)) {
      conf.replace(p, from.size(), "sessions = " + std::to_string(sessions));
    }
    if (partitions == 1) {
      // Drop the second [[partition]] block and name only p1 in the key.
      auto second = conf.find("[[partition]]", conf.find("[[partition]]") + 1);
      auto key = conf.find("[[key]]");
      if (second != std::string::npos && key != std::string::npos) {
        conf.erase(second, key - second);
      }
      const std::string both = "partitions = [\"p1\", \"p2\"]";
      auto b = conf.find(both);
      if (b != std::string::npos) conf.replace(b, both.size(), "partitions = [\"p1\"]");
    }
  };
}

Figures WatchScenario(const Options& o, testing::Qseald& q, const Corpus& corpus,
                      const std::string& work) {
  Figures fig;
  fig.scenario = "watch";
  int n = static_cast<int>(corpus.paths.size());
  fig.docs = n;
  // Copies staged on the same filesystem, so the drop is one rename per file, as a producer does
  // (not hard links: the watcher refuses a file with more than one link).
  std::string stage = work + "/stage";
  fs::remove_all(stage);
  fs::create_directories(stage);
  for (int i = 0; i < n; ++i) {
    fs::copy_file(corpus.paths[static_cast<std::size_t>(i)],
                  stage + "/" + corpus.names[static_cast<std::size_t>(i)]);
  }
  // The copies' dirty pages are written back now, not during the timed run where they would
  // compete with qseald's fsyncs.
  ::sync();
  std::string inbox = q.watch_root() + "/inbox";
  std::string outbox = q.watch_root() + "/outbox";
  std::string failed_dir = q.watch_root() + "/failed";
  fs::create_directories(inbox);
  PerfRecord perf(o, q.process().pid(), "watch");
  double cpu0 = ProcCpuSeconds(q.process().pid());
  std::vector<double> dropped(static_cast<std::size_t>(n));
  double t0 = NowMs();
  for (int i = 0; i < n; ++i) {
    const std::string& name = corpus.names[static_cast<std::size_t>(i)];
    dropped[static_cast<std::size_t>(i)] = NowMs();
    fs::rename(stage + "/" + name, inbox + "/" + name);
  }
  Say("watch: " + std::to_string(n) + " dropped in " + Fmt((NowMs() - t0) / 1000.0, 2) + " s");
  auto count = [](const std::string& dir, const std::string& suffix) {
    int c = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string f = e.path().filename().string();
      if (f.size() > suffix.size() &&
          f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
        ++c;
    }
    return c;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(30);
  int sealed = 0, failed = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    sealed = count(outbox, ".p7s");
    failed = count(failed_dir, ".error.json");
    if (sealed + failed >= n) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::vector<double> lat;
  double last = -1;
  for (int i = 0; i < n; ++i) {
    double m = MtimeMs(outbox + "/" + corpus.names[static_cast<std::size_t>(i)] + ".p7s");
    if (m < 0) continue;
    last = std::max(last, m);
    lat.push_back(std::max(0.0, m - dropped[static_cast<std::size_t>(i)]));
  }
  fig.failed = n - static_cast<int>(lat.size());
  if (last > 0) fig.docs_per_s = static_cast<double>(lat.size()) / ((last - t0) / 1000.0);
  fig.p50_ms = Percentile(lat, 0.50);
  fig.p99_ms = Percentile(lat, 0.99);
  FillDaemonFigures(q, cpu0, &fig);
  int checked = 0;
  for (int i = 0; i < n && checked < o.verify_sample; i += std::max(1, n / o.verify_sample)) {
    std::string seal = outbox + "/" + corpus.names[static_cast<std::size_t>(i)] + ".p7s";
    if (!fs::exists(seal)) continue;
    std::string err =
        testing::OpensslVerify(seal, q.ca_pem(), corpus.paths[static_cast<std::size_t>(i)]);
    if (!err.empty()) {
      Say("watch verify failed: " + err);
      ++fig.failed;
    }
    ++checked;
  }
  return fig;
}

Figures BacklogScenario(const Options& o, const std::string& work) {
  Figures fig;
  fig.scenario = "backlog";
  fig.docs = o.backlog_docs;
  std::string dir = work + "/backlog";
  fs::remove_all(dir);
  fs::create_directories(dir + "/var");
  std::string shim = dir + "/p11shim.so";
  fs::copy_file(QSEAL_P11SHIM_PATH, shim, fs::copy_options::overwrite_existing);
  p11shim::WriteConfig(shim + ".conf", "down=1\n");
  {
    queue::QueueOptions qo;
    qo.path = dir + "/var/queue";
    qo.high_watermark_count = qo.low_watermark_count = 2ull * static_cast<unsigned>(o.backlog_docs);
    qo.high_watermark_bytes = qo.low_watermark_bytes = 1ull << 40;
    auto queue = queue::Queue::Open(qo);
    if (!queue.ok()) {
      Say("backlog: " + queue.status().ToString());
      fig.failed = fig.docs;
      return fig;
    }
    double t0 = NowMs();
    std::atomic<int> next{0}, failed{0};
    auto fill = [&] {
      for (int i = next++; i < o.backlog_docs; i = next++) {
        queue::NewDocument doc;
        doc.profile = "default";
        doc.source = queue::Source::kApi;
        doc.client = "default";
        doc.media_type = "application/octet-stream";
        std::string body = Content(i, 2048);
        if (!(*queue)->Enqueue(doc, AsBytes(body)).ok()) ++failed;
      }
    };
    std::vector<std::thread> fillers;
    for (int t = 0; t < 64; ++t) fillers.emplace_back(fill);
    for (auto& t : fillers) t.join();
    Status closed = (*queue)->Close();
    Say("backlog: " + std::to_string(o.backlog_docs - failed) + " documents queued in " +
        Fmt((NowMs() - t0) / 1000.0, 1) + " s" +
        (closed.ok() ? "" : ", close: " + closed.ToString()));
    fig.failed = failed;
  }
  testing::QsealdOptions so;
  so.key_type = o.key_type();
  so.module = shim;
  so.edit_config = EditConfig(o.partitions, o.sessions);
  so.start_timeout = std::chrono::seconds(900);  // loading the backlog is what is measured
  testing::Qseald q(dir, so);
  double t0 = NowMs();
  Status s = q.Start();
  if (!s.ok()) {
    Say("backlog: qseald: " + s.ToString());
    fig.failed = fig.docs;
    return fig;
  }
  fig.start_s = (NowMs() - t0) / 1000.0;
  Say("backlog: qseald started on the backlog in " + Fmt(fig.start_s, 1) + " s");
  std::this_thread::sleep_for(std::chrono::duration<double>(o.backlog_seconds));
  cli::HttpClient client = q.Client();
  auto r = client.Request("POST", "/v1/documents?profile=default", "one more");
  Say("backlog: a submission now gets " +
      (r.ok() ? std::to_string(r->status) + " " + r->body.substr(0, 80) : r.status().ToString()));
  if (!r.ok()) fig.failed = fig.docs;
  int pid = q.process().pid();
  fig.rss_mb = ProcPeakRssMb(pid);
  fig.cpu_s_per_1000 = ProcCpuSeconds(pid) * 1000.0 / std::max(1, o.backlog_docs);
  q.Stop();
  return fig;
}

Figures BigScenario(const Options& o, testing::Qseald& q, const std::string& work) {
  Figures fig;
  fig.scenario = "big_" + std::to_string(o.big_mib) + "mib";
  fig.docs = 1;
  std::string path = work + "/big.bin";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    std::string chunk = Content(7, 1 << 20);
    for (int i = 0; i < o.big_mib; ++i) {
      chunk[0] = static_cast<char>(i);
      out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    }
  }
  double cpu0 = ProcCpuSeconds(q.process().pid());
  cli::HttpClient client = q.Client(q.token(), std::chrono::minutes(30));
  double t0 = NowMs();
  auto r = client.UploadFile("POST", "/v1/documents?profile=default&wait=60", path);
  std::string id;
  if (r.ok() && r->status / 100 == 2) {
    auto j = nlohmann::json::parse(r->body);
    id = j.value("id", "");
    for (int tries = 0; !id.empty() && j.value("status", "") != "sealed" &&
                        j.value("status", "") != "failed" && tries < 36000;
         ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      auto g = client.Request("GET", "/v1/documents/" + id);
      if (g.ok() && g->status == 200) j = nlohmann::json::parse(g->body);
    }
    double t1 = NowMs();
    if (j.value("status", "") == "sealed") {
      fig.docs_per_s = 1000.0 / (t1 - t0);
      fig.p50_ms = fig.p99_ms =
          ParseUtcMs(j.value("sealed_at", "")) - ParseUtcMs(j.value("created_at", ""));
    }
  }
  if (id.empty() || fig.docs_per_s < 0) {
    Say("big: " + (r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString()));
    fig.failed = 1;
  }
  FillDaemonFigures(q, cpu0, &fig);
  fig.cpu_s_per_1000 = -1;
  if (!id.empty() && fig.failed == 0) {
    std::string seal = work + "/big.p7s";
    auto d = client.Download("/v1/documents/" + id + "/seal", seal);
    std::string err = !d.ok() || d->status != 200 ? "fetch failed"
                                                  : testing::OpensslVerify(seal, q.ca_pem(), path);
    if (!err.empty()) {
      Say("big verify failed: " + err);
      fig.failed = 1;
    }
  }
  fs::remove(path);
  return fig;
}

}  // namespace qseal::bench::e2e
