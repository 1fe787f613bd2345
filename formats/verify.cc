#include "formats/verify.h"

#include <algorithm>
#include <string_view>

#include "formats/cades/verify.h"
#include "formats/pades/verify.h"
#include "formats/xades/verify.h"

namespace qseal::formats {

Result<VerifyReport> VerifySeal(ByteSpan seal, const std::optional<ReadFn>& detached_content,
                                const std::vector<Bytes>& trust_anchors_der,
                                const VerifyOptions& options) {
  // A CMS ContentInfo is a DER SEQUENCE; an XML seal starts with '<' (after an optional BOM and
  // whitespace); a PDF starts with its header.
  if (!seal.empty() && seal[0] == 0x30) {
    return cades::Verify(seal, detached_content, trust_anchors_der, options);
  }
  if (xades::LooksLikeXml(seal)) {
    return xades::Verify(seal, detached_content, trust_anchors_der, options);
  }
  constexpr std::string_view kPdfHeader = "%PDF-";
  if (seal.size() >= kPdfHeader.size() &&
      std::equal(kPdfHeader.begin(), kPdfHeader.end(), seal.begin())) {
    if (detached_content.has_value()) {
      return InvalidArgumentError("PAdES seal: the PDF carries its content, none may be given");
    }
    return pades::Verify(seal, trust_anchors_der, options);
  }
  return InvalidArgumentError("not a recognised seal format");
}

}  // namespace qseal::formats
