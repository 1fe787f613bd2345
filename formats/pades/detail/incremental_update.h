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
#include <vector>

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

// What a later update needs to chain onto a revision and give its catalog a /DSS (B-LT).
struct RevisionTail {
  int catalog_num = 0, catalog_gen = 0;
  // The catalog as the revision has it, without /DSS and without the closing ">>".
  std::string catalog_open;
  // The elements of an earlier /DSS's /Certs, /OCSPs and /CRLs (references, space-separated),
  // kept in the new one, and its /VRI as written; empty when there was none.
  std::string dss_certs, dss_ocsps, dss_crls, dss_vri;
  // The revision's /Size: the first object number free after it.
  int size = 0;
  bool xref_stream = false;
  // The trailer's /Root, /Info and /ID entries, as a later trailer repeats them.
  std::string trailer_entries;
  // Absolute offset of the revision's cross-reference section (the next one's /Prev).
  std::uint64_t xref_offset = 0;
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
  // The sealed revision's end state, for a DSS update after it.
  RevisionTail tail;
};

// The validation data a DSS dictionary (ETSI EN 319 142-1 §5.4, ISO 32000-2 12.8.4.3) holds, DER.
struct DssContent {
  std::vector<Bytes> certificates;
  std::vector<Bytes> ocsp_responses;
  std::vector<Bytes> crls;
};

// Builds the update for `original` (the whole document, parsed with qpdf, which reads it by
// offset; see pdf_open.h for the refusals), so that original + bytes is the sealed PDF once the CMS
// is written into /Contents. /ByteRange is already final. Errors: kInvalidArgument for a document
// qseal refuses (those of OpenPdf; a DocMDP certification that allows no changes), with the reason.
// Pure CPU; safe to call concurrently.
Result<IncrementalUpdate> BuildIncrementalUpdate(const PdfBytes& original,
                                                 const UpdateRequest& request);

// A second incremental update, appended after the sealed revision `tail` describes (which ends at
// byte `revision_end`), holding one stream per item of `dss`, a /DSS dictionary keeping an earlier
// DSS's entries, a new catalog version naming it, and a cross-reference section of the same kind
// chained with /Prev. It changes nothing the signature covers, so the signature stays valid.
// Pure CPU.
Bytes BuildDssUpdate(const RevisionTail& tail, std::uint64_t revision_end, const DssContent& dss);

// "D:YYYYMMDDHHmmSSZ" for `t` (UTC, whole seconds).
std::string PdfDate(std::chrono::system_clock::time_point t);

}  // namespace qseal::formats::pades::detail
