// The api scenarios: qseald fed through its HTTP API by many concurrent clients on this machine.
//   single (batch == 0)  --clients clients, one POST /v1/documents per document (no ?wait), each
//                        outcome polled with GET /v1/documents/{id};
//   batch (batch > 0)    --batch-clients clients, `batch` documents per POST /v1/batches
//                        (multipart/mixed), outcomes by long-polls of POST /v1/batches/status.
//   open loop (arrival_per_s > 0, single only) document i is due at t0 + i / arrival_per_s,
//                        whatever the earlier ones did: each client sends the next due document
//                        once its time comes, and the latency runs from the due time (not the
//                        send), so a stalled daemon cannot hide its queueing (no coordinated
//                        omission); --clients bounds the requests in flight.
// documents/s runs from the first submit to the last sealed_at; latency is sealed_at -
// created_at from the status JSON (open loop: sealed_at - due time). A 503 is retried after its
// Retry-After.
//
// Blocks until every document is sealed or failed (at most 30 minutes per poller). Not
// thread-safe: one scenario at a time on a daemon.
#pragma once

#include <functional>
#include <string>

#include "bench/e2e/corpus.h"
#include "bench/e2e/options.h"
#include "bench/e2e/report.h"
#include "tests/testing/qseald_harness.h"

namespace qseal::bench::e2e {

// What an api scenario submits and how its seals are checked (seal_kinds.h makes the XAdES and
// PAdES ones). The default: profile `default` (CAdES detached), `openssl cms -verify` against the
// daemon's CA.
struct SealKind {
  std::string profile = "default";
  std::string content_type;          // sent as Content-Type when not empty
  std::string seal_suffix = ".p7s";  // the downloaded seal's file name ends so
  // Checks the seal at `seal_path` of the document at `content_path`: "" when it holds, else
  // what failed. Empty: the default's check.
  std::function<std::string(const std::string& seal_path, const std::string& content_path)> check;
};

// Submits `n` documents (the corpus, round robin when n exceeds it) to the running `q` as
// scenario `name`, and collects their outcomes, qseald's CPU and peak RSS, and the harness's own
// client CPU. Then downloads a sample of o.verify_sample seals into `verify_dir` and checks each
// with kind.check. Failed submissions, failed or never-sealed documents and failed
// checks count in fig.failed. With --perf-dir, records qseald meanwhile.
Figures ApiScenario(const Options& o, testing::Qseald& q, const Corpus& corpus, int n,
                    const std::string& name, const std::string& verify_dir, int batch = 0,
                    const SealKind& kind = {}, double arrival_per_s = 0);

}  // namespace qseal::bench::e2e
