// CAdES-B-T through a real qseald: a b-t profile asks the loopback test TSA (tokens made by
// OpenSSL's TS_RESP_CTX, tests/tsa/test_tsa.h) for a signature time-stamp of every seal. Each
// seal is checked by `openssl cms -verify` against the document, and its embedded token, read
// back with OpenSSL, by `openssl ts -verify` against the TSA's CA with digest(signature value)
// as the imprint. While the TSA misbehaves (503, wrong imprint, a certificate of another CA,
// dropped connections) no document is sealed, none is lost or sealed at B-B; once it is back the
// waiting ones are sealed. A document that waits past the profile's timestamp_wait fails with the
// TSA's reason.
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <libxml/c14n.h>
#include <libxml/parser.h>
#include <nlohmann/json.hpp>

#include "tests/formats/pdf_test_util.h"
#include "tests/testing/qseald_harness.h"
#include "tests/tsa/test_tsa.h"

namespace qseal {
namespace {

using nlohmann::json;
using testing::Qseald;
using testing::QsealdOptions;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

// The ds:SignatureValue element of a signed XML document, canonicalised in its place by
// libxml2 (exclusive C14N 1.0 over that element's subtree): what a XAdES SignatureTimeStamp
// covers. Computed on the whole output, not the way the format computes it. "" when not found.
std::string CanonicalSignatureValue(const std::string& xml) {
  xmlDocPtr doc =
      xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "seal.xml", nullptr, XML_PARSE_NONET);
  if (doc == nullptr) return "";
  xmlNodePtr found = nullptr;
  std::vector<xmlNodePtr> stack = {xmlDocGetRootElement(doc)};
  while (!stack.empty() && found == nullptr) {
    xmlNodePtr n = stack.back();
    stack.pop_back();
    for (; n != nullptr; n = n->next) {
      if (n->type != XML_ELEMENT_NODE) continue;
      if (std::string_view(reinterpret_cast<const char*>(n->name)) == "SignatureValue" &&
          n->ns != nullptr &&
          std::string_view(reinterpret_cast<const char*>(n->ns->href)) ==
              "http://www.w3.org/2000/09/xmldsig#") {
        found = n;
        break;
      }
      if (n->children != nullptr) stack.push_back(n->children);
    }
  }
  std::string out;
  if (found != nullptr) {
    xmlBufferPtr buffer = xmlBufferCreate();
    xmlOutputBufferPtr output = xmlOutputBufferCreateBuffer(buffer, nullptr);
    auto visible = [](void* root, xmlNodePtr node, xmlNodePtr parent) -> int {
      xmlNodePtr element =
          node->type == XML_NAMESPACE_DECL || node->type == XML_ATTRIBUTE_NODE ? parent : node;
      for (xmlNodePtr n = element; n != nullptr; n = n->parent) {
        if (n == root) return 1;
      }
      return 0;
    };
    if (xmlC14NExecute(doc, visible, found, XML_C14N_EXCLUSIVE_1_0, nullptr, 0, output) >= 0) {
      out.assign(reinterpret_cast<const char*>(xmlBufferContent(buffer)),
                 static_cast<std::size_t>(xmlBufferLength(buffer)));
    }
    xmlOutputBufferClose(output);
    xmlBufferFree(buffer);
  }
  xmlFreeDoc(doc);
  return out;
}

class TimestampTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir();
    Result<testing::TsaPki> pki = testing::MakeTsaPki(tmp_->Sub(""));
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = new testing::TsaPki(*pki);
    tsa_ = new testing::TestTsa(*pki_);
    ASSERT_TRUE(tsa_->Start().ok());
    QsealdOptions o;
    const std::string url = tsa_->url();
    const std::string ca = pki_->ca_pem;
    o.edit_config = [url, ca](std::string& conf) {
      // Quick retries for the test: the queue's back-off and the client's attempts.
      const std::string backoff = "retry_backoff = \"2s\"";
      const std::size_t at = conf.find(backoff);
      ASSERT_NE(at, std::string::npos);
      conf.replace(at, backoff.size(), "retry_backoff = \"200ms\"");
      conf += "\n[[tsa]]\nname = \"test-tsa\"\nurl = \"" + url + "\"\nca = \"" + ca +
              "\"\n"
              "\n[csc]\nenabled = true\n"
              "\n[tsa_client]\nmax_attempts = 2\nbackoff_initial = \"10ms\"\n"
              "breaker_failures = 1000\n"
              "\n[[profile]]\nname = \"default-t\"\nformat = \"cades-detached\"\nlevel = \"b-t\"\n"
              "tsa = [\"test-tsa\"]\ndigest = \"sha256\"\nscheme = \"${QSEAL_SCHEME:-ecdsa}\"\n"
              "key = \"seal\"\n"
              "\n[[profile]]\nname = \"invoice-t\"\nformat = \"cades-enveloping\"\n"
              "level = \"b-t\"\ntsa = [\"test-tsa\"]\ndigest = \"sha256\"\n"
              "scheme = \"${QSEAL_SCHEME:-ecdsa}\"\nkey = \"seal\"\n"
              "\n[[profile]]\nname = \"xades-t\"\nformat = \"xades-enveloped\"\n"
              "level = \"b-t\"\ntsa = [\"test-tsa\"]\ndigest = \"sha256\"\n"
              "scheme = \"${QSEAL_SCHEME:-ecdsa}\"\nkey = \"seal\"\n"
              "\n[[profile]]\nname = \"pdf-t\"\nformat = \"pades\"\n"
              "level = \"b-t\"\ntsa = [\"test-tsa\"]\ndigest = \"sha256\"\n"
              "scheme = \"${QSEAL_SCHEME:-ecdsa}\"\nkey = \"seal\"\n"
              "\n[[profile]]\nname = \"short-t\"\nformat = \"cades-detached\"\nlevel = \"b-t\"\n"
              "tsa = [\"test-tsa\"]\ntimestamp_wait = \"3s\"\ndigest = \"sha256\"\n"
              "scheme = \"${QSEAL_SCHEME:-ecdsa}\"\nkey = \"seal\"\n";
    };
    qseald_ = new Qseald(tmp_->Sub("d"), o);
    Status s = qseald_->Start();
    ASSERT_TRUE(s.ok()) << s << qseald_->Stderr();
  }
  static void TearDownTestSuite() {
    if (qseald_ != nullptr) {
      EXPECT_EQ(qseald_->Stop(), 0) << qseald_->Stderr();
    }
    delete qseald_;
    delete tsa_;
    delete pki_;
    delete tmp_;
  }

  // Submits `content` with `profile` (no wait); returns the document id.
  static std::string Submit(const std::string& content, const std::string& profile) {
    auto r = qseald_->Client().Request("POST", "/v1/documents?profile=" + profile, content,
                                       {{"X-Filename", "invoice.xml"}});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    EXPECT_EQ(r->status, 202) << r->body;
    return json::parse(r->body).value("id", "");
  }
  static json DocStatus(const std::string& id) {
    auto r = qseald_->Client().Request("GET", "/v1/documents/" + id);
    if (!r.ok() || r->status != 200) return json::object();
    return json::parse(r->body);
  }
  static bool WaitFinal(const std::string& id, std::chrono::seconds timeout) {
    return testing::WaitFor(
        [&] {
          std::string s = DocStatus(id).value("status", "");
          return s == "sealed" || s == "failed";
        },
        timeout, std::chrono::milliseconds(100));
  }

  // The seal of `id` checked by openssl: cms -verify against `content`, and its one token by
  // ts -verify against the TSA's CA with digest(signature value). "" when both pass.
  static std::string CheckBtSeal(const std::string& id, const std::string& content,
                                 bool enveloping = false) {
    auto seal = qseald_->Client().Request("GET", "/v1/documents/" + id + "/seal");
    if (!seal.ok() || seal->status != 200) return "seal not fetched";
    const std::string seal_path = tmp_->Sub(id + ".p7s");
    const std::string content_path = tmp_->Sub(id + ".xml");
    testing::WriteFile(seal_path, seal->body);
    testing::WriteFile(content_path, content);
    const std::string out_path = tmp_->Sub(id + ".out");
    std::string cms = enveloping
                          ? testing::OpensslVerify(seal_path, qseald_->ca_pem(), "", out_path)
                          : testing::OpensslVerify(seal_path, qseald_->ca_pem(), content_path);
    if (!cms.empty()) return "openssl cms -verify: " + cms;
    if (enveloping && testing::ReadFile(out_path) != content) return "enveloped content differs";
    testing::TimestampedSeal parts = testing::ReadTimestampedSeal(seal->body);
    if (parts.tokens.size() != 1) return std::to_string(parts.tokens.size()) + " time-stamps";
    std::string ts = testing::OpensslTsVerify(parts.tokens[0], parts.signature, pki_->ca_pem,
                                              tmp_->Sub(id + ".tst"));
    return ts.empty() ? "" : "openssl ts -verify: " + ts;
  }

  static inline TempDir* tmp_ = nullptr;
  static inline testing::TsaPki* pki_ = nullptr;
  static inline testing::TestTsa* tsa_ = nullptr;
  static inline Qseald* qseald_ = nullptr;
};

