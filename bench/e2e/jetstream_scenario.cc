#include "bench/e2e/jetstream_scenario.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include <stdlib.h>

#include "bench/e2e/process_stats.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/testing.h"

namespace qseal::bench::e2e {
namespace {

namespace fs = std::filesystem;

constexpr char kStream[] = "BENCH_DOCS";
constexpr char kResults[] = "QSEAL_RESULTS";

// The node's [[jetstream]] section: the default (detached CAdES) profile for every message, a
// fetch batch as large as the API scenario's batches.
std::string JetStreamSection(const std::string& url) {
  return "\n[[jetstream]]\nname = \"bench\"\nservers = [\"" + url + "\"]\nstream = \"" +
         std::string(kStream) +
         "\"\nsubjects = [\"bench.docs.>\"]\nconsumer = \"sealers\"\nprofile = \"default\"\n"
         "fetch_batch = 128\nmax_ack_pending = 4096\nresult_subject = \"qseal.results\"\n";
}

}  // namespace

Figures JetStreamScenario(const Options& o, const testing::QsealdOptions& base,
                          const Corpus& corpus, int nodes, const std::string& work) {
  Figures fig;
  fig.scenario = nodes == 1 ? "jetstream" : "jetstream_" + std::to_string(nodes) + "n";
  const int n = o.docs;
  fig.docs = n;
  fig.failed = n;  // until measured
  const std::string dir = work + "/" + fig.scenario;
  fs::remove_all(dir);
  fs::create_directories(dir);
  testing::NatsServer nats(dir + "/nats");
  if (Status s = nats.Start(); !s.ok()) {
    Say(fig.scenario + ": nats-server: " + s.ToString());
    return fig;
  }
  auto client = testing::ConnectNats(nats.url());
  if (!client.ok()) {
    Say(fig.scenario + ": connect: " + client.status().ToString());
    return fig;
  }
  publish::NatsConnection& nc = **client;
  if (Status s = testing::CreateWorkQueueStream(nc, kStream, {"bench.docs.>"}); !s.ok()) {
    Say(fig.scenario + ": stream: " + s.ToString());
    return fig;
  }
  // The backlog: every document in the stream before any node runs.
  std::vector<std::string> contents(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const std::size_t k = static_cast<std::size_t>(i);
    contents[k] = testing::ReadFile(corpus.paths[k % corpus.paths.size()]);
    Result<std::uint64_t> seq =
        testing::PublishJs(nc, "bench.docs.in", contents[k],
                           {{"Nats-Msg-Id", "bench-" + std::to_string(i)},
                            {"Qseal-Filename", corpus.names[k % corpus.names.size()]}});
    if (!seq.ok()) {
      Say(fig.scenario + ": publish: " + seq.status().ToString());
      return fig;
    }
  }
  Say(fig.scenario + ": " + std::to_string(n) + " documents in the stream");

  // Provisioning a node's tokens points this process's SOFTHSM2_CONF at them
  // (testing::ProvisionSoftHsm); the raw loop measured after this scenario needs its own back.
  const char* softhsm_conf = std::getenv("SOFTHSM2_CONF");
  const std::string own_conf = softhsm_conf != nullptr ? softhsm_conf : "";
  std::vector<std::unique_ptr<testing::Qseald>> daemons;
  for (int i = 0; i < nodes; ++i) {
    testing::QsealdOptions qo = base;
    qo.edit_config = [edit = base.edit_config, url = nats.url()](std::string& conf) {
      if (edit) edit(conf);
      conf += JetStreamSection(url);
    };
    daemons.push_back(std::make_unique<testing::Qseald>(dir + "/node" + std::to_string(i), qo));
    // Provisioned and configured before the clock starts; the nodes then start together.
    if (Status s = daemons.back()->Prepare(); !s.ok()) {
      Say(fig.scenario + ": node " + std::to_string(i) + ": " + s.ToString());
      return fig;
    }
  }
  if (!own_conf.empty()) setenv("SOFTHSM2_CONF", own_conf.c_str(), 1);
  std::vector<std::thread> starting;
  std::vector<Status> started(daemons.size());
  for (std::size_t i = 0; i < daemons.size(); ++i) {
    starting.emplace_back([&, i] { started[i] = daemons[i]->Start(); });
  }
  for (auto& t : starting) t.join();
  for (std::size_t i = 0; i < daemons.size(); ++i) {
    if (!started[i].ok()) {
      Say(fig.scenario + ": node " + std::to_string(i) + ": " + started[i].ToString() +
          daemons[i]->Stderr());
      return fig;
    }
  }
  // The clock starts once every node is ready; what they sealed while starting is left out.
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t before = testing::StreamMessages(nc, kResults);
  std::vector<double> cpu0;
  for (auto& d : daemons) cpu0.push_back(ProcCpuSeconds(d->process().pid()));
  const bool done = testing::WaitFor(
      [&] { return testing::StreamMessages(nc, kResults) >= static_cast<std::uint64_t>(n); },
      std::chrono::minutes(30), std::chrono::milliseconds(20));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::uint64_t results = testing::StreamMessages(nc, kResults);
  double cpu = 0, rss = 0;
  for (std::size_t i = 0; i < daemons.size(); ++i) {
    cpu += ProcCpuSeconds(daemons[i]->process().pid()) - cpu0[i];
    rss += ProcPeakRssMb(daemons[i]->process().pid());
  }
  if (!done) Say(fig.scenario + ": only " + std::to_string(results) + " results after 30 min");
  const double measured = static_cast<double>(std::min<std::uint64_t>(results, n) - before);
  if (seconds > 0 && measured > 0) fig.docs_per_s = measured / seconds;
  fig.cpu_s_per_1000 = cpu * 1000.0 / std::max(1.0, measured);
  fig.rss_mb = rss;
  for (auto& d : daemons) d->Stop();

  // Exactly one sealed result per document; a sample verified by openssl.
  Result<std::vector<testing::StreamMessage>> all = testing::ReadStream(nc, kResults);
  if (!all.ok()) {
    Say(fig.scenario + ": reading results: " + all.status().ToString());
    return fig;
  }
  std::map<std::string, std::vector<const testing::StreamMessage*>> by_key;
  for (const auto& m : *all) {
    auto key = m.headers.find("Qseal-Idempotency-Key");
    by_key[key == m.headers.end() ? "" : key->second].push_back(&m);
  }
  int failed = 0, checked = 0;
  const std::string verify = dir + "/verify";
  fs::create_directories(verify);
  const int step = std::max(1, n / std::max(1, o.verify_sample));
  for (int i = 0; i < n; ++i) {
    auto it = by_key.find("bench-" + std::to_string(i));
    const bool sealed = it != by_key.end() && it->second.size() == 1 &&
                        it->second[0]->headers.count("Qseal-Status") != 0 &&
                        it->second[0]->headers.at("Qseal-Status") == "sealed";
    if (!sealed) {
      if (failed++ < 5) {
        Say(fig.scenario + ": bench-" + std::to_string(i) + ": " +
            (it == by_key.end() ? std::string("no result")
                                : std::to_string(it->second.size()) + " results"));
      }
      continue;
    }
    if (i % step != 0 || checked >= o.verify_sample) continue;
    ++checked;
    const std::string seal = verify + "/" + std::to_string(i) + ".p7s";
    const std::string content = verify + "/" + std::to_string(i) + ".xml";
    testing::WriteFile(seal, it->second[0]->data);
    testing::WriteFile(content, contents[static_cast<std::size_t>(i)]);
    std::string err = "no node's CA";
    for (auto& d : daemons) {
      if (err.empty()) break;
      err = testing::OpensslVerify(seal, d->ca_pem(), content);
    }
    if (!err.empty()) {
      Say(fig.scenario + " verify failed: " + err);
      ++failed;
    }
  }
  fig.failed = failed;
  Say(fig.scenario + ": " + std::to_string(all->size()) + " result messages for " +
      std::to_string(n) + " documents, " + std::to_string(checked) + " seals checked by openssl, " +
      std::to_string(seconds) + " s");
  nats.Stop();
  return fig;
}

}  // namespace qseal::bench::e2e
