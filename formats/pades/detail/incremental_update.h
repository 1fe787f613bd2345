// The incremental update qseal appends to a PDF to seal it (ISO 32000-1 7.5.6, 12.8): a signature
// dictionary with a /Contents placeholder, an invisible signature field merged with its widget,
// an empty appearance stream, a new version of the catalog (or of the AcroForm), of the page
// carrying the widget, and a cross-reference section of the original's kind (table or stream)
// chained to it with /Prev. Internal to formats/pades; pure CPU.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/bytes.h"
#include "common/status.h"
#include "formats/pades/detail/pdf_open.h"

namespace qseal::formats::pades::detail {

struct UpdateRequest {
  // Bytes the CMS may take; /Contents is a hex string of twice as many digits.
  std::size_t contents_capacity = 0;
  // Written as /M (whole seconds, UTC).
  std::chrono::system_clock::time_point signing_time{};
};

// The appended bytes, /Contents filled with '0' digits, and where the signature goes.
struct IncrementalUpdate {
  Bytes bytes;
  // Offset in `bytes` of the '<' opening /Contents; the hex string, with both delimiters, is
  // 2 * contents_capacity + 2 bytes long and is the gap in /ByteRange.
  std::size_t contents_offset = 0;
  std::size_t contents_capacity = 0;
  // The signature field's name (/T), unique among the document's top-level fields.
  std::string field_name;
};

// Builds the update for `original` (the whole document, parsed with qpdf, which reads it by
// offset; see pdf_open.h for the refusals), so that original + bytes is the sealed PDF once the CMS
// is written into /Contents. /ByteRange is already final. Errors: kInvalidArgument for a document
// qseal refuses (those of OpenPdf; a DocMDP certification that allows no changes), with the reason.
// Pure CPU; safe to call concurrently.
Result<IncrementalUpdate> BuildIncrementalUpdate(const PdfBytes& original,
                                                 const UpdateRequest& request);

// "D:YYYYMMDDHHmmSSZ" for `t` (UTC, whole seconds).
std::string PdfDate(std::chrono::system_clock::time_point t);

}  // namespace qseal::formats::pades::detail
