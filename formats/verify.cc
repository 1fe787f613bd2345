#include "formats/verify.h"

#include "formats/cades/verify.h"
#include "formats/xades/verify.h"

namespace qseal::formats {

Result<VerifyReport> VerifySeal(ByteSpan seal, const std::optional<ReadFn>& detached_content,
                                const std::vector<Bytes>& trust_anchors_der,
                                const VerifyOptions& options) {
  // A CMS ContentInfo is a DER SEQUENCE; an XML seal starts with '<' (after an optional BOM and
  // whitespace); PDF seals get their own branch when their format lands.
  if (!seal.empty() && seal[0] == 0x30) {
    return cades::Verify(seal, detached_content, trust_anchors_der, options);
  }
  if (xades::LooksLikeXml(seal)) {
    return xades::Verify(seal, detached_content, trust_anchors_der, options);
  }
  return InvalidArgumentError("not a recognised seal format");
}

}  // namespace qseal::formats
