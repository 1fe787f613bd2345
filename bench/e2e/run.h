// One run of the harness, in this order: the corpus under a work dir (a temp dir, or --keep), the
// SoftHSM2 tokens, raw (before), the openssl loops, the qseald scenarios (api, api_batch, watch,
// big, audit; qseald restarted on an empty queue for each), raw (after; the baseline is the mean
// of both), backlog, then the shim scenarios on their own qseald; finally the report
// (report.h). Only the scenarios in o.scenarios run.
//
// Blocks for the whole run; not thread-safe (one run per process: it loads the PKCS#11 module).
#pragma once

#include "bench/e2e/options.h"

namespace qseal::bench::e2e {

// Returns the process exit code: 0, or 1 when provisioning failed, a qseald did not start, or a
// scenario other than the openssl baselines had a failure (a failed document or seal check).
int Run(const Options& o);

}  // namespace qseal::bench::e2e
