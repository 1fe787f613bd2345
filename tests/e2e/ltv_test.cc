// CAdES-B-LT, XAdES-B-LT and PAdES-B-LT through a real qseald: the seal certificate names an OCSP
// responder, a real `openssl ocsp -index` on loopback (not qseal's code) signed by the test CA, and
// b-lt profiles ask the loopback test TSA for a signature time-stamp. Each seal is checked by
// `openssl cms -verify` against the document, its token by `openssl ts -verify`, and the OCSP
// response it carries, located by `openssl asn1parse` and verified by `openssl ocsp -respin`
// against the test CA, must say "good" for the seal certificate. While the responder is down
// documents wait (never sealed without the revocation data); once it answers they are sealed. A
// revoked seal certificate fails its documents with the reason. XAdES seals pass xmlsec1 and carry
// the response as xades:EncapsulatedOCSPValue, checked the same way; PAdES seals pass pdfsig and
// carry it in a DSS.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/formats/pdf_test_util.h"
#include "tests/testing/qseald_harness.h"
#include "tests/tsa/test_tsa.h"

namespace qseal {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::Qseald;
using testing::QsealdOptions;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

class LtvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<testing::TsaPki> pki = testing::MakeTsaPki(tmp_.Sub(""));
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    tsa_ = std::make_unique<testing::TestTsa>(pki_);
    ASSERT_TRUE(tsa_->Start().ok());
    ocsp_port_ = testing::FreeLoopbackPort();
    ASSERT_GT(ocsp_port_, 0);
    QsealdOptions o;
    o.ocsp_url = "http://127.0.0.1:" + std::to_string(ocsp_port_) + "/";
    const std::string url = tsa_->url();
    const std::string ca = pki_.ca_pem;
    o.edit_config = [url, ca](std::string& conf) {
      const std::string backoff = "retry_backoff = \"2s\"";
      const std::size_t at = conf.find(backoff);
      ASSERT_NE(at, std::string::npos);
      conf.replace(at, backoff.size(), "retry_backoff = \"200ms\"");
      conf += "\n[[tsa]]\nname = \"test-tsa\"\nurl = \"" + url + "\"\nca = \"" + ca +
              "\"\n"
              "\n[revocation]\nretry_interval = \"200ms\"\nfetch_timeout = \"2s\"\n"
              "\n[[profile]]\nname = \"lt\"\nformat = \"cades-detached\"\nlevel = \"b-lt\"\n"
              "tsa = [\"test-tsa\"]\ndigest = \"sha256\"\nscheme = \"ecdsa\"\nkey = \"seal\"\n"
              "\n[[profile]]\nname = \"lt-env\"\nformat = \"cades-enveloping\"\n"
              "level = \"b-lt\"\ntsa = [\"test-tsa\"]\ndigest = \"sha256\"\nscheme = \"ecdsa\"\n"
              "key = \"seal\"\n"
              "\n[[profile]]\nname = \"lt-xades\"\nformat = \"xades-enveloped\"\n"
              "level = \"b-lt\"\ntsa = [\"test-tsa\"]\ndigest = \"sha256\"\nscheme = \"ecdsa\"\n"
              "key = \"seal\"\n"
              "\n[[profile]]\nname = \"lt-pades\"\nformat = \"pades\"\nlevel = \"b-lt\"\n"
              "tsa = [\"test-tsa\"]\ndigest = \"sha256\"\nscheme = \"ecdsa\"\nkey = \"seal\"\n";
    };
    qseald_ = std::make_unique<Qseald>(tmp_.Sub("d"), o);
    Status prepared = qseald_->Prepare();
    ASSERT_TRUE(prepared.ok()) << prepared;
  }

  void TearDown() override {
    if (qseald_ != nullptr && qseald_->process().running()) {
      EXPECT_EQ(qseald_->Stop(), 0) << qseald_->Stderr();
    }
  }

  std::string pki(const std::string& name) const { return qseald_->var() + "/pki/" + name; }

  // `openssl ocsp` answering from the test CA's database, responses valid for 5 minutes.
  void StartResponder() {
    ASSERT_TRUE(responder_
                    .Start({"/usr/bin/openssl", "ocsp", "-index", pki("index.txt"), "-port",
                            std::to_string(ocsp_port_), "-rsigner", pki("ca.pem"), "-rkey",
                            pki("ca.key"), "-CA", pki("ca.pem"), "-nmin", "5"},
                           tmp_.Sub("ocsp.log"))
                    .ok());
    ASSERT_FALSE(
        responder_.WaitForLine("waiting for OCSP client", std::chrono::seconds(10)).empty())
        << responder_.Stderr();
  }

  void StartQseald() {
    Status s = qseald_->Start();
    ASSERT_TRUE(s.ok()) << s << qseald_->Stderr();
  }

  std::string Submit(const std::string& content, const std::string& profile) {
    auto r = qseald_->Client().Request("POST", "/v1/documents?profile=" + profile, content,
                                       {{"X-Filename", "invoice.xml"}});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    EXPECT_EQ(r->status, 202) << r->body;
    return json::parse(r->body).value("id", "");
  }
  json DocStatus(const std::string& id) {
    auto r = qseald_->Client().Request("GET", "/v1/documents/" + id);
    if (!r.ok() || r->status != 200) return json::object();
    return json::parse(r->body);
  }
  bool WaitFinal(const std::string& id, std::chrono::seconds timeout) {
    return testing::WaitFor(
        [&] {
          std::string s = DocStatus(id).value("status", "");
          return s == "sealed" || s == "failed";
        },
        timeout, std::chrono::milliseconds(100));
  }

  // The value of one series of qseald's /metrics (scraped with curl), or "" without it.
  std::string Metric(const std::string& series) {
    testing::CommandResult r = RunCommand("curl -sf http://" + qseald_->metrics() +
                                          "/metrics | grep -F " + ShellQuote(series + " "));
    const std::size_t space = r.output.find(' ');
    return space == std::string::npos ? ""
                                      : r.output.substr(space + 1, r.output.find('\n') - space - 1);
  }

  // Every independent check of a B-LT seal; "" when all pass.
  std::string CheckBltSeal(const std::string& id, const std::string& content, bool enveloping) {
    auto seal = qseald_->Client().Request("GET", "/v1/documents/" + id + "/seal");
    if (!seal.ok() || seal->status != 200) return "seal not fetched";
    const std::string seal_path = tmp_.Sub(id + ".p7");
    const std::string content_path = tmp_.Sub(id + ".xml");
    const std::string out_path = tmp_.Sub(id + ".out");
    testing::WriteFile(seal_path, seal->body);
    testing::WriteFile(content_path, content);
    std::string cms = enveloping
                          ? testing::OpensslVerify(seal_path, qseald_->ca_pem(), "", out_path)
                          : testing::OpensslVerify(seal_path, qseald_->ca_pem(), content_path);
    if (!cms.empty()) return "openssl cms -verify: " + cms;
    if (enveloping && testing::ReadFile(out_path) != content) return "enveloped content differs";
    testing::TimestampedSeal parts = testing::ReadTimestampedSeal(seal->body);
    if (parts.tokens.size() != 1) return std::to_string(parts.tokens.size()) + " time-stamps";
    std::string ts = testing::OpensslTsVerify(parts.tokens[0], parts.signature, pki_.ca_pem,
                                              tmp_.Sub(id + ".tst"));
    if (!ts.empty()) return "openssl ts -verify: " + ts;
    std::vector<std::string> responses = testing::OcspResponsesInSeal(seal->body, seal_path);
    if (responses.size() != 1) return std::to_string(responses.size()) + " OCSP responses";
    std::string ocsp = testing::OpensslOcspCheck(responses[0], pki("ca.pem"), pki("seal.pem"),
                                                 tmp_.Sub(id + ".ocsp"));
    return ocsp.empty() ? "" : "openssl ocsp -respin: " + ocsp;
  }

  TempDir tmp_;
  testing::TsaPki pki_;
  std::unique_ptr<testing::TestTsa> tsa_;
  int ocsp_port_ = 0;
  ChildProcess responder_;
  std::unique_ptr<Qseald> qseald_;
};

