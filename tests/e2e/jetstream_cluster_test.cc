// The long JetStream scenario (label slow; docs/scale-out.md): tests/e2e/jetstream_cluster.cc
// with 20 000 documents (set QSEAL_JS_DOCS for another count).
#include "tests/e2e/jetstream_cluster.h"

#include <cstdlib>

#include <gtest/gtest.h>

namespace qseal {
namespace {

int DocCount() {
  const char* v = std::getenv("QSEAL_JS_DOCS");
  return v != nullptr && std::atoi(v) > 0 ? std::atoi(v) : 20000;
}

TEST(JetStreamClusterTest, ThreeNodesSealEveryDocumentOnceAcrossKillsAndABrokerRestart) {
  testing::jetstream::ThreeNodesAcrossKillsAndABrokerRestart(DocCount());
}

}  // namespace
}  // namespace qseal
