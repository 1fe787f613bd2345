#include "bench/e2e/seal_kinds.h"

#include "tests/formats/pdf_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::bench::e2e {

SealKind XadesKind(const std::string& ca_pem) {
  SealKind kind;
  kind.profile = "invoice-xades";
  kind.content_type = "application/xml";
  kind.seal_suffix = ".xml";
  kind.check = [ca_pem](const std::string& seal, const std::string& content) -> std::string {
    // The seal must be this document signed, not any valid seal: its invoice number is unique.
    const std::string doc = testing::ReadFile(content);
    const std::size_t id = doc.find("<cbc:ID>INV-");
    const std::string signed_doc = testing::ReadFile(seal);
    if (id == std::string::npos ||
        signed_doc.find(doc.substr(id, doc.find('<', id + 1) - id)) == std::string::npos) {
      return "the seal does not hold its invoice's number";
    }
    if (signed_doc.find("<ds:Signature") == std::string::npos) return "no ds:Signature";
    // Enveloped: Reference URI="", so no external reference needs enabling.
    testing::CommandResult r = testing::RunCommand(
        "xmlsec1 --verify --trusted-pem " + testing::ShellQuote(ca_pem) +
        " --enabled-reference-uris empty,same-doc " + testing::ShellQuote(seal));
    return r.exit_code == 0 ? "" : "xmlsec1: " + r.output;
  };
  return kind;
}

SealKind PadesKind(const std::string& ca_pem, const std::string& nss_dir) {
  formats::testing::MakeNssDb(nss_dir, ca_pem);
  SealKind kind;
  kind.profile = "pdf-pades";
  kind.content_type = "application/pdf";
  kind.seal_suffix = ".pdf";
  kind.check = [nss_dir](const std::string& seal, const std::string& content) -> std::string {
    const std::string pdf = testing::ReadFile(content);
    const std::string signed_pdf = testing::ReadFile(seal);
    if (signed_pdf.size() <= pdf.size() || signed_pdf.compare(0, pdf.size(), pdf) != 0) {
      return "the original is not a prefix of the seal";
    }
    formats::testing::PdfsigVerdict v = formats::testing::Pdfsig(nss_dir, seal);
    if (v.signatures != 1 || v.valid != 1 || v.trusted != 1 || v.total_document != 1) {
      return "pdfsig: " + v.output;
    }
    formats::testing::Cmd qpdf = formats::testing::QpdfCheck(seal);
    return qpdf.exit_code == 0 ? "" : "qpdf --check: " + qpdf.output;
  };
  return kind;
}

}  // namespace qseal::bench::e2e
