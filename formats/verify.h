// Offline verification of a seal of any format (qsealctl verify, tests): the format is recognised
// from the seal's bytes (DER CMS ContentInfo: CAdES; XML with a ds:Signature: XAdES; "%PDF-":
// PAdES) and each requirement of its baseline B-B profile is checked and reported.
// Pure CPU apart from the content callback; thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "formats/format.h"

namespace qseal::formats {

// One requirement checked by a verifier.
struct Check {
  std::string name;  // stable identifier, e.g. "message-digest", "signature", "chain"
  bool ok = false;
  std::string detail;  // what was found; the reason when !ok
};

struct VerifyReport {
  bool ok = false;            // every check held
  std::string format;         // e.g. "cades-detached", "cades-enveloping"
  std::vector<Check> checks;  // in the order performed; a failed structural check ends the list
  std::chrono::system_clock::time_point signing_time{};
  Bytes signer_certificate_der;
};

struct VerifyOptions {
  // Time at which the chain is validated. Default: now (B-B carries no proof of existence, so,
  // as in EN 319 102-1 basic validation, the chain must be valid at validation time).
  std::optional<std::chrono::system_clock::time_point> validation_time;
};

// Verifies `seal` against `trust_anchors_der` (root or intermediate certificates the chain must
// end in). `detached_content` streams the document for a detached seal and must be nullopt for
// one that embeds it. Returns a report (ok=false with reasons) for a seal that fails its checks;
// an error Status when the seal's format is not recognised (kInvalidArgument), a detached seal
// comes without content or an embedding one with it (kInvalidArgument), a trust anchor does not
// parse (kInvalidArgument), or `detached_content` fails (its Status).
Result<VerifyReport> VerifySeal(ByteSpan seal, const std::optional<ReadFn>& detached_content,
                                const std::vector<Bytes>& trust_anchors_der,
                                const VerifyOptions& options = {});

}  // namespace qseal::formats