TEST_F(TimestampTest, BtSealsCarryAVerifiedTokenOverTheirSignature) {
  const int requests_before = tsa_->requests();
  std::vector<std::pair<std::string, std::string>> docs;
  for (int i = 0; i < 20; ++i) {
    std::string content = "<Invoice><ID>T-" + std::to_string(i) + "</ID></Invoice>";
    docs.emplace_back(Submit(content, "default-t"), content);
  }
  for (const auto& [id, content] : docs) {
    ASSERT_TRUE(WaitFinal(id, std::chrono::seconds(30))) << id;
    ASSERT_EQ(DocStatus(id)["status"], "sealed") << DocStatus(id).dump();
    EXPECT_EQ(CheckBtSeal(id, content), "") << id;
  }
  EXPECT_GE(tsa_->requests() - requests_before, 20);

  // Enveloping (.p7m, the FatturaPA form) B-T: the token is written as the seal streams out.
  const std::string p7m_content = "<FatturaElettronica>T</FatturaElettronica>";
  const std::string p7m = Submit(p7m_content, "invoice-t");
  ASSERT_TRUE(WaitFinal(p7m, std::chrono::seconds(30)));
  ASSERT_EQ(DocStatus(p7m)["status"], "sealed") << DocStatus(p7m).dump();
  EXPECT_EQ(CheckBtSeal(p7m, p7m_content, true), "");

  // A B-B profile of the same daemon asks no TSA and carries no token.
  const int before_bb = tsa_->requests();
  const std::string id = Submit("<Invoice>bb</Invoice>", "default");
  ASSERT_TRUE(WaitFinal(id, std::chrono::seconds(30)));
  auto seal = qseald_->Client().Request("GET", "/v1/documents/" + id + "/seal");
  ASSERT_TRUE(seal.ok());
  EXPECT_TRUE(testing::ReadTimestampedSeal(seal->body).tokens.empty());
  EXPECT_EQ(tsa_->requests(), before_bb);
}

