#include "formats/verify.h"

#include "formats/cades/verify.h"

namespace qseal::formats {

Result<VerifyReport> VerifySeal(ByteSpan seal, const std::optional<ReadFn>& detached_content,
                                const std::vector<Bytes>& trust_anchors_der,
                                const VerifyOptions& options) {
  // A CMS ContentInfo is a DER SEQUENCE; XML and PDF seals start otherwise and get their own
  // branch when their formats land.
  if (!seal.empty() && seal[0] == 0x30) {
    return cades::Verify(seal, detached_content, trust_anchors_der, options);
  }
  return InvalidArgumentError("not a recognised seal format");
}

}  // namespace qseal::formats
