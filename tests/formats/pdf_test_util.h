// Test-only helpers for the PAdES tests: PDFs written by qpdf (a real producer: xref table or
// xref stream with object streams, a PDF/A-3-like invoice with an embedded Factur-X XML, an
// encrypted one) and by hand (a minimal file), sealing through formats::Format, and the
// independent checks: pdfsig against an NSS database that trusts the test CA, qpdf --check.
// Thread-compatible.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "formats/format.h"
#include "tests/formats/cades_test_util.h"

namespace qseal::formats::testing {

enum class XrefKind { kTable, kStream };

// A PDF of `pages` pages with a line of text each, written by QPDFWriter: a classic xref table
// (object streams off) or an xref stream with object streams. `padding_bytes` > 0 adds a stream
// of that many pseudo-random (incompressible) bytes, referenced from the catalog, to reach a
// realistic size (an invoice with a logo is ~100 KiB).
std::string MakeQpdfPdf(int pages, XrefKind xref, std::size_t padding_bytes = 0);
// A PDF/A-3-like invoice, as Factur-X makes them: XMP metadata claiming PDF/A-3B, the CII XML
// embedded as factur-x.xml (/AFRelationship /Data, listed in the catalog's /AF), and an indirect
// AcroForm with one text field. Written by QPDFWriter with an xref stream.
std::string MakeFacturXLikePdf();
// The invoice XML MakeFacturXLikePdf embeds.
std::string FacturXXml();
// A hand-written one-page PDF whose catalog has a direct /AcroForm with empty /Fields and whose
// last byte is the F of %%EOF (no end-of-line).
std::string MakeMinimalPdf();
// A PDF 1.4 file written as text: objects[k] is object k + 1 (object 1 the catalog), then a
// classic xref table and the trailer; an end-of-line after %%EOF only with `eol_after_eof`.
std::string HandWrittenPdf(const std::vector<std::string>& objects, bool eol_after_eof);
// Writes to `path` a one-page PDF 1.4 (classic xref) whose catalog references a stream of
// `stream_bytes` pseudo-random bytes, written in pieces so that a 1 GiB file never sits in memory.
// Returns the file's size.
std::uint64_t WriteLargePdf(const std::string& path, std::uint64_t stream_bytes);
// A two-page invoice written by Ghostscript (ps2pdf) from PostScript, in `dir`.
std::string MakeGhostscriptPdf(const std::string& dir);
// The Ghostscript invoice rewritten by cairo (pdftocairo -pdf), in `dir`.
std::string MakeCairoPdf(const std::string& dir);
// MakeQpdfPdf(1, kTable) encrypted by QPDFWriter (R6, AES-256) with `user_password`.
std::string MakeEncryptedPdf(const std::string& user_password);

// A Content reading `data` (which must outlive it) in small chunks.
Content StringContent(const std::string& data, std::string name = "invoice.pdf");

// Prepare + sign + Assemble through `format`; the signer gets ToBeSigned::digest. With
// `validation_data`, the seal is B-LT (it is set before Assemble, as the engine does).
using SignFn = std::function<Result<Bytes>(ByteSpan digest)>;
Result<std::string> SealPdf(
    const Format& format, const std::string& pdf, const SignFn& sign,
    std::chrono::system_clock::time_point signing_time = std::chrono::system_clock::now(),
    std::shared_ptr<const ValidationData> validation_data = nullptr);

// A fresh NSS database in `dir` (created) trusting the CA certificate(s) of `ca_pem_path`.
void MakeNssDb(const std::string& dir, const std::string& ca_pem_path);

// pdfsig's verdict on `pdf_path` with the NSS database `nss_dir`.
struct PdfsigVerdict {
  int exit_code = -1;
  std::string output;
  int signatures = 0;      // "Signature #N" blocks
  int valid = 0;           // "Signature is Valid."
  int trusted = 0;         // "Certificate is Trusted."
  int total_document = 0;  // "Total document signed"
};
PdfsigVerdict Pdfsig(const std::string& nss_dir, const std::string& pdf_path);

// `qpdf --check` (exit 0: no errors, no warnings).
Cmd QpdfCheck(const std::string& pdf_path);

// The CMS in the /Contents of the last signature dictionary of `pdf` (hex decoded; the zero
// padding after it is left on, as DER readers ignore it); empty without one.
std::string LastSignatureCms(const std::string& pdf);

// The streams the catalog's /DSS lists under `key` ("/Certs", "/OCSPs" or "/CRLs"), their bytes
// as `qpdf --json` (not qseal's code) reads them; empty when there is no DSS or no such key.
std::vector<std::string> DssStreams(const std::string& pdf_path, const std::string& key);

void WriteStringFile(const std::string& path, const std::string& data);

}  // namespace qseal::formats::testing
