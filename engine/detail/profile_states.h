// Each profile bound to its seal format, made once when the engine is created: the format built
// from the profile's key (its chain from the signer) and algorithms, and the profile's level
// checked against what the format can make. Internal to engine/.
#pragma once

#include <vector>

#include "common/status.h"
#include "engine/detail/job.h"
#include "engine/engine.h"
#include "hsm/signer.h"

namespace qseal::engine::detail {

// Errors: kInvalidArgument naming the profile (an unknown key, options its format refuses, B-T
// or B-LT asked of a format that does not make it).
Result<std::vector<ProfileState>> MakeProfileStates(const hsm::Signer& signer,
                                                    const std::vector<Profile>& profiles);

}  // namespace qseal::engine::detail
