// The audit trail's checkpoint key in the HSM (`[audit] checkpoint_key = "key:NAME"`): a signing
// function for audit::AuditOptions::checkpoint_signer that goes through the same signer, and so
// the same partitions, sessions and recovery, as the seals.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/bytes.h"
#include "common/status.h"
#include "hsm/signer.h"

namespace qseal::daemon {

// How long a checkpoint waits for the HSM before the audit log leaves it out (and tries again
// later): every record waits behind it on the writer thread.
inline constexpr std::chrono::seconds kCheckpointSignWait{5};

// Signs a SHA-256 digest with `key` (ECDSA) through `signer`, which must outlive the function.
// Errors: the signer's (kUnavailable while no partition of the key is up, ...), and
// kUnavailable when no signature came within kCheckpointSignWait.
std::function<Result<Bytes>(ByteSpan sha256)> CheckpointSigner(hsm::Signer& signer,
                                                               std::string key);

}  // namespace qseal::daemon