TEST_F(LtvTest, BltSealsCarryTheSealCertificatesGoodOcspResponseAndAVerifiedToken) {
  StartResponder();
  StartQseald();
  std::vector<std::pair<std::string, std::string>> docs;
  for (int i = 0; i < 10; ++i) {
    std::string content = "<Invoice><ID>LT-" + std::to_string(i) + "</ID></Invoice>";
    docs.emplace_back(Submit(content, i % 2 == 0 ? "lt" : "lt-env"), content);
  }
  for (std::size_t i = 0; i < docs.size(); ++i) {
    const auto& [id, content] = docs[i];
    ASSERT_TRUE(WaitFinal(id, std::chrono::seconds(30))) << id;
    ASSERT_EQ(DocStatus(id)["status"], "sealed") << DocStatus(id).dump();
    EXPECT_EQ(CheckBltSeal(id, content, i % 2 == 1), "") << id;
  }
  EXPECT_EQ(Metric("qseal_revocation_current{key=\"seal\"}"), "1");
  EXPECT_EQ(Metric("qseal_revocation_revoked{key=\"seal\"}"), "0");
  // A B-B profile of the same daemon embeds no revocation data.
  const std::string bb = Submit("<Invoice>bb</Invoice>", "default");
  ASSERT_TRUE(WaitFinal(bb, std::chrono::seconds(30)));
  auto seal = qseald_->Client().Request("GET", "/v1/documents/" + bb + "/seal");
  ASSERT_TRUE(seal.ok());
  EXPECT_TRUE(testing::OcspResponsesInSeal(seal->body, tmp_.Sub("bb.p7s")).empty());
}