// Digest-only sealing (POST /v1/digests) with a b-t profile: the client sends only the file's
// digest (made by openssl); the B-T seal verifies against the file and carries its token.
TEST_F(TimestampTest, DigestOnlySealsGetTheirTimeStampToo) {
  std::string content(200 << 10, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 7 % 251);
  const std::string file = tmp_->Sub("big.bin");
  testing::WriteFile(file, content);
  testing::CommandResult digest =
      RunCommand("openssl dgst -sha256 -binary " + ShellQuote(file) + " | base64 -w0");
  ASSERT_EQ(digest.exit_code, 0) << digest.output;
  json body = {{"algorithm", "sha256"}, {"digest", digest.output}, {"filename", "big.bin"}};
  auto r = qseald_->Client().Request("POST", "/v1/digests?profile=default-t&wait=30", body.dump(),
                                     {{"Content-Type", "application/json"}});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  ASSERT_EQ(j["status"], "sealed") << r->body;
  EXPECT_EQ(CheckBtSeal(j["id"], content), "");
}

// CSC signDoc: conformance_level AdES-B-T picks the caller's b-t profile, AdES-B-B the b-b one.
TEST_F(TimestampTest, CscSignDocAtAdesBtUsesTheBtProfile) {
  const std::string content = "<Invoice>csc</Invoice>";
  const std::string file = tmp_->Sub("csc.xml");
  testing::WriteFile(file, content);
  const std::string hash =
      RunCommand("openssl dgst -sha256 -binary " + ShellQuote(file) + " | base64 -w0").output;
  auto sign = [&](const std::string& level) {
    json body = {{"credentialID", "seal"},
                 {"documentDigests",
                  {{{"hashes", {hash}},
                    {"hashAlgorithmOID", "2.16.840.1.101.3.4.2.1"},
                    {"signAlgo", "1.2.840.10045.4.3.2"},
                    {"signature_format", "C"},
                    {"conformance_level", level}}}}};
    auto r = qseald_->Client().Request("POST", "/csc/v2/signatures/signDoc", body.dump(),
                                       {{"Content-Type", "application/json"}});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return std::string();
    EXPECT_EQ(r->status, 200) << r->body;
    json j = json::parse(r->body, nullptr, false);
    if (!j.is_object() || !j.contains("SignatureObject")) return std::string();
    const std::string b64 = tmp_->Sub("csc-" + level + ".b64");
    testing::WriteFile(b64, j["SignatureObject"][0].get<std::string>());
    RunCommand("base64 -d " + ShellQuote(b64) + " > " + ShellQuote(b64 + ".p7s"));
    return b64 + ".p7s";
  };
  const std::string bt = sign("Ades-B-T");
  ASSERT_FALSE(bt.empty());
  EXPECT_EQ(testing::OpensslVerify(bt, qseald_->ca_pem(), file), "");
  testing::TimestampedSeal parts = testing::ReadTimestampedSeal(testing::ReadFile(bt));
  ASSERT_EQ(parts.tokens.size(), 1u);
  EXPECT_EQ(testing::OpensslTsVerify(parts.tokens[0], parts.signature, pki_->ca_pem,
                                     tmp_->Sub("csc.tst")),
            "");
  const std::string bb = sign("Ades-B-B");
  ASSERT_FALSE(bb.empty());
  EXPECT_EQ(testing::OpensslVerify(bb, qseald_->ca_pem(), file), "");
  EXPECT_TRUE(testing::ReadTimestampedSeal(testing::ReadFile(bb)).tokens.empty());
}

