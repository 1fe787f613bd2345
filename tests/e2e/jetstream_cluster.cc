// The three-node JetStream scenario (docs/scale-out.md, "What is tested"): three qseald nodes,
// each with its own SoftHSM2 tokens, key and queue, consume one stream while the documents are
// published; node 1 is SIGKILLed twice and restarted, the nats-server is restarted once. The
// checker then reads every result message: every document has exactly one result, each seal
// verifies with openssl cms -verify against the exact bytes published, nothing is lost and
// nothing is left in the stream. The default run has it with 1 500 documents
// (jetstream_test.cc); the long tier (label slow, jetstream_cluster_test.cc) with 20 000.
#include "tests/e2e/jetstream_cluster.h"

#include <thread>

#include <gtest/gtest.h>

#include "tests/e2e/jetstream_checker.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/qseald_harness.h"

namespace qseal::testing::jetstream {

void ThreeNodesAcrossKillsAndABrokerRestart(int docs) {
  TempDir tmp;
  NatsServer nats(tmp.Sub("nats"));
  ASSERT_TRUE(nats.Start().ok());
  auto client = ConnectNats(nats.url());
  ASSERT_TRUE(client.ok());
  auto& nc = **client;
  ASSERT_TRUE(CreateWorkQueueStream(nc, kStream, {"qseal.docs.>"}).ok());
  std::vector<std::unique_ptr<Qseald>> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(
        std::make_unique<Qseald>(tmp.Sub("node" + std::to_string(i)), NodeOptions(nats.url())));
    ASSERT_TRUE(nodes.back()->Start().ok()) << nodes.back()->Stderr();
  }
  const auto started = std::chrono::steady_clock::now();
  std::vector<Published> published;
  // Published while the kills and the restart happen: every message carries a Nats-Msg-Id, so a
  // publish retried across the broker restart cannot become a second document.
  std::thread producer([&] { PublishDocs(nc, 0, docs, &published, /*always_msg_id=*/true); });
  const auto reach = [&](double fraction) {
    return WaitFor([&] { return ResultCount(nc) >= static_cast<std::size_t>(docs * fraction); },
                   std::chrono::minutes(10), std::chrono::milliseconds(200));
  };
  ASSERT_TRUE(reach(0.2));
  nodes[0]->Kill();
  ASSERT_TRUE(nodes[0]->Start().ok()) << nodes[0]->Stderr();
  ASSERT_TRUE(reach(0.4));
  EXPECT_EQ(nats.Stop(), 0);
  ASSERT_TRUE(nats.Start().ok());
  ASSERT_TRUE(reach(0.6));
  nodes[0]->Kill();
  ASSERT_TRUE(nodes[0]->Start().ok()) << nodes[0]->Stderr();
  producer.join();
  ASSERT_TRUE(reach(1.0)) << ResultCount(nc);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::this_thread::sleep_for(std::chrono::seconds(2));  // a late duplicate would show now
  std::vector<std::string> cas;
  for (const auto& n : nodes) cas.push_back(n->ca_pem());
  std::vector<std::size_t> by_ca = CheckResults(nc, published, cas, tmp.Sub("check"));
  std::cerr << docs << " documents in " << seconds << " s (" << docs / seconds
            << " docs/s, 3 nodes sharing 2 cores); sealed per node: " << by_ca[0] << " " << by_ca[1]
            << " " << by_ca[2] << "\n";
  for (auto& n : nodes) EXPECT_EQ(n->Stop(), 0);
}

}  // namespace qseal::testing::jetstream
