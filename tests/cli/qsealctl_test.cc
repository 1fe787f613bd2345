// qsealctl: configuration resolution (unit), usage errors and `verify` run through the real binary
// against seals made with software keys by formats/cades and cross-checked with `openssl cms`.
// The server-side commands (submit, status, fetch, health) are exercised end to end by the
// daemon's e2e tests; here only their offline failure paths.
#include <chrono>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "cli/config.h"
#include "common/exit_codes.h"
#include "formats/cades/cades.h"
#include "formats/format.h"
#include "tests/formats/cades_test_util.h"
#include "tests/formats/pdf_test_util.h"
#include "tests/formats/xades_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::cli {
namespace {

namespace fs = std::filesystem;
using formats::cades::SignerContext;
using formats::testing::CertSpec;
using formats::testing::SoftwareSigner;
using qseal::testing::RunCommand;
using qseal::testing::ShellQuote;
using qseal::testing::TempDir;
using qseal::testing::WriteFile;

EnvFn FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) {
    auto it = vars.find(name);
    return it == vars.end() ? std::string() : it->second;
  };
}

TEST(ConfigTest, DefaultsWithNothingSet) {
  TempDir tmp;
  auto e = ResolveEndpoint({}, FakeEnv({{"QSEAL_VAR", tmp.Sub("nothing")}}), "");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->server, "https://127.0.0.1:8440");
  EXPECT_EQ(e->tls.ca_file, "");  // no <var>/pki/ca.pem: the system's trust store
  EXPECT_EQ(e->token, "");
  EXPECT_EQ(e->var_dir, tmp.Sub("nothing"));
}

TEST(ConfigTest, EmbeddedDefaultFilesUnderQsealVar) {
  TempDir tmp;
  WriteFile(tmp.Sub("api-token"), "file-token\n");
  auto e = ResolveEndpoint({}, FakeEnv({{"QSEAL_VAR", tmp.path().string()}}), "");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->token, "file-token");
  EXPECT_EQ(e->token_source, tmp.Sub("api-token"));

  std::filesystem::create_directories(tmp.Sub("pki"));
  WriteFile(tmp.Sub("pki/ca.pem"), "");
  auto with_ca = ResolveEndpoint({}, FakeEnv({{"QSEAL_VAR", tmp.path().string()}}), "");
  EXPECT_EQ(with_ca->tls.ca_file, tmp.Sub("pki/ca.pem"));
  auto flagged = ResolveEndpoint(
      {.server = "", .token_file = "", .ca = "/x/ca.pem", .cert = "/x/c.pem", .key = "/x/k.pem"},
      FakeEnv({{"QSEAL_VAR", tmp.path().string()}}), "");
  EXPECT_EQ(flagged->tls.ca_file, "/x/ca.pem");
  EXPECT_EQ(flagged->tls.cert_file, "/x/c.pem");
  EXPECT_EQ(flagged->tls.key_file, "/x/k.pem");
}

TEST(ConfigTest, EnvironmentBeatsFilesAndFlagsBeatEnvironment) {
  TempDir tmp;
  WriteFile(tmp.Sub("api-token"), "file-token");
  WriteFile(tmp.Sub("flag-token"), "flag-token \n");
  auto env = FakeEnv({{"QSEAL_VAR", tmp.path().string()},
                      {"QSEAL_API_ADDR", "127.0.0.1:9001"},
                      {"QSEAL_TOKEN", "env-token"}});
  auto e = ResolveEndpoint({}, env, "");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->server, "https://127.0.0.1:9001");  // no scheme: https
  EXPECT_EQ(e->token, "env-token");

  auto both = FakeEnv({{"QSEAL_SERVER", "10.0.0.1:1"}, {"QSEAL_API_ADDR", "127.0.0.1:9001"}});
  EXPECT_EQ(ResolveEndpoint({}, both, "")->server, "https://10.0.0.1:1");
  auto plain = FakeEnv({{"QSEAL_SERVER", "http://10.0.0.1:1"}});
  EXPECT_EQ(ResolveEndpoint({}, plain, "")->server, "http://10.0.0.1:1");

  auto f = ResolveEndpoint(
      {.server = "host:7", .token_file = tmp.Sub("flag-token"), .ca = "", .cert = "", .key = ""},
      env, "");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->server, "https://host:7");
  EXPECT_EQ(f->token, "flag-token");
}