// XAdES-T: the enveloped signature passes xmlsec1, and its xades:SignatureTimeStamp token passes
// openssl ts -verify over the canonical ds:SignatureValue, computed here on the signed document.
TEST_F(TimestampTest, XadesTSealsCarryASignatureTimeStampOverTheirSignatureValue) {
  const std::string invoice =
      testing::ReadFile(std::string(QSEAL_SOURCE_DIR) + "/tests/formats/data/ubl-invoice.xml");
  const std::string id = Submit(invoice, "xades-t");
  ASSERT_TRUE(WaitFinal(id, std::chrono::seconds(30)));
  ASSERT_EQ(DocStatus(id)["status"], "sealed") << DocStatus(id).dump();
  auto seal = qseald_->Client().Request("GET", "/v1/documents/" + id + "/seal");
  ASSERT_TRUE(seal.ok());
  ASSERT_EQ(seal->status, 200);
  const std::string path = tmp_->Sub(id + ".signed.xml");
  testing::WriteFile(path, seal->body);
  testing::CommandResult xmlsec = testing::XmlsecVerify(path, qseald_->ca_pem());
  EXPECT_EQ(xmlsec.exit_code, 0) << xmlsec.output;
  // qseal's own verifier accepts the unsigned property beside the signed ones.
  testing::CommandResult ours = testing::QsealctlVerify(path, qseald_->ca_pem());
  EXPECT_EQ(ours.exit_code, 0) << ours.output;

  const std::string open = "<xades:EncapsulatedTimeStamp>";
  const std::size_t at = seal->body.find(open);
  ASSERT_NE(at, std::string::npos) << seal->body;
  const std::size_t end = seal->body.find("</xades:EncapsulatedTimeStamp>", at);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(seal->body.find(open, end), std::string::npos) << "one time-stamp only";
  const std::string b64 = tmp_->Sub(id + ".tst.b64");
  testing::WriteFile(b64, seal->body.substr(at + open.size(), end - at - open.size()));
  ASSERT_EQ(RunCommand("base64 -d " + ShellQuote(b64) + " > " + ShellQuote(b64 + ".der")).exit_code,
            0);
  const std::string canonical = CanonicalSignatureValue(seal->body);
  ASSERT_NE(canonical, "");
  EXPECT_EQ(canonical.rfind("<ds:SignatureValue xmlns:ds=", 0), 0u) << canonical;
  testing::WriteFile(tmp_->Sub(id + ".sigvalue.xml"), canonical);
  testing::CommandResult ts =
      RunCommand("openssl ts -verify -token_in -in " + ShellQuote(b64 + ".der") + " -data " +
                 ShellQuote(tmp_->Sub(id + ".sigvalue.xml")) + " -CAfile " +
                 ShellQuote(pki_->ca_pem) + " 2>&1");
  EXPECT_EQ(ts.exit_code, 0) << ts.output;
  EXPECT_NE(ts.output.find("Verification: OK"), std::string::npos) << ts.output;
  // And not over the signature value's bytes alone (the CAdES imprint).
  testing::WriteFile(tmp_->Sub(id + ".wrong"), canonical.substr(1));
  EXPECT_NE(RunCommand("openssl ts -verify -token_in -in " + ShellQuote(b64 + ".der") + " -data " +
                       ShellQuote(tmp_->Sub(id + ".wrong")) + " -CAfile " +
                       ShellQuote(pki_->ca_pem) + " 2>&1")
                .exit_code,
            0);
}

