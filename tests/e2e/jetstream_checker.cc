#include "tests/e2e/jetstream_checker.h"

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "tests/testing/nats_server.h"

namespace qseal::testing::jetstream {

QsealdOptions NodeOptions(const std::string& url) {
  QsealdOptions o;
  o.edit_config = [url](std::string& conf) {
    conf += "\n[[jetstream]]\nname = \"docs\"\nservers = [\"" + url +
            "\"]\nstream = \"DOCS\"\nsubjects = [\"qseal.docs.>\"]\nconsumer = \"sealers\"\n"
            "profile = \"default\"\nprofiles = [\"invoice-p7m\"]\nfetch_batch = 32\n"
            "ack_wait = \"5s\"\nresult_subject = \"qseal.results\"\n";
  };
  return o;
}

std::string Content(int i) {
  std::string s = "<Invoice><ID>" + std::to_string(i) + "</ID>";
  s.append(static_cast<std::size_t>(1500 + (i % 13) * 97), static_cast<char>('a' + i % 26));
  return s + "</Invoice>";
}

void PublishDocs(publish::NatsConnection& nc, int from, int to, std::vector<Published>* out,
                 bool always_msg_id) {
  for (int i = from; i < to; ++i) {
    Published p;
    p.content = Content(i);
    p.enveloping = i % 5 == 0;
    std::map<std::string, std::string> h = {
        {"Qseal-Filename", "inv-" + std::to_string(i) + ".xml"}};
    if (p.enveloping) h["Qseal-Profile"] = "invoice-p7m";
    if (always_msg_id || i % 2 == 0) h["Nats-Msg-Id"] = "doc-" + std::to_string(i);
    Result<std::uint64_t> seq = Result<std::uint64_t>(UnavailableError("not yet"));
    for (int attempt = 0; attempt < 50 && !seq.ok(); ++attempt) {
      seq = PublishJs(nc, "qseal.docs.in", p.content, h);
      if (!seq.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ASSERT_TRUE(seq.ok()) << seq.status().ToString();
    p.key = always_msg_id || i % 2 == 0 ? "doc-" + std::to_string(i)
                                        : std::string(kStream) + "/" + std::to_string(*seq);
    out->push_back(std::move(p));
  }
}

std::size_t ResultCount(publish::NatsConnection& nc) {
  return static_cast<std::size_t>(StreamMessages(nc, kResults));
}

std::vector<std::size_t> CheckResults(publish::NatsConnection& nc,
                                      const std::vector<Published>& published,
                                      const std::vector<std::string>& cas,
                                      const std::string& work) {
  std::vector<std::size_t> by_ca(cas.size(), 0);
  auto results = ReadStream(nc, kResults);
  EXPECT_TRUE(results.ok()) << results.status().ToString();
  if (!results.ok()) return by_ca;
  std::map<std::string, std::vector<const StreamMessage*>> by_key;
  for (const auto& m : *results)
    by_key[m.headers.count("Qseal-Idempotency-Key") != 0 ? m.headers.at("Qseal-Idempotency-Key")
                                                         : ""]
        .push_back(&m);
  EXPECT_EQ(results->size(), published.size()) << "result messages vs published documents";
  std::filesystem::create_directories(work);
  std::mutex mu;
  std::atomic<std::size_t> next{0};
  std::vector<std::string> failures;
  auto worker = [&] {
    for (std::size_t i = next++; i < published.size(); i = next++) {
      const Published& p = published[i];
      auto it = by_key.find(p.key);
      std::string failure;
      if (it == by_key.end()) {
        failure = "lost: no result for " + p.key;
      } else if (it->second.size() != 1) {
        failure = std::to_string(it->second.size()) + " results for " + p.key;
      } else if (it->second[0]->headers.at("Qseal-Status") != "sealed") {
        failure = p.key + " not sealed: " + it->second[0]->headers.at("Qseal-Status");
      } else {
        std::string err;
        const int ca = VerifyAgainstAny(it->second[0]->data, p.content, p.enveloping, cas,
                                        work + "/" + std::to_string(i), &err);
        if (ca >= 0) {
          std::lock_guard<std::mutex> lock(mu);
          ++by_ca[static_cast<std::size_t>(ca)];
        } else {
          failure = p.key + ": " + err;
        }
      }
      if (!failure.empty()) {
        std::lock_guard<std::mutex> lock(mu);
        failures.push_back(failure);
      }
    }
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failures; first: " << failures.front();
  // A message whose ack a SIGKILL lost is redelivered only after ack_wait (5 s in these
  // configs); the node then finds it a duplicate and acks it. Wait past that, then insist.
  WaitFor([&] { return StreamMessages(nc, kStream) == 0; }, std::chrono::seconds(20),
          std::chrono::milliseconds(200));
  EXPECT_EQ(StreamMessages(nc, kStream), 0u) << "messages left unacked in the stream";
  return by_ca;
}

}  // namespace qseal::testing::jetstream
