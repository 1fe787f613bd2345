// The broker scenarios (issue 20): qseald nodes draining a NATS JetStream work-queue stream.
//   jetstream     one node;
//   jetstream_2n  two nodes on this one host, consuming the same stream through one durable
//                 consumer (they share its cores: the figure is not two hosts' worth).
// A real nats-server -js is started in work/nats; the corpus is published to the stream first
// (one message per document, Nats-Msg-Id set), then the nodes start and drain it. docs/s =
// documents sealed after the nodes were ready / the time from then to the last result message in
// the result stream. Latency is not measured (every document waits in the backlog by design).
// A sample of o.verify_sample results is checked with `openssl cms -verify` against the exact
// bytes published; missing results, failures and failed checks count in fig.failed.
//
// Blocks until every document has a result (at most 30 minutes). Not thread-safe.
#pragma once

#include <string>

#include "bench/e2e/corpus.h"
#include "bench/e2e/options.h"
#include "bench/e2e/report.h"
#include "tests/testing/qseald_harness.h"

namespace qseal::bench::e2e {

// `nodes` (1 or 2) qseald nodes built from `base` (its key type and config edit), each with its
// own var/ under work/jetstream-N, consuming one stream. Returns the scenario's figures
// (scenario "jetstream" or "jetstream_2n"; CPU and RSS summed over the nodes).
Figures JetStreamScenario(const Options& o, const testing::QsealdOptions& base,
                          const Corpus& corpus, int nodes, const std::string& work);

}  // namespace qseal::bench::e2e
