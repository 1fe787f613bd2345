// The baselines every qseald figure is compared with, measured in the same run on the same
// SoftHSM2 tokens and key:
//   raw            a bare multi-threaded C_SignInit+C_Sign loop, one thread per session (the
//                  ceiling of this HSM here);
//   openssl_seq    `openssl cms -sign -binary -cades` per file through the pkcs11 engine, one
//                  after the other (what an operator scripts today);
//   openssl_xargs  the same under `xargs -P N`.
//
// Both block for the length of the measurement. Not thread-safe: run one at a time, with no other
// user of the SoftHSM2 module in this process.
#pragma once

#include <string>
#include <vector>

#include "bench/e2e/corpus.h"
#include "bench/e2e/options.h"
#include "bench/e2e/report.h"
#include "tests/testing/testing.h"

namespace qseal::bench::e2e {

// One thread per session, `sessions` on each of `tokens` (logged in with the PIN in `pin_file`),
// each in a C_SignInit+C_Sign loop for o.raw_seconds. Returns the C_Sign/s of all threads, -1
// when the module cannot be loaded. With `fig`, adds the signatures to fig->docs and sets
// fig->cpu_s_per_1000 (this process's CPU). Loads and finalises the module itself, so nothing else
// in this process may hold it meanwhile. `module`: the PKCS#11 module to load (a shim copy, for the
// raw rate through the shim); empty: SoftHSM2.
double RawLoop(const Options& o, const std::string& pin_file,
               const std::vector<std::string>& tokens, int sessions, Figures* fig,
               const std::string& module = "");

// Signs the first o.openssl_docs files of `corpus` with the openssl CLI on token qseal-p1 of
// `hsm`: one process after the other (`parallel` == 1, scenario openssl_seq) or `parallel`
// at a time under xargs (openssl_xargs), into work/SCENARIO/. Files not signed and a failed
// `openssl cms -verify` of the first o.verify_sample seals count in fig.failed.
Figures OpensslLoop(const Options& o, const testing::SoftHsm& hsm, const Corpus& corpus,
                    const std::string& work, int parallel);

}  // namespace qseal::bench::e2e
