// qseald --probe-hsm (docs/hsm-vendors.md): what an operator runs before the first start, against
// the real HSMs. It builds the signer from the configuration exactly as qseald does, so every
// partition is opened and logged in, every key found by its URI, its certificate checked against
// it and its protection attributes read, and one test digest signed and verified per partition
// and key; then it prints what the modules and tokens say about themselves (C_GetInfo,
// C_GetTokenInfo: manufacturer, model, firmware, flags), the sign mechanisms, and where each key
// has copies.
//
// Also the one place that turns the configuration into hsm::Signer's inputs (qseald uses it too).
//
// Free functions; thread-compatible.
#pragma once

#include <ostream>
#include <vector>

#include "daemon/config.h"
#include "hsm/signer.h"

namespace qseal::daemon {

// hsm::Signer::Create's arguments for `config`.
struct SignerInputs {
  hsm::SignerOptions options;
  std::vector<hsm::PartitionOptions> partitions;
  std::vector<hsm::KeyOptions> keys;
};
SignerInputs SignerInputsFor(const Config& config);

// Runs the probe, prints the report on `out` and problems on `err`. Returns the exit code: 0 when
// every partition is up and every key passed on every partition configured for it; 69
// (kExitUnavailable) when a partition cannot be reached or signs nothing; 78 (kExitConfig) when a
// key is refused (missing, not matching its certificate, extractable, below policy) or a PIN is
// wrong. Blocks while it probes the partitions one after the other.
int ProbeHsm(const Config& config, std::ostream& out, std::ostream& err);

}  // namespace qseal::daemon