TEST(ConfigTest, UnreadableTokenFileIsAnError) {
  TempDir tmp;
  auto e = ResolveEndpoint(
      {.server = "", .token_file = tmp.Sub("missing"), .ca = "", .cert = "", .key = ""},
      FakeEnv({}), "");
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
}

TEST(ConfigTest, VarDirNextToTheBuildTree) {
  TempDir tmp;
  fs::create_directories(tmp.Sub("repo/var"));
  fs::create_directories(tmp.Sub("repo/build/cli"));
  WriteFile(tmp.Sub("repo/var/api-token"), "t");
  std::string dir = ResolveVarDir(FakeEnv({}), tmp.Sub("repo/build/cli/qsealctl"));
  EXPECT_EQ(fs::canonical(dir), fs::canonical(tmp.Sub("repo/var")));
}

std::string Qsealctl() { return std::string(QSEAL_BINARY_DIR) + "/cli/qsealctl"; }

TEST(QsealctlUsageTest, UsageErrorsExit64) {
  for (const std::string args : {"", "frobnicate", "submit", "status", "fetch", "verify",
                                 "submit --concurrency 0 x", "submit --bogus x"}) {
    auto r = RunCommand(Qsealctl() + " " + args);
    EXPECT_EQ(r.exit_code, kExitUsage) << args << "\n" << r.output;
  }
  auto help = RunCommand(Qsealctl() + " --help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  for (const char* word : {"submit", "status", "fetch", "verify", "health"}) {
    EXPECT_NE(help.output.find(word), std::string::npos) << word;
  }
}

TEST(QsealctlUsageTest, SubmitMissingFileExits74AndNoServerExits69) {
  TempDir tmp;
  auto missing = RunCommand(Qsealctl() + " --server 127.0.0.1:1 submit " + tmp.Sub("nope"));
  EXPECT_EQ(missing.exit_code, kExitIoErr) << missing.output;
  WriteFile(tmp.Sub("doc.txt"), "hello");
  auto down = RunCommand("QSEAL_TOKEN=x " + Qsealctl() + " --server 127.0.0.1:1 submit " +
                         tmp.Sub("doc.txt"));
  EXPECT_EQ(down.exit_code, kExitUnavailable) << down.output;
  EXPECT_NE(down.output.find("doc.txt"), std::string::npos) << down.output;
  auto health = RunCommand(Qsealctl() + " --server 127.0.0.1:1 health");
  EXPECT_EQ(health.exit_code, kExitUnavailable) << health.output;
  auto status = RunCommand(Qsealctl() + " --server 127.0.0.1:1 status 01ABC");
  EXPECT_EQ(status.exit_code, kExitUnavailable) << status.output;
}

std::string Pem(ByteSpan der) { return formats::testing::CertificateToPem(der); }

