// The three-node JetStream scenario shared by the default run (a small count) and the long tier
// (docs/scale-out.md). Test-only.
#pragma once

namespace qseal::testing::jetstream {

// Three nodes, `docs` documents published meanwhile, node 1 SIGKILLed twice, the broker
// restarted once; gtest expectations on every result (see jetstream_cluster.cc).
void ThreeNodesAcrossKillsAndABrokerRestart(int docs);

}  // namespace qseal::testing::jetstream
