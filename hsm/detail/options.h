// The checks on the signer's options that need no file, environment or HSM: counts and ranges,
// names present and unique, every key's URI well formed and its partitions configured.
// Implementation-only. A pure function; thread-safe.
#pragma once

#include <vector>

#include "common/status.h"
#include "hsm/signer.h"

namespace qseal::hsm::detail {

// OK, or kInvalidArgument naming the first option at fault (partition and key by name). The
// certificate, the PIN source and the modules are checked later, by Signer::Create, when they are
// loaded.
Status ValidateOptions(const SignerOptions& options,
                       const std::vector<PartitionOptions>& partitions,
                       const std::vector<KeyOptions>& keys);

}  // namespace qseal::hsm::detail
