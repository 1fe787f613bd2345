#include "formats/pades/detail/pdf_open.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#include <qpdf/QPDFExc.hh>

namespace qseal::formats::pades::detail {
namespace {

constexpr std::string_view kHeader = "%PDF-";
constexpr std::size_t kTailWindow = 1024;

std::string_view View(ByteSpan b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

bool IsPdfSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\0';
}

}  // namespace

Result<std::uint64_t> LastStartXref(ByteSpan pdf) {
  std::string_view text = View(pdf);
  std::size_t from = text.size() > kTailWindow ? text.size() - kTailWindow : 0;
  std::size_t at = text.rfind("startxref");
  if (at == std::string_view::npos || at < from) {
    return InvalidArgumentError("no startxref in the last 1 KiB (truncated or not a PDF)");
  }
  std::size_t i = at + std::strlen("startxref");
  while (i < text.size() && IsPdfSpace(text[i])) ++i;
  std::uint64_t value = 0;
  std::size_t digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 19; ++i, ++digits) {
    value = value * 10 + static_cast<std::uint64_t>(text[i] - '0');
  }
  if (digits == 0 || value >= text.size()) {
    return InvalidArgumentError("startxref does not point into the file");
  }
  return value;
}

Result<bool> IsXrefStream(ByteSpan pdf, std::uint64_t offset) {
  std::string_view text = View(pdf);
  if (offset >= text.size()) return InvalidArgumentError("xref offset beyond the end of the file");
  std::size_t i = static_cast<std::size_t>(offset);
  while (i < text.size() && IsPdfSpace(text[i])) ++i;
  if (text.substr(i, 4) == "xref") return false;
  if (i < text.size() && text[i] >= '0' && text[i] <= '9') return true;
  return InvalidArgumentError("startxref points at neither an xref table nor an xref stream");
}

Result<std::unique_ptr<QPDF>> OpenPdf(ByteSpan pdf) {
  // qpdf tolerates a header after leading junk and shifts every offset by it; an update appended
  // to such a file would have to repeat that shift, so only a header at byte 0 is accepted.
  if (View(pdf).substr(0, kHeader.size()) != kHeader) {
    return InvalidArgumentError("not a PDF: the document does not start with %PDF-");
  }
  QSEAL_RETURN_IF_ERROR(LastStartXref(pdf).status());
  return CatchQpdf("PDF structure is broken", [&]() -> Result<std::unique_ptr<QPDF>> {
    auto q = std::make_unique<QPDF>();
    q->setSuppressWarnings(true);
    q->setAttemptRecovery(false);
    try {
      q->processMemoryFile("document", reinterpret_cast<const char*>(pdf.data()), pdf.size());
    } catch (const QPDFExc& e) {
      if (e.getErrorCode() != qpdf_e_password) throw;
      return InvalidArgumentError(
          "encrypted PDF (a user password is set): qseal does not seal encrypted documents");
    }
    if (q->isEncrypted()) {
      return InvalidArgumentError("encrypted PDF: qseal does not seal encrypted documents");
    }
    // Walking the page tree resolves the catalog and every page: a broken object there throws
    // now rather than half-way through writing the update.
    if (q->getAllPages().empty()) return InvalidArgumentError("PDF has no pages");
    if (q->anyWarnings()) {
      return InvalidArgumentError(std::string("PDF structure is damaged: ") +
                                  q->getWarnings().front().what());
    }
    return q;
  });
}

}  // namespace qseal::formats::pades::detail