// PAdES-T: the signed PDF passes pdfsig (trusting the test CA) and qpdf --check; the CMS in its
// /Contents (read with OpenSSL, not by qseal) carries one token that passes openssl ts
// -verify over the digest of its signature value.
TEST_F(TimestampTest, PadesTSealsCarryTheTokenInTheirCms) {
  const std::string pdf = formats::testing::MakeQpdfPdf(1, formats::testing::XrefKind::kTable);
  Result<testing::SealedPdf> seal = testing::SealPdfThroughApi(*qseald_, "pdf-t", pdf);
  ASSERT_TRUE(seal.ok()) << seal.status();
  const std::string& id = seal->id;
  EXPECT_EQ(seal->seal.compare(0, pdf.size(), pdf), 0) << "the original is not a prefix";
  const std::string path = tmp_->Sub(id + ".pdf");
  testing::WriteFile(path, seal->seal);
  formats::testing::MakeNssDb(tmp_->Sub("nss-" + id), qseald_->ca_pem());
  auto v = formats::testing::Pdfsig(tmp_->Sub("nss-" + id), path);
  EXPECT_EQ(v.valid, 1) << v.output;
  EXPECT_EQ(v.trusted, 1) << v.output;
  EXPECT_EQ(formats::testing::QpdfCheck(path).exit_code, 0);

  // The DER reader takes the CMS at the front of /Contents and leaves the padding after it.
  testing::TimestampedSeal parts =
      testing::ReadTimestampedSeal(formats::testing::LastSignatureCms(seal->seal));
  ASSERT_TRUE(parts.parsed);
  ASSERT_EQ(parts.tokens.size(), 1u);
  EXPECT_EQ(testing::OpensslTsVerify(parts.tokens[0], parts.signature, pki_->ca_pem,
                                     tmp_->Sub(id + ".tst")),
            "");
}