// The base64 texts of every `element` (a prefixed name, e.g. "xades:EncapsulatedOCSPValue") of
// an XML seal, in order.
std::vector<std::string> ElementTexts(const std::string& xml, const std::string& element) {
  std::vector<std::string> out;
  const std::string open = "<" + element + ">";
  const std::string close = "</" + element + ">";
  for (std::size_t at = xml.find(open); at != std::string::npos; at = xml.find(open, at)) {
    at += open.size();
    const std::size_t end = xml.find(close, at);
    if (end == std::string::npos) break;
    out.push_back(xml.substr(at, end - at));
  }
  return out;
}

// XAdES-B-LT: the enveloped signature passes xmlsec1 and qsealctl verify; its unsigned
// properties hold the signature time-stamp, then xades:RevocationValues with the seal
// certificate's OCSP response, which `openssl ocsp -respin` verifies and finds "good".
TEST_F(LtvTest, XadesBltSealsCarryTheGoodOcspResponseInRevocationValues) {
  StartResponder();
  StartQseald();
  const std::string invoice =
      testing::ReadFile(std::string(QSEAL_SOURCE_DIR) + "/tests/formats/data/ubl-invoice.xml");
  const std::string id = Submit(invoice, "lt-xades");
  ASSERT_TRUE(WaitFinal(id, std::chrono::seconds(30))) << id;
  ASSERT_EQ(DocStatus(id)["status"], "sealed") << DocStatus(id).dump();
  auto seal = qseald_->Client().Request("GET", "/v1/documents/" + id + "/seal");
  ASSERT_TRUE(seal.ok());
  ASSERT_EQ(seal->status, 200);
  const std::string path = tmp_.Sub(id + ".signed.xml");
  testing::WriteFile(path, seal->body);
  testing::CommandResult xmlsec = testing::XmlsecVerify(path, qseald_->ca_pem());
  EXPECT_EQ(xmlsec.exit_code, 0) << xmlsec.output;
  testing::CommandResult ours = testing::QsealctlVerify(path, qseald_->ca_pem());
  EXPECT_EQ(ours.exit_code, 0) << ours.output;

  EXPECT_EQ(ElementTexts(seal->body, "xades:EncapsulatedTimeStamp").size(), 1u);
  const std::size_t timestamp = seal->body.find("<xades:SignatureTimeStamp ");
  const std::size_t values = seal->body.find("<xades:RevocationValues><xades:OCSPValues>");
  ASSERT_NE(values, std::string::npos) << seal->body;
  EXPECT_LT(timestamp, values);
  EXPECT_LT(values, seal->body.find("</xades:UnsignedSignatureProperties>"));
  std::vector<std::string> responses = ElementTexts(seal->body, "xades:EncapsulatedOCSPValue");
  ASSERT_EQ(responses.size(), 1u);
  const std::string b64 = tmp_.Sub(id + ".ocsp.b64");
  testing::WriteFile(b64, responses[0]);
  ASSERT_EQ(RunCommand("base64 -d " + ShellQuote(b64) + " > " + ShellQuote(b64 + ".der")).exit_code,
            0);
  EXPECT_EQ(testing::OpensslOcspCheck(testing::ReadFile(b64 + ".der"), pki("ca.pem"),
                                      pki("seal.pem"), tmp_.Sub(id + ".ocsp")),
            "");
}

