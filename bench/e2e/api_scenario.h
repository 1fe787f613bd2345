// The api scenarios: qseald fed through its HTTP API by many concurrent clients on this machine.
//   single (batch == 0)  --clients clients, one POST /v1/documents per document (no ?wait), each
//                        outcome polled with GET /v1/documents/{id};
//   batch (batch > 0)    --batch-clients clients, `batch` documents per POST /v1/batches
//                        (multipart/mixed), outcomes by long-polls of POST /v1/batches/status.
// documents/s runs from the first submit to the last sealed_at; latency is sealed_at -
// created_at from the status JSON. A 503 is retried after its Retry-After.
//
// Blocks until every document is sealed or failed (at most 30 minutes per poller). Not
// thread-safe: one scenario at a time on a daemon.
#pragma once

#include <string>

#include "bench/e2e/corpus.h"
#include "bench/e2e/options.h"
#include "bench/e2e/report.h"
#include "tests/testing/qseald_harness.h"

namespace qseal::bench::e2e {

// Submits `n` documents (the corpus, round robin when n exceeds it) to the running `q` as
// scenario `name`, and collects their outcomes, qseald's CPU and peak RSS, and the harness's own
// client CPU. Then downloads a sample of o.verify_sample seals into `verify_dir` and checks each
// with `openssl cms -verify`. Failed submissions, failed or never-sealed documents and failed
// checks count in fig.failed. With --perf-dir, records qseald meanwhile.
Figures ApiScenario(const Options& o, testing::Qseald& q, const Corpus& corpus, int n,
                    const std::string& name, const std::string& verify_dir, int batch = 0);

}  // namespace qseal::bench::e2e
