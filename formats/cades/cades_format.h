// The CAdES formats behind formats::Format: "cades-detached" (.p7s, application/pkcs7-signature)
// and "cades-enveloping" (.p7m, application/pkcs7-mime, embeds the document), built on the
// functions of formats/cades/cades.h. Use formats::CreateFormat() (formats/format.h) to make
// them by name; this header is what formats/format.cc calls.
#pragma once

#include <memory>

#include "common/status.h"
#include "formats/cades/cades.h"
#include "formats/format.h"

namespace qseal::formats::cades {

// Makes the CAdES format with `packaging` for one profile (a SignerContext made from `options`).
// Errors: those of SignerContext::Create (kInvalidArgument). The result is immutable and
// thread-safe.
Result<std::unique_ptr<const Format>> CreateCadesFormat(Packaging packaging,
                                                        const FormatOptions& options);

}  // namespace qseal::formats::cades
