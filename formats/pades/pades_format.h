// PAdES baseline B-B seals (ETSI EN 319 142-1) behind formats::Format, as format "pades": the
// output is the PDF itself with an incremental update appended (the original bytes are an
// unchanged prefix) holding a signature dictionary (/SubFilter /ETSI.CAdES.detached) whose
// /Contents is a CAdES detached CMS over the /ByteRange, made by formats/cades without the
// signing-time attribute (the time is /M). B-T puts the signature time-stamp in that CMS; B-LT
// appends a second update with a DSS dictionary (the chain, OCSP responses, CRLs) after the
// sealed revision. What is appended and why: docs/pades.md.
// Use formats::CreateFormat("pades", ...) (formats/format.h); this header is what it calls.
#pragma once

#include <cstdint>
#include <memory>

#include "common/status.h"
#include "formats/format.h"

namespace qseal::formats::pades {

// When the content offers random access (Content::read_at, as the engine's queue payloads do),
// qpdf reads the document by offset and Prepare's memory does not grow with its size. Without it
// Prepare holds the document in memory while qpdf parses it; such documents larger than this are
// refused with kInvalidArgument.
inline constexpr std::uint64_t kDefaultMaxDocumentBytes = std::uint64_t{256} << 20;

// Makes the PAdES format for one profile. Prepare refuses (kInvalidArgument, permanent, the
// message says why) non-PDF input, encrypted PDFs, PDFs whose xref or trailer qpdf cannot read
// without repairing them, PDFs without pages, PDFs certified with DocMDP P=1, and documents read
// without random access over `max_document_bytes`. A PDF already signed gets its seal in a new
// revision; the earlier signatures stay valid. Errors: those of cades::SignerContext::Create
// (kInvalidArgument). The result is immutable and thread-safe.
Result<std::unique_ptr<const Format>> CreatePadesFormat(
    const FormatOptions& options, std::uint64_t max_document_bytes = kDefaultMaxDocumentBytes);

}  // namespace qseal::formats::pades