Bytes Sha256(std::string_view s) {
  Bytes out(32);
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

// A software CA and seal certificate, and seals over a document, in a temp dir.
class QsealctlVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_.key = formats::testing::GenerateKey("ec-p256");
    CertSpec ca_spec;
    ca_spec.common_name = "qsealctl test CA";
    ca_spec.ca = true;
    ca_spec.key_usage = "critical,keyCertSign,cRLSign";
    ca_.certificate_der = formats::testing::IssueCertificate(ca_.key.get(), ca_spec, nullptr);
    leaf_.key = formats::testing::GenerateKey("ec-p256");
    CertSpec leaf_spec;
    leaf_spec.common_name = "qsealctl test seal";
    leaf_spec.serial = 9;
    leaf_.certificate_der = formats::testing::IssueCertificate(leaf_.key.get(), leaf_spec, &ca_);
    auto ctx = SignerContext::Create({leaf_.certificate_der, ca_.certificate_der},
                                     DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    ctx_ = *ctx;
    fs::create_directories(tmp_.Sub("pki"));
    WriteFile(tmp_.Sub("pki/ca.pem"), Pem(ca_.certificate_der));
    WriteFile(tmp_.Sub("doc.txt"), content_);
  }

  formats::cades::ToBeSigned Tbs() {
    auto tbs =
        formats::cades::BuildToBeSigned(*ctx_, Sha256(content_), std::chrono::system_clock::now());
    EXPECT_TRUE(tbs.ok()) << tbs.status();
    return *tbs;
  }

  Bytes Sign(const formats::cades::ToBeSigned& tbs) {
    return formats::testing::SoftwareSign(leaf_.key.get(), tbs.digest, DigestAlgorithm::kSha256,
                                          SignatureScheme::kEcdsa);
  }

  // Writes doc.txt.p7s (detached) and checks it with openssl first.
  std::string MakeDetached() {
    auto tbs = Tbs();
    auto seal = formats::cades::AssembleDetached(*ctx_, tbs, Sign(tbs));
    EXPECT_TRUE(seal.ok());
    std::string path = tmp_.Sub("doc.txt.p7s");
    formats::testing::WriteBinaryFile(path, *seal);
    auto ossl = RunCommand("openssl cms -verify -binary -inform DER -in " + ShellQuote(path) +
                           " -content " + ShellQuote(tmp_.Sub("doc.txt")) + " -CAfile " +
                           ShellQuote(tmp_.Sub("pki/ca.pem")) + " -purpose any -out /dev/null");
    EXPECT_EQ(ossl.exit_code, 0) << ossl.output;
    return path;
  }

  std::string MakeEnveloping() {
    auto tbs = Tbs();
    std::string path = tmp_.Sub("doc.txt.p7m");
    Status s = formats::cades::AssembleEnveloping(*ctx_, tbs, Sign(tbs), content_.size(),
                                                  formats::testing::SpanReader(AsBytes(content_)),
                                                  formats::testing::FileWriter(path));
    EXPECT_TRUE(s.ok()) << s;
    auto ossl = RunCommand("openssl cms -verify -binary -inform DER -in " + ShellQuote(path) +
                           " -CAfile " + ShellQuote(tmp_.Sub("pki/ca.pem")) +
                           " -purpose any -out " + ShellQuote(tmp_.Sub("extracted")));
    EXPECT_EQ(ossl.exit_code, 0) << ossl.output;
    EXPECT_EQ(qseal::testing::ReadFile(tmp_.Sub("extracted")), content_);
    return path;
  }

  testing::CommandResult Verify(const std::string& args) {
    return RunCommand("QSEAL_VAR=" + ShellQuote(tmp_.path().string()) + " " + Qsealctl() +
                      " verify " + args);
  }

  TempDir tmp_;
  SoftwareSigner ca_;
  SoftwareSigner leaf_;
  std::shared_ptr<const SignerContext> ctx_;
  std::string content_ = "Invoice 2026-0001: 1 200,00 EUR\n";
};

