// The qseald scenarios other than the API ones (api_scenario.h), and the config edit every
// qseald of the harness runs with:
//   watch    the corpus renamed into the watched inbox one file after the other; documents/s
//            from the first rename to the last seal's mtime in outbox/, latency = seal mtime -
//            rename time;
//   big      one --big-mib MiB document through the API: the time to seal it and qseald's peak
//            RSS for that run;
//   backlog  qseald's peak RSS with --backlog-docs documents queued and its HSM unreachable.
//
// Each blocks until its documents are sealed or failed (at most 30 minutes). Not thread-safe:
// one scenario at a time.
#pragma once

#include <functional>
#include <string>

#include "bench/e2e/corpus.h"
#include "bench/e2e/options.h"
#include "bench/e2e/report.h"
#include "tests/testing/qseald_harness.h"

namespace qseal::bench::e2e {

// The edit of conf/qseald.toml for testing::QsealdOptions::edit_config: `partitions` (1 or 2)
// partitions of `sessions` sessions each, and body and file limits of 2 GiB (room for the big
// scenario's document; no other scenario comes near either limit).
std::function<void(std::string&)> EditConfig(int partitions, int sessions);

// Drops every file of `corpus` into the running `q`'s watched inbox (copies staged under
// work/stage, then one rename each, as a producer does) and waits until each is sealed in
// outbox/ or failed. Checks a sample of o.verify_sample seals with `openssl cms -verify`; missing
// seals and failed checks count in fig.failed.
Figures WatchScenario(const Options& o, testing::Qseald& q, const Corpus& corpus,
                      const std::string& work);

// Issue 8's memory target: qseald with `o.backlog_docs` 2 KiB documents queued. The queue under
// var/ is filled first, through queue::Queue as the API's commit path does (synced group
// commits), then qseald starts on it with its HSM unreachable (the shim with down=1), so nothing
// drains: the engine leases up to its in-flight bound, the signer holds those requests until
// max_queue_time and they go back with back-off, as in a real HSM outage. qseald's peak RSS
// (VmHWM) is read after it loaded the queue and ran for `o.backlog_seconds`; the API must still
// answer (a 503 "queue full" is the expected answer at the high watermark).
// Runs in work/backlog with its own qseald and var/ (the tokens provisioned afresh); fig.failed
// is the documents that could not be queued, or all of them when qseald does not start or its
// API does not answer.
Figures BacklogScenario(const Options& o, const std::string& work);

// One document of o.big_mib MiB, written to work/big.bin, through the running `q`'s API with
// ?wait=60 and then polled (start qseald afresh first, so its VmHWM is this run's). fig.docs_per_s
// is 1 / the seconds to seal; fig.failed is 1 when it was not sealed or its seal does not verify.
Figures BigScenario(const Options& o, testing::Qseald& q, const std::string& work);

}  // namespace qseal::bench::e2e
