// Offline verification of a PAdES (B-B, B-T, B-LT) sealed PDF (ETSI EN 319 142-1): every
// signature field with a value is checked and reported. formats::VerifySeal (formats/verify.h)
// calls it for a seal starting with "%PDF-"; call it directly when the seal is known to be a PDF.
// Pure CPU; thread-safe.
#pragma once

#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "formats/verify.h"

namespace qseal::formats::pades {

// Verifies the signed PDF `pdf` against `trust_anchors_der`. Checks, per signature field (each
// check's name is "<field name>/<check>"): sub-filter (/ETSI.CAdES.detached), byte-range
// ([0 a b c] whose gap is exactly the /Contents hex string, ending at the end of the file or of
// an earlier revision), contents (one DER CMS, zero padding after it), m (/M parses and lies in
// the signer certificate's validity), then every check of cades::Verify over the ByteRange
// bytes with signing-time required absent; and, once for the file, "structure" (qpdf reads it,
// at least one signature), "whole-document" (the last signature covers every byte but its
// /Contents, or every revision but later ones that add only a DSS: new objects and the catalog's
// /DSS, nothing else) and, when the catalog has a /DSS, "dss" (each stream of /Certs, /OCSPs,
// /CRLs parses as a certificate, an OCSP response, a CRL). The report's format is "pades";
// signing_time and signer_certificate_der are those of the last signature. Returns a report
// (ok=false with reasons) for a PDF that fails; an error Status only when a trust anchor does
// not parse (kInvalidArgument).
Result<formats::VerifyReport> Verify(ByteSpan pdf, const std::vector<Bytes>& trust_anchors_der,
                                     const formats::VerifyOptions& options = {});

}  // namespace qseal::formats::pades
