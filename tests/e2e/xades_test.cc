// XAdES through a real qseald: the embedded default's `invoice-xades` profile (enveloped,
// exc-c14n) and a detached profile with c14n11, submitted over the API and through the watched
// folder; every seal is checked with `xmlsec1 --verify` against the test CA and with
// `qsealctl verify`; the enveloped seal is the original bytes plus the signature element; a
// hostile document fails with a reason and signs nothing. Every EN 16931 example invoice
// (tests/data/en16931, UBL and CII) is sealed in one batch and checked the same way.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/testing/qseald_harness.h"

namespace qseal {
namespace {

using testing::Qseald;
using testing::QsealdOptions;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

std::string Sample(const std::string& name) {
  return testing::ReadFile(std::string(QSEAL_SOURCE_DIR) + "/tests/formats/data/" + name);
}

class XadesE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir();
    QsealdOptions o;
    o.edit_config = [](std::string& conf) {
      conf +=
          "\n[[profile]]\nname = \"invoice-xades-detached\"\nformat = \"xades-detached\"\n"
          "c14n = \"c14n11\"\ndigest = \"sha256\"\nscheme = \"ecdsa\"\nkey = \"seal\"\n";
      // The watched folder seals with the enveloped XAdES profile.
      const std::string from =
          "root = \"" + std::string("${QSEAL_VAR:-var}/watch") + "\"\nprofile = \"default\"";
      std::size_t at = conf.find(from);
      if (at != std::string::npos) {
        conf.replace(at, from.size(),
                     "root = \"${QSEAL_VAR:-var}/watch\"\nprofile = \"invoice-xades\"");
      }
    };
    qseald_ = new Qseald(tmp_->Sub("d"), o);
    Status s = qseald_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }
  static void TearDownTestSuite() {
    if (qseald_ != nullptr) {
      EXPECT_EQ(qseald_->Stop(), 0) << qseald_->Stderr();
    }
    delete qseald_;
    delete tmp_;
  }

  // Submits `doc` with ?wait and returns the seal bytes (fails the test otherwise).
  std::string SealOverApi(const std::string& doc, const std::string& profile,
                          const std::string& name) {
    auto c = qseald_->Client();
    auto r = c.Request("POST", "/v1/documents?profile=" + profile + "&wait=30", doc,
                       {{"X-Filename", name}, {"Content-Type", "application/xml"}});
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return "";
    EXPECT_EQ(r->status, 200) << r->body;
    auto j = nlohmann::json::parse(r->body);
    EXPECT_EQ(j["status"], "sealed") << r->body;
    auto seal = c.Request("GET", "/v1/documents/" + std::string(j["id"]) + "/seal");
    EXPECT_TRUE(seal.ok());
    if (!seal.ok()) return "";
    EXPECT_EQ(seal->status, 200);
    EXPECT_EQ(seal->headers["content-type"], "application/xml");
    return seal->body;
  }

  testing::CommandResult QsealctlVerify(const std::string& seal) {
    return testing::QsealctlVerify(seal, qseald_->ca_pem());
  }

  static inline TempDir* tmp_ = nullptr;
  static inline Qseald* qseald_ = nullptr;
};

TEST_F(XadesE2eTest, EnvelopedInvoicesOverTheApiPassXmlsec) {
  TempDir tmp;
  for (const std::string sample : {"ubl-invoice.xml", "cii-invoice.xml", "fatturapa.xml"}) {
    SCOPED_TRACE(sample);
    const std::string doc = Sample(sample);
    std::string seal = SealOverApi(doc, "invoice-xades", sample);
    ASSERT_FALSE(seal.empty());
    std::string path = tmp.Sub("signed-" + sample);
    testing::WriteFile(path, seal);
    auto x = testing::XmlsecVerify(path, qseald_->ca_pem());
    EXPECT_EQ(x.exit_code, 0) << x.output;
    auto v = QsealctlVerify(path);
    EXPECT_EQ(v.exit_code, 0) << v.output;
    EXPECT_NE(v.output.find("format: xades-enveloped"), std::string::npos) << v.output;
    // Only the signature element (with the UBL extension wrapper) was added.
    const bool ubl = sample.starts_with("ubl");
    const std::string begin = ubl ? "<ext:UBLExtensions " : "<ds:Signature ";
    const std::string end = ubl ? "</ext:UBLExtensions>" : "</ds:Signature>";
    std::size_t b = seal.find(begin);
    ASSERT_NE(b, std::string::npos);
    std::size_t e = seal.find(end, b);
    ASSERT_NE(e, std::string::npos);
    EXPECT_EQ(seal.substr(0, b) + seal.substr(e + end.size()), doc);
    // One changed byte of the sealed invoice fails xmlsec1.
    std::string bad = seal;
    bad[bad.rfind("EUR")] = 'X';
    testing::WriteFile(path, bad);
    EXPECT_NE(testing::XmlsecVerify(path, qseald_->ca_pem()).exit_code, 0);
  }
}

