// "raw-signature": the HSM's signature over a digest the client made, returned as it is, with no
// container around it. It serves the CSC API's signHash (ingest/detail/csc_handler.h), whose
// clients build their own container (PAdES, XAdES, ...) around the signature value. Only
// digest-only documents are accepted; the daemon makes these profiles itself, one per key,
// digest and scheme, so the config never names this format. Use formats::CreateFormat() with
// formats::kRawSignatureFormat to make it.
#pragma once

#include <memory>

#include "common/status.h"
#include "formats/format.h"

namespace qseal::formats::raw {

// Errors: kInvalidArgument for an empty or unparsable chain, or a leaf key that does not fit
// options.scheme. The result is immutable and thread-safe.
Result<std::unique_ptr<const Format>> CreateRawSignatureFormat(const FormatOptions& options);

}  // namespace qseal::formats::raw
