#include "bench/e2e/seal_kinds.h"

#include <string>

#include "tests/formats/pdf_test_util.h"
#include "tests/testing/testing.h"
#include "tests/tsa/test_tsa.h"

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

SealKind TimestampedKind(const std::string& profile, const std::string& ca_pem,
                         const std::string& tsa_ca_pem) {
  SealKind kind;
  kind.profile = profile;
  kind.check = [ca_pem, tsa_ca_pem](const std::string& seal,
                                    const std::string& content) -> std::string {
    std::string cms = testing::OpensslVerify(seal, ca_pem, content);
    if (!cms.empty()) return "openssl cms -verify: " + cms;
    testing::TimestampedSeal parts = testing::ReadTimestampedSeal(testing::ReadFile(seal));
    if (!parts.parsed) return "not CMS";
    if (parts.tokens.size() != 1) return std::to_string(parts.tokens.size()) + " time-stamp tokens";
    std::string ts =
        testing::OpensslTsVerify(parts.tokens[0], parts.signature, tsa_ca_pem, seal + ".tst");
    return ts.empty() ? "" : "openssl ts -verify: " + ts;
  };
  return kind;
}

}  // namespace qseal::bench::e2e
