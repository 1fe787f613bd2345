#include "formats/format.h"

#include <algorithm>
#include <string>

#include "formats/cades/cades_format.h"
#include "formats/pades/pades_format.h"
#include "formats/raw/raw_format.h"
#include "formats/xades/xades_format.h"

namespace qseal::formats {

Status StreamContent(const Content& content, const std::function<Status(ByteSpan piece)>& each) {
  QSEAL_ASSIGN_OR_RETURN(ReadFn read, content.open());
  // One buffer per document, never larger than the document (a small file needs no 256 KiB).
  std::vector<std::uint8_t> buf(
      std::min<std::uint64_t>(std::max<std::size_t>(content.read_chunk_bytes, 1),
                              std::max<std::uint64_t>(content.size, 1)));
  std::uint64_t total = 0;
  while (true) {
    QSEAL_ASSIGN_OR_RETURN(std::size_t n, read(buf));
    if (n == 0) break;
    total += n;
    // Never hand on more than content.size bytes: a format may have sized its output by it.
    if (total > content.size) break;
    QSEAL_RETURN_IF_ERROR(each(ByteSpan(buf.data(), n)));
  }
  if (total != content.size) {
    return DataLossError("content " + content.name + " has " +
                         (total > content.size ? "more than " + std::to_string(content.size)
                                               : std::to_string(total)) +
                         " bytes, expected " + std::to_string(content.size));
  }
  return Status::Ok();
}

std::string SafeOutputStem(std::string_view document_name) {
  if (document_name.empty() || document_name.front() == '.' ||
      document_name.find('/') != std::string_view::npos) {
    return "document";
  }
  return std::string(document_name);
}

Result<std::unique_ptr<const Format>> CreateFormat(std::string_view name,
                                                   const FormatOptions& options) {
  if (name == "cades-detached")
    return cades::CreateCadesFormat(cades::Packaging::kDetached, options);
  if (name == "cades-enveloping") {
    return cades::CreateCadesFormat(cades::Packaging::kEnveloping, options);
  }
  if (name == "xades-enveloped") {
    return xades::CreateXadesFormat(xades::Packaging::kEnveloped, options);
  }
  if (name == "xades-detached") {
    return xades::CreateXadesFormat(xades::Packaging::kDetached, options);
  }
  if (name == "pades") return pades::CreatePadesFormat(options);
  if (name == kRawSignatureFormat) return raw::CreateRawSignatureFormat(options);
  std::string known;
  for (std::string_view n : FormatNames()) {
    if (!known.empty()) known += ", ";
    known += n;
  }
  return InvalidArgumentError("unknown seal format \"" + std::string(name) + "\" (known: " + known +
                              ")");
}

}  // namespace qseal::formats
