// Opening a PDF held in memory with qpdf, for the sealer and the verifier: the refusals every
// PAdES operation shares (not a PDF, encrypted, a structure qpdf can only read by repairing it)
// and the translation of qpdf's exceptions into Status, in one place. Internal to formats/pades.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <qpdf/QPDF.hh>
#include <qpdf/QPDFObjectHandle.hh>

#include "common/bytes.h"
#include "common/status.h"

namespace qseal::formats::pades::detail {

// Parses `pdf` (which must outlive the result: qpdf reads the buffer in place) with recovery
// turned off and warnings collected, not printed. Errors (kInvalidArgument, the message says
// why): the bytes do not start with "%PDF-"; the cross-reference data or trailer is broken
// (an incremental update must chain onto a valid xref with /Prev, and repairing would mean
// rewriting the document, which qseal never does); the document is encrypted; it has no pages.
// Pure CPU; each call makes its own QPDF, so calls may run concurrently.
Result<std::unique_ptr<QPDF>> OpenPdf(ByteSpan pdf);

// Offset of the last cross-reference section, as written after the last "startxref" in the
// last 1 KiB of `pdf`. kInvalidArgument when there is none.
Result<std::uint64_t> LastStartXref(ByteSpan pdf);

// True when the section at `offset` is an xref stream ("N G obj"), false for a table ("xref").
Result<bool> IsXrefStream(ByteSpan pdf, std::uint64_t offset);

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