TEST_F(QsealctlVerifyTest, DetachedSealVerifiesWithContentBesideAndDefaultCa) {
  std::string seal = MakeDetached();
  auto r = Verify(ShellQuote(seal));
  EXPECT_EQ(r.exit_code, kExitOk) << r.output;
  EXPECT_NE(r.output.find("seal verified"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ok    message-digest"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ok    signature"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("qsealctl test seal"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("FAIL"), std::string::npos) << r.output;

  auto explicit_args =
      RunCommand(Qsealctl() + " verify " + ShellQuote(seal) + " --content " +
                 ShellQuote(tmp_.Sub("doc.txt")) + " --ca " + ShellQuote(tmp_.Sub("pki/ca.pem")));
  EXPECT_EQ(explicit_args.exit_code, kExitOk) << explicit_args.output;
}

TEST_F(QsealctlVerifyTest, PadesSealVerifiesThroughVerifySeal) {
  formats::FormatOptions options;
  options.certificate_chain_der = {leaf_.certificate_der, ca_.certificate_der};
  auto format = formats::CreateFormat("pades", options);
  ASSERT_TRUE(format.ok()) << format.status();
  std::string pdf = formats::testing::MakeQpdfPdf(2, formats::testing::XrefKind::kStream);
  auto sealed = formats::testing::SealPdf(**format, pdf, [this](ByteSpan d) -> Result<Bytes> {
    return formats::testing::SoftwareSign(leaf_.key.get(), d, DigestAlgorithm::kSha256,
                                          SignatureScheme::kEcdsa);
  });
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  std::string path = tmp_.Sub("invoice.pdf");
  WriteFile(path, *sealed);
  formats::testing::MakeNssDb(tmp_.Sub("nss"), tmp_.Sub("pki/ca.pem"));
  auto pdfsig = formats::testing::Pdfsig(tmp_.Sub("nss"), path);
  EXPECT_EQ(pdfsig.valid, 1) << pdfsig.output;
  EXPECT_EQ(pdfsig.trusted, 1) << pdfsig.output;

  auto r = Verify(ShellQuote(path));
  EXPECT_EQ(r.exit_code, kExitOk) << r.output;
  EXPECT_NE(r.output.find("ok    Seal1/signature"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ok    whole-document"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("packaging: PAdES"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("seal verified"), std::string::npos) << r.output;

  auto with_content = Verify(ShellQuote(path) + " --content " + ShellQuote(tmp_.Sub("doc.txt")));
  EXPECT_EQ(with_content.exit_code, kExitUsage) << with_content.output;

  std::string bad = *sealed;
  bad[bad.find("/MediaBox") + 2] = 'X';
  WriteFile(tmp_.Sub("bad.pdf"), bad);
  auto tampered = Verify(ShellQuote(tmp_.Sub("bad.pdf")));
  EXPECT_EQ(tampered.exit_code, kExitDataErr) << tampered.output;
  EXPECT_NE(tampered.output.find("seal NOT valid"), std::string::npos) << tampered.output;
}

TEST_F(QsealctlVerifyTest, TamperedContentExits65) {
  std::string seal = MakeDetached();
  WriteFile(tmp_.Sub("tampered.txt"), "Invoice 2026-0001: 9 200,00 EUR\n");
  auto r = Verify(ShellQuote(seal) + " --content " + ShellQuote(tmp_.Sub("tampered.txt")));
  EXPECT_EQ(r.exit_code, kExitDataErr) << r.output;
  EXPECT_NE(r.output.find("FAIL  message-digest"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("seal NOT valid"), std::string::npos) << r.output;
  // openssl agrees.
  auto ossl = RunCommand("openssl cms -verify -binary -inform DER -in " + ShellQuote(seal) +
                         " -content " + ShellQuote(tmp_.Sub("tampered.txt")) + " -CAfile " +
                         ShellQuote(tmp_.Sub("pki/ca.pem")) + " -purpose any -out /dev/null");
  EXPECT_NE(ossl.exit_code, 0);
}

TEST_F(QsealctlVerifyTest, TamperedSealAndForeignCaExit65) {
  std::string seal = MakeDetached();
  Bytes bytes = formats::testing::ReadBinaryFile(seal);
  bytes[bytes.size() - 5] ^= 0x01;  // inside the signature value
  formats::testing::WriteBinaryFile(tmp_.Sub("bad.p7s"), bytes);
  auto bad =
      Verify(ShellQuote(tmp_.Sub("bad.p7s")) + " --content " + ShellQuote(tmp_.Sub("doc.txt")));
  EXPECT_EQ(bad.exit_code, kExitDataErr) << bad.output;

  SoftwareSigner other;
  other.key = formats::testing::GenerateKey("ec-p256");
  CertSpec spec;
  spec.common_name = "someone else's CA";
  spec.ca = true;
  spec.key_usage = "critical,keyCertSign,cRLSign";
  other.certificate_der = formats::testing::IssueCertificate(other.key.get(), spec, nullptr);
  WriteFile(tmp_.Sub("other-ca.pem"), Pem(other.certificate_der));
  auto foreign = Verify(ShellQuote(seal) + " --ca " + ShellQuote(tmp_.Sub("other-ca.pem")));
  EXPECT_EQ(foreign.exit_code, kExitDataErr) << foreign.output;
  EXPECT_NE(foreign.output.find("FAIL  chain"), std::string::npos) << foreign.output;
}

TEST_F(QsealctlVerifyTest, EnvelopingSealVerifiesAndRefusesContent) {
  std::string seal = MakeEnveloping();
  auto r = Verify(ShellQuote(seal));
  EXPECT_EQ(r.exit_code, kExitOk) << r.output;
  EXPECT_NE(r.output.find("packaging: enveloping"), std::string::npos) << r.output;
  auto with_content = Verify(ShellQuote(seal) + " --content " + ShellQuote(tmp_.Sub("doc.txt")));
  EXPECT_EQ(with_content.exit_code, kExitUsage) << with_content.output;
}

// XAdES seals go through the same VerifySeal: enveloped (content refused) and detached (the
// document found beside NAME.xades.xml); xmlsec1 agrees on each.
TEST_F(QsealctlVerifyTest, XadesSealsVerify) {
  formats::FormatOptions options;
  options.certificate_chain_der = {leaf_.certificate_der, ca_.certificate_der};
  const std::string doc = formats::xadestest::Sample("cii-invoice.xml");
  WriteFile(tmp_.Sub("invoice.xml"), doc);
  for (const std::string name : {"xades-enveloped", "xades-detached"}) {
    SCOPED_TRACE(name);
    auto format = formats::CreateFormat(name, options);
    ASSERT_TRUE(format.ok()) << format.status();
    auto seal = formats::xadestest::Seal(**format, doc, "invoice.xml", [&](ByteSpan digest) {
      return Result<Bytes>(formats::testing::SoftwareSign(
          leaf_.key.get(), digest, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa));
    });
    ASSERT_TRUE(seal.ok()) << seal.status();
    const bool enveloped = name == "xades-enveloped";
    std::string path = tmp_.Sub(enveloped ? "signed-invoice.xml" : "invoice.xades.xml");
    WriteFile(path, *seal);
    auto x = formats::xadestest::XmlsecVerify(path, tmp_.Sub("pki/ca.pem"));
    EXPECT_EQ(x.exit_code, 0) << x.output;
    auto r = Verify(ShellQuote(path));
    EXPECT_EQ(r.exit_code, kExitOk) << r.output;
    EXPECT_NE(r.output.find("format: " + name), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(enveloped ? "packaging: enveloped" : "packaging: detached"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("ok    signed-properties-digest"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("seal verified"), std::string::npos) << r.output;
    if (enveloped) {
      auto with_content =
          Verify(ShellQuote(path) + " --content " + ShellQuote(tmp_.Sub("doc.txt")));
      EXPECT_EQ(with_content.exit_code, kExitUsage) << with_content.output;
    } else {
      auto other = Verify(ShellQuote(path) + " --content " + ShellQuote(tmp_.Sub("doc.txt")));
      EXPECT_EQ(other.exit_code, kExitDataErr) << other.output;
      EXPECT_NE(other.output.find("FAIL  reference-digest"), std::string::npos) << other.output;
    }
  }
}

TEST_F(QsealctlVerifyTest, MissingInputsExitWithTheRightCode) {
  std::string seal = MakeDetached();
  fs::copy_file(seal, tmp_.Sub("alone.p7s"));
  auto no_content = Verify(ShellQuote(tmp_.Sub("alone.p7s")));
  EXPECT_EQ(no_content.exit_code, kExitUsage) << no_content.output;
  auto no_seal = Verify(ShellQuote(tmp_.Sub("missing.p7s")));
  EXPECT_EQ(no_seal.exit_code, kExitIoErr) << no_seal.output;
  auto no_ca = Verify(ShellQuote(seal) + " --ca " + ShellQuote(tmp_.Sub("missing.pem")));
  EXPECT_EQ(no_ca.exit_code, kExitIoErr) << no_ca.output;
  WriteFile(tmp_.Sub("garbage.p7s"), "not a seal at all");
  auto garbage =
      Verify(ShellQuote(tmp_.Sub("garbage.p7s")) + " --content " + ShellQuote(tmp_.Sub("doc.txt")));
  EXPECT_EQ(garbage.exit_code, kExitDataErr) << garbage.output;
}

}  // namespace
}  // namespace qseal::cli