// PAdES-B-LT: pdfsig finds the signature valid and trusted, qpdf --check and qsealctl verify
// accept the file; the CMS in /Contents carries one token that openssl ts -verify accepts; the
// DSS of the update after the sealed revision, read by qpdf's JSON dump, holds the seal
// certificate and its OCSP response, which openssl ocsp -respin finds "good".
TEST_F(LtvTest, PadesBltSealsCarryTheGoodOcspResponseInTheirDss) {
  StartResponder();
  StartQseald();
  const std::string pdf = formats::testing::MakeQpdfPdf(2, formats::testing::XrefKind::kStream);
  Result<testing::SealedPdf> seal = testing::SealPdfThroughApi(*qseald_, "lt-pades", pdf);
  ASSERT_TRUE(seal.ok()) << seal.status();
  const std::string& id = seal->id;
  EXPECT_EQ(seal->seal.compare(0, pdf.size(), pdf), 0) << "the original is not a prefix";
  const std::string path = tmp_.Sub(id + ".pdf");
  testing::WriteFile(path, seal->seal);
  formats::testing::MakeNssDb(tmp_.Sub("nss"), qseald_->ca_pem());
  auto v = formats::testing::Pdfsig(tmp_.Sub("nss"), path);
  EXPECT_EQ(v.valid, 1) << v.output;
  EXPECT_EQ(v.trusted, 1) << v.output;
  EXPECT_EQ(formats::testing::QpdfCheck(path).exit_code, 0);
  testing::CommandResult ours = testing::QsealctlVerify(path, qseald_->ca_pem());
  EXPECT_EQ(ours.exit_code, 0) << ours.output;

  testing::TimestampedSeal parts =
      testing::ReadTimestampedSeal(formats::testing::LastSignatureCms(seal->seal));
  ASSERT_EQ(parts.tokens.size(), 1u);
  EXPECT_EQ(testing::OpensslTsVerify(parts.tokens[0], parts.signature, pki_.ca_pem,
                                     tmp_.Sub(id + ".tst")),
            "");
  const std::vector<std::string> certs = formats::testing::DssStreams(path, "/Certs");
  ASSERT_FALSE(certs.empty());
  const std::vector<Bytes> seal_cert = formats::testing::LoadPemCertificates(pki("seal.pem"));
  ASSERT_FALSE(seal_cert.empty());
  EXPECT_EQ(certs[0], std::string(seal_cert[0].begin(), seal_cert[0].end()));
  const std::vector<std::string> responses = formats::testing::DssStreams(path, "/OCSPs");
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(testing::OpensslOcspCheck(responses[0], pki("ca.pem"), pki("seal.pem"),
                                      tmp_.Sub(id + ".ocsp")),
            "");
}

