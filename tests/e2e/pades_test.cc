// PAdES through a real qseald: a PDF submitted over the HTTP API to the embedded default's
// `pdf-pades` profile comes back as the signed PDF (the original a byte-identical prefix), which
// pdfsig (NSS database trusting var/pki/ca.pem), qpdf --check and qsealctl verify accept; a
// non-PDF sent to that profile fails with the reason. The watched folder (set to pdf-pades here)
// writes NAME.signed.pdf beside the untouched original.
#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/formats/pdf_test_util.h"
#include "tests/testing/qseald_harness.h"

namespace qseal {
namespace {

using testing::Qseald;
using testing::TempDir;

class PadesE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir();
    testing::QsealdOptions o;
    o.edit_config = [](std::string& conf) {
      const std::string from = "root = \"${QSEAL_VAR:-var}/watch\"\nprofile = \"default\"";
      std::size_t at = conf.find(from);
      ASSERT_NE(at, std::string::npos) << "the embedded default's [[watch]] changed";
      conf.replace(at, from.size(), "root = \"${QSEAL_VAR:-var}/watch\"\nprofile = \"pdf-pades\"");
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
  static inline TempDir* tmp_ = nullptr;
  static inline Qseald* qseald_ = nullptr;
};

TEST_F(PadesE2eTest, SubmittedPdfComesBackSignedAndPassesPdfsig) {
  TempDir tmp;
  formats::testing::MakeNssDb(tmp.Sub("nss"), qseald_->var() + "/pki/ca.pem");
  auto c = qseald_->Client();
  for (const auto& [name, pdf] :
       {std::pair{"plain.pdf",
                  formats::testing::MakeQpdfPdf(2, formats::testing::XrefKind::kTable)},
        std::pair{"facturx.pdf", formats::testing::MakeFacturXLikePdf()}}) {
    SCOPED_TRACE(name);
    auto r = c.Request("POST", "/v1/documents?profile=pdf-pades&wait=30", pdf,
                       {{"X-Filename", name}, {"Content-Type", "application/pdf"}});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
    auto j = nlohmann::json::parse(r->body);
    ASSERT_EQ(j["status"], "sealed") << r->body;
    auto seal = c.Request("GET", "/v1/documents/" + j["id"].get<std::string>() + "/seal");
    ASSERT_TRUE(seal.ok());
    ASSERT_EQ(seal->status, 200);
    EXPECT_EQ(seal->headers["content-type"], "application/pdf");
    ASSERT_GT(seal->body.size(), pdf.size());
    EXPECT_EQ(seal->body.compare(0, pdf.size(), pdf), 0) << "the original is not a prefix";

    std::string path = tmp.Sub(std::string("sealed-") + name);
    formats::testing::WriteStringFile(path, seal->body);
    auto v = formats::testing::Pdfsig(tmp.Sub("nss"), path);
    EXPECT_EQ(v.signatures, 1) << v.output;
    EXPECT_EQ(v.valid, 1) << v.output;
    EXPECT_EQ(v.trusted, 1) << v.output;
    EXPECT_EQ(v.total_document, 1) << v.output;
    auto check = formats::testing::QpdfCheck(path);
    EXPECT_EQ(check.exit_code, 0) << check.output;
    auto verify = testing::RunCommand(qseald_->CliEnv() + std::string(QSEAL_BINARY_DIR) +
                                      "/cli/qsealctl verify " + testing::ShellQuote(path));
    EXPECT_EQ(verify.exit_code, 0) << verify.output;
    EXPECT_NE(verify.output.find("seal verified"), std::string::npos) << verify.output;
  }
}

TEST_F(PadesE2eTest, NonPdfFailsWithTheReason) {
  auto c = qseald_->Client();
  auto r = c.Request("POST", "/v1/documents?profile=pdf-pades&wait=30", "<invoice/>",
                     {{"X-Filename", "invoice.xml"}});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["status"], "failed") << r->body;
  EXPECT_NE(j.dump().find("not a PDF"), std::string::npos) << r->body;
}

TEST_F(PadesE2eTest, WatchedFolderWritesTheSignedPdfBesideTheOriginal) {
  namespace fs = std::filesystem;
  TempDir tmp;
  formats::testing::MakeNssDb(tmp.Sub("nss"), qseald_->var() + "/pki/ca.pem");
  const std::string pdf = formats::testing::MakeQpdfPdf(1, formats::testing::XrefKind::kTable);
  const std::string root = qseald_->watch_root();
  formats::testing::WriteStringFile(root + "/inbox/.invoice-7.pdf.tmp", pdf);
  fs::rename(root + "/inbox/.invoice-7.pdf.tmp", root + "/inbox/invoice-7.pdf");
  const std::string out = root + "/outbox/invoice-7.signed.pdf";
  const std::string original = root + "/outbox/invoice-7.pdf";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!(fs::exists(out) && fs::exists(original)) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(fs::exists(out)) << qseald_->Stderr();
  ASSERT_TRUE(fs::exists(original)) << qseald_->Stderr();
  EXPECT_TRUE(fs::is_empty(root + "/failed")) << qseald_->Stderr();
  EXPECT_EQ(testing::ReadFile(original), pdf);
  const std::string sealed = testing::ReadFile(out);
  ASSERT_GT(sealed.size(), pdf.size());
  EXPECT_EQ(sealed.compare(0, pdf.size(), pdf), 0) << "the original is not a prefix";
  auto v = formats::testing::Pdfsig(tmp.Sub("nss"), out);
  EXPECT_EQ(v.signatures, 1) << v.output;
  EXPECT_EQ(v.valid, 1) << v.output;
  EXPECT_EQ(v.trusted, 1) << v.output;
}

}  // namespace
}  // namespace qseal
