// OpenSSL's per-thread error queue as text for a Status message: the one helper every component
// that calls libcrypto uses (formats, tsa, revocation).
#pragma once

#include <string>

namespace qseal {

// Drains the calling thread's OpenSSL error queue into one line, entries separated by "; ", each
// with its data string when it has one (the why of a chain refusal, "Verify error:certificate has
// expired", lives there). "" when the queue was empty.
std::string DrainOpenSslErrors();

}  // namespace qseal