// The statuses are stored (var/revocation/<key>/<certificate's SHA-256>.ocsp): after a restart
// with the responder down, b-lt documents are sealed at once with the stored response, still
// current, instead of waiting for the responder; its fetch errors are counted meanwhile.
TEST_F(LtvTest, ARestartWithTheResponderDownSealsWithTheStoredStatus) {
  StartResponder();
  StartQseald();
  const std::string first = Submit("stored before the restart\n", "lt");
  ASSERT_TRUE(WaitFinal(first, std::chrono::seconds(30))) << first;
  ASSERT_EQ(DocStatus(first)["status"], "sealed") << DocStatus(first).dump();
  ASSERT_EQ(qseald_->Stop(), 0) << qseald_->Stderr();
  responder_.Signal(SIGKILL);
  responder_.Wait(std::chrono::seconds(10));
  const std::string store = qseald_->var() + "/revocation/seal";
  std::size_t stored = 0;
  for (const auto& f : std::filesystem::directory_iterator(store)) {
    stored += f.path().extension() == ".ocsp" ? 1 : 0;
  }
  EXPECT_EQ(stored, 1u) << store;

  StartQseald();
  const std::string content = "sealed from the store\n";
  const std::string id = Submit(content, "lt");
  ASSERT_TRUE(WaitFinal(id, std::chrono::seconds(30))) << id;
  ASSERT_EQ(DocStatus(id)["status"], "sealed") << DocStatus(id).dump();
  EXPECT_EQ(CheckBltSeal(id, content, false), "");
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Metric("qseal_revocation_fetch_errors_total{key=\"seal\"}") != "0" &&
               !Metric("qseal_revocation_fetch_errors_total{key=\"seal\"}").empty();
      },
      std::chrono::seconds(10), std::chrono::milliseconds(100)))
      << "the responder is down, yet no fetch failed";
  EXPECT_EQ(Metric("qseal_revocation_current{key=\"seal\"}"), "1");
}

TEST_F(LtvTest, WithoutTheResponderDocumentsWaitAndAreSealedOnceItAnswers) {
  StartQseald();  // the responder is not there yet
  std::vector<std::pair<std::string, std::string>> docs;
  for (int i = 0; i < 4; ++i) {
    std::string content = "<Invoice><ID>W-" + std::to_string(i) + "</ID></Invoice>";
    docs.emplace_back(Submit(content, "lt"), content);
  }
  // Several fetch attempts (every 200 ms) fail meanwhile; no document is sealed or failed.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  for (const auto& [id, content] : docs) {
    const std::string status = DocStatus(id).value("status", "");
    EXPECT_TRUE(status == "queued" || status == "sealing") << DocStatus(id).dump();
  }
  EXPECT_EQ(Metric("qseal_revocation_current{key=\"seal\"}"), "0");
  EXPECT_NE(Metric("qseal_revocation_fetch_errors_total{key=\"seal\"}"), "0");
  // Checked before signing: no time-stamp was asked for a seal that could not be finished.
  EXPECT_EQ(tsa_->requests(), 0);
  StartResponder();
  for (const auto& [id, content] : docs) {
    ASSERT_TRUE(WaitFinal(id, std::chrono::seconds(30))) << id;
    ASSERT_EQ(DocStatus(id)["status"], "sealed") << DocStatus(id).dump();
    EXPECT_EQ(CheckBltSeal(id, content, false), "") << id;
  }
}

TEST_F(LtvTest, ARevokedSealCertificateFailsItsDocumentsWithTheReason) {
  // The CA's database says the seal certificate was revoked (key compromise).
  std::string index = testing::ReadFile(pki("index.txt"));
  ASSERT_EQ(index.rfind("V\t", 0), 0u) << index;
  const std::size_t revocation_field = index.find("\t\t") + 1;
  index[0] = 'R';
  index.insert(revocation_field, "261201000000Z,keyCompromise");
  testing::WriteFile(pki("index.txt"), index);
  StartResponder();
  StartQseald();
  const std::string id = Submit("<Invoice>revoked</Invoice>", "lt");
  ASSERT_TRUE(WaitFinal(id, std::chrono::seconds(30))) << id;
  json s = DocStatus(id);
  ASSERT_EQ(s["status"], "failed") << s.dump();
  const std::string reason = s.dump();
  EXPECT_NE(reason.find("revoked"), std::string::npos) << reason;
  EXPECT_NE(reason.find("keyCompromise"), std::string::npos) << reason;
  EXPECT_EQ(Metric("qseal_revocation_revoked{key=\"seal\"}"), "1");
}

}  // namespace
}  // namespace qseal