TEST_F(TimestampTest, WhileTheTsaMisbehavesDocumentsWaitAndAreSealedOnceItIsBack) {
  ASSERT_FALSE(pki_->expired_pem.empty()) << "libfaketime is missing (scripts/deps installs it)";
  for (testing::TsaFault fault :
       {testing::TsaFault::kHttp503, testing::TsaFault::kWrongImprint,
        testing::TsaFault::kWrongNonce, testing::TsaFault::kUntrusted, testing::TsaFault::kExpired,
        testing::TsaFault::kBadSignature, testing::TsaFault::kGarbage, testing::TsaFault::kDrop}) {
    SCOPED_TRACE(static_cast<int>(fault));
    tsa_->SetFault(fault);
    const int requests_before = tsa_->requests();
    std::vector<std::pair<std::string, std::string>> docs;
    for (int i = 0; i < 5; ++i) {
      std::string content = "<Invoice><ID>F" + std::to_string(static_cast<int>(fault)) + "-" +
                            std::to_string(i) + "</ID></Invoice>";
      docs.emplace_back(Submit(content, "default-t"), content);
    }
    // The TSA was asked (and refused or gave a bad token): nothing is sealed meanwhile.
    ASSERT_TRUE(testing::WaitFor([&] { return tsa_->requests() - requests_before >= 5; },
                                 std::chrono::seconds(20)))
        << tsa_->requests() - requests_before;
    for (const auto& [id, content] : docs) {
      const std::string status = DocStatus(id).value("status", "");
      EXPECT_TRUE(status == "queued" || status == "sealing") << id << " " << status;
    }
    tsa_->SetFault(testing::TsaFault::kNone);
    const auto back = std::chrono::steady_clock::now();
    for (const auto& [id, content] : docs) {
      ASSERT_TRUE(WaitFinal(id, std::chrono::seconds(60))) << id;
      ASSERT_EQ(DocStatus(id)["status"], "sealed") << DocStatus(id).dump();
      EXPECT_EQ(CheckBtSeal(id, content), "") << id;
    }
    std::printf("fault %d: sealed %.1f s after the TSA was back\n", static_cast<int>(fault),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - back).count());
  }
}

TEST_F(TimestampTest, ADocumentThatWaitsPastTimestampWaitFailsWithTheReason) {
  tsa_->SetFault(testing::TsaFault::kHttp503);
  const std::string id = Submit("<Invoice>late</Invoice>", "short-t");
  ASSERT_TRUE(WaitFinal(id, std::chrono::seconds(30)));
  tsa_->SetFault(testing::TsaFault::kNone);
  json s = DocStatus(id);
  ASSERT_EQ(s["status"], "failed") << s.dump();
  const std::string message = s["error"].value("message", "");
  EXPECT_NE(message.find("no time-stamp within 3 s"), std::string::npos) << s.dump();
  EXPECT_NE(message.find("503"), std::string::npos) << s.dump();
}

// The TSA metrics: counts as the TSA saw them, the breaker closed, and promtool accepts them.
TEST_F(TimestampTest, TsaMetricsAreExported) {
  const std::string id = Submit("<Invoice>metrics</Invoice>", "default-t");
  ASSERT_TRUE(WaitFinal(id, std::chrono::seconds(30)));
  const std::string file = tmp_->Sub("metrics.txt");
  testing::CommandResult scrape =
      RunCommand("curl -sf http://" + qseald_->metrics() + "/metrics > " + ShellQuote(file));
  ASSERT_EQ(scrape.exit_code, 0) << scrape.output;
  const std::string text = testing::ReadFile(file);
  auto value = [&](const std::string& series) {
    const std::size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1.0;
    return std::stod(text.substr(at + series.size() + 2));
  };
  const std::string labels = "{profile=\"default-t\",tsa=\"test-tsa\"}";
  EXPECT_GE(value("qseal_tsa_tokens_total" + labels), 1) << text;
  EXPECT_LE(value("qseal_tsa_requests_total" + labels), tsa_->requests()) << text;
  EXPECT_GE(value("qseal_tsa_requests_total" + labels), value("qseal_tsa_tokens_total" + labels));
  EXPECT_EQ(value("qseal_tsa_breaker_open" + labels), 0) << text;
  EXPECT_GE(value("qseal_tsa_request_seconds_total" + labels), 0) << text;
  // The latency histogram: one observation per answered attempt, none still in flight here.
  const std::string hist = "qseal_tsa_request_duration_seconds";
  EXPECT_EQ(value(hist + "_count" + labels), value("qseal_tsa_requests_total" + labels)) << text;
  EXPECT_GT(value(hist + "_sum" + labels), 0) << text;
  EXPECT_EQ(value(hist + "_bucket{profile=\"default-t\",tsa=\"test-tsa\",le=\"+Inf\"}"),
            value(hist + "_count" + labels))
      << text;
  EXPECT_EQ(value("qseal_tsa_pending_requests{profile=\"default-t\"}"), 0) << text;
  testing::CommandResult check = RunCommand("promtool check metrics < " + ShellQuote(file));
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

}  // namespace
}  // namespace qseal
