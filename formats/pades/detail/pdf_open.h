// Opening a PDF with qpdf (held in memory, or read by offset through a callback), for the sealer
// and the verifier: the refusals every PAdES operation shares (not a PDF, encrypted, a structure
// qpdf can only read by repairing it) and the translation of qpdf's exceptions into Status, in one
// place. Internal to formats/pades.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include <qpdf/QPDF.hh>
#include <qpdf/QPDFObjectHandle.hh>

#include "common/bytes.h"
#include "common/status.h"

namespace qseal::formats::pades::detail {

// A PDF as qpdf and the update writer read it: its size and a positional read (0 at or past the
// end; the callback's errors make qpdf fail with them). Copyable; whatever `read_at` refers to
// must outlive every QPDF opened on it.
struct PdfBytes {
  std::uint64_t size = 0;
  std::function<Result<std::size_t>(std::uint64_t offset, std::span<std::uint8_t> buffer)> read_at;

  // Over bytes in memory (which must outlive the result).
  static PdfBytes InMemory(ByteSpan pdf);
  // Exactly `length` bytes at `offset` (fewer only at the end of the document).
  Result<Bytes> ReadRange(std::uint64_t offset, std::size_t length) const;
};

// Parses `pdf` (which must outlive the result: qpdf reads it on demand) with recovery
// turned off and warnings collected, not printed. Errors (kInvalidArgument, the message says
// why): the bytes do not start with "%PDF-"; the cross-reference data or trailer is broken
// (an incremental update must chain onto a valid xref with /Prev, and repairing would mean
// rewriting the document, which qseal never does); the document is encrypted; it has no pages.
// Pure CPU; each call makes its own QPDF, so calls may run concurrently.
Result<std::unique_ptr<QPDF>> OpenPdf(const PdfBytes& pdf);
inline Result<std::unique_ptr<QPDF>> OpenPdf(ByteSpan pdf) {
  return OpenPdf(PdfBytes::InMemory(pdf));
}

// Offset of the last cross-reference section, as written after the last "startxref" in the
// last 1 KiB of `pdf`. kInvalidArgument when there is none.
Result<std::uint64_t> LastStartXref(const PdfBytes& pdf);

// True when the section at `offset` is an xref stream ("N G obj"), false for a table ("xref").
Result<bool> IsXrefStream(const PdfBytes& pdf, std::uint64_t offset);

// qpdf throws (QPDFExc, std::runtime_error, std::logic_error): runs `fn` and turns an exception
// into kInvalidArgument "`what`: <qpdf's message>".
template <typename Fn>
auto CatchQpdf(const std::string& what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return InvalidArgumentError(what + ": " + e.what());
  }
}

}  // namespace qseal::formats::pades::detail