// The examples of ConnectingEurope/eInvoicing-EN16931 (see tests/data/en16931/README.md), sorted
// by path relative to tests/data/en16931.
std::vector<std::string> En16931Examples() {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(QSEAL_SOURCE_DIR) / "tests/data/en16931";
  std::vector<std::string> out;
  for (const char* syntax : {"ubl", "cii"}) {
    for (const auto& e : fs::directory_iterator(root / syntax)) {
      if (e.path().extension() == ".xml") out.push_back(fs::relative(e.path(), root).string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Multipart(const std::vector<std::string>& names, const std::vector<std::string>& docs,
                      const std::string& boundary) {
  std::string out;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    out += "--" + boundary + "\r\nContent-Type: application/xml\r\nX-Filename: " +
           std::filesystem::path(names[i]).filename().string() + "\r\n\r\n" + docs[i] + "\r\n";
  }
  return out + "--" + boundary + "--\r\n";
}

// Every example, UBL and CII, in one batch with the enveloped profile: each is sealed, passes
// xmlsec1 against the test CA, stays well-formed (xmllint), and a UBL seal has its ds:Signature in
// the root's first child ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent, as the UBL 2.1
// schema orders it; a CII seal has it as the root's last child. The UBL 2.1 schema itself is not
// shipped, so schema validity is not checked.
TEST_F(XadesE2eTest, En16931ExamplesSealedInOneBatchPassXmlsec) {
  const std::vector<std::string> names = En16931Examples();
  // 17 UBL + 15 CII at the copied commit; a missing directory must not pass as "nothing to do".
  ASSERT_EQ(names.size(), 32u);
  std::vector<std::string> docs;
  const std::string boundary = "qseal-en16931-batch-7f3a";
  for (const auto& n : names) {
    docs.push_back(testing::ReadFile(std::string(QSEAL_SOURCE_DIR) + "/tests/data/en16931/" + n));
    ASSERT_EQ(docs.back().find(boundary), std::string::npos) << n;
  }
  auto c = qseald_->Client();
  auto r = c.Request("POST", "/v1/batches?profile=invoice-xades&wait=60",
                     Multipart(names, docs, boundary),
                     {{"Content-Type", "multipart/mixed; boundary=" + boundary}});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["accepted"], names.size()) << r->body;
  EXPECT_EQ(j["rejected"], 0) << r->body;
  ASSERT_EQ(j["documents"].size(), names.size());

  TempDir tmp;
  const std::string ubl_signature_xpath =
      "count(/*/*[1][local-name()='UBLExtensions' and namespace-uri()="
      "'urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2']"
      "/*[local-name()='UBLExtension']/*[local-name()='ExtensionContent']"
      "/*[local-name()='Signature' and namespace-uri()='http://www.w3.org/2000/09/xmldsig#'])";
  const std::string cii_signature_xpath =
      "count(/*/*[last()][local-name()='Signature' and "
      "namespace-uri()='http://www.w3.org/2000/09/xmldsig#'])";
  for (std::size_t i = 0; i < names.size(); ++i) {
    SCOPED_TRACE(names[i]);
    const auto& d = j["documents"][i];
    EXPECT_EQ(d["status"], "sealed") << d.dump();
    if (d["status"] != "sealed") continue;
    auto seal = c.Request("GET", "/v1/documents/" + std::string(d["id"]) + "/seal");
    ASSERT_TRUE(seal.ok());
    ASSERT_EQ(seal->status, 200) << seal->body;
    EXPECT_NE(seal->body, docs[i]);
    const std::string path = tmp.Sub("signed-" + std::to_string(i) + ".xml");
    testing::WriteFile(path, seal->body);
    auto x = testing::XmlsecVerify(path, qseald_->ca_pem());
    EXPECT_EQ(x.exit_code, 0) << x.output;
    auto wf = RunCommand("xmllint --noout --nonet " + ShellQuote(path));
    EXPECT_EQ(wf.exit_code, 0) << wf.output;
    const bool ubl = names[i].starts_with("ubl/");
    auto at = RunCommand("xmllint --nonet --xpath " +
                         ShellQuote(ubl ? ubl_signature_xpath : cii_signature_xpath) + " " +
                         ShellQuote(path));
    EXPECT_EQ(at.exit_code, 0) << at.output;
    EXPECT_EQ(at.output, "1\n") << (ubl ? "ds:Signature not (once) in the first ext:UBLExtensions"
                                        : "ds:Signature not the root's last child");
  }
}

// The official FatturaPA 1.2.2 examples (tests/data/fatturapa/README.md), each over the API with
// the enveloped profile: xmlsec1 passes, qsealctl verify passes, the ds:Signature is the root's
// last child (where the FatturaPA schema puts it) and nothing else of the invoice changed.
TEST_F(XadesE2eTest, FatturaPaSamplesPassXmlsec) {
  namespace fs = std::filesystem;
  std::vector<fs::path> samples;
  for (const auto& e :
       fs::directory_iterator(fs::path(QSEAL_SOURCE_DIR) / "tests/data/fatturapa")) {
    if (e.path().extension() == ".xml") samples.push_back(e.path());
  }
  std::sort(samples.begin(), samples.end());
  ASSERT_EQ(samples.size(), 6u);  // FPA01..03, FPR01..03
  TempDir tmp;
  const std::string last_child =
      "count(/*/*[last()][local-name()='Signature' and "
      "namespace-uri()='http://www.w3.org/2000/09/xmldsig#'])";
  for (const fs::path& sample : samples) {
    const std::string name = sample.filename().string();
    SCOPED_TRACE(name);
    const std::string doc = testing::ReadFile(sample.string());
    std::string seal = SealOverApi(doc, "invoice-xades", name);
    ASSERT_FALSE(seal.empty());
    const std::string path = tmp.Sub("signed-" + name);
    testing::WriteFile(path, seal);
    auto x = testing::XmlsecVerify(path, qseald_->ca_pem());
    EXPECT_EQ(x.exit_code, 0) << x.output;
    auto v = QsealctlVerify(path);
    EXPECT_EQ(v.exit_code, 0) << v.output;
    auto at =
        RunCommand("xmllint --nonet --xpath " + ShellQuote(last_child) + " " + ShellQuote(path));
    EXPECT_EQ(at.output, "1\n") << at.output;
    std::size_t b = seal.find("<ds:Signature ");
    ASSERT_NE(b, std::string::npos);
    const std::string end = "</ds:Signature>";
    std::size_t e = seal.find(end, b);
    ASSERT_NE(e, std::string::npos);
    EXPECT_EQ(seal.substr(0, b) + seal.substr(e + end.size()), doc);
  }
}

TEST_F(XadesE2eTest, DetachedC14n11ProfilePassesXmlsec) {
  TempDir tmp;
  const std::string doc = Sample("cii-invoice.xml");
  std::string seal = SealOverApi(doc, "invoice-xades-detached", "invoice.xml");
  ASSERT_FALSE(seal.empty());
  EXPECT_NE(seal.find("http://www.w3.org/2006/12/xml-c14n11"), std::string::npos);
  testing::WriteFile(tmp.Sub("invoice.xml"), doc);
  testing::WriteFile(tmp.Sub("invoice.xades.xml"), seal);
  auto x = testing::XmlsecVerify(tmp.Sub("invoice.xades.xml"), qseald_->ca_pem());
  EXPECT_EQ(x.exit_code, 0) << x.output;
  auto v = QsealctlVerify(tmp.Sub("invoice.xades.xml"));
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_NE(v.output.find("content: " + tmp.Sub("invoice.xml")), std::string::npos) << v.output;
}

TEST_F(XadesE2eTest, HostileXmlFailsWithAReason) {
  auto c = qseald_->Client();
  const std::string xxe =
      "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>";
  auto r = c.Request("POST", "/v1/documents?profile=invoice-xades&wait=30", xxe);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["status"], "failed") << r->body;
  EXPECT_NE(r->body.find("DOCTYPE"), std::string::npos) << r->body;
}

TEST_F(XadesE2eTest, WatchedFolderWritesTheSignedInvoice) {
  namespace fs = std::filesystem;
  const std::string doc = Sample("fatturapa.xml");
  const std::string root = qseald_->watch_root();
  testing::WriteFile(root + "/inbox/.IT01234567890_00001.xml.tmp", doc);
  fs::rename(root + "/inbox/.IT01234567890_00001.xml.tmp", root + "/inbox/IT01234567890_00001.xml");
  const std::string out = root + "/outbox/IT01234567890_00001.signed.xml";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!fs::exists(out) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(fs::exists(out)) << qseald_->Stderr();
  std::string seal = testing::ReadFile(out);
  EXPECT_NE(seal, doc);
  // The original is moved beside its seal, unchanged.
  EXPECT_EQ(testing::ReadFile(root + "/outbox/IT01234567890_00001.xml"), doc);
  auto x = testing::XmlsecVerify(out, qseald_->ca_pem());
  EXPECT_EQ(x.exit_code, 0) << x.output;
}

}  // namespace
}  // namespace qseal
