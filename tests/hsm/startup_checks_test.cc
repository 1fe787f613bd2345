// Startup checks (issue 3, item 8): a key is refused, with the failed check named, when its
// certificate is outside its validity period, lacks nonRepudiation/digitalSignature, is below the
// algorithm policy, or does not match the key in the token.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/clock.h"
#include "hsm/signer.h"
#include "tests/hsm/hsm_test_util.h"

namespace qseal::hsm::testing {
namespace {

class StartupChecksTest : public ::testing::Test {
 protected:
  void SetUp() override { Tokens(); }

  // A self-signed certificate for a fresh software key; `newkey` as for `openssl req -newkey`.
  std::string MakeCert(const std::string& name, const std::string& newkey,
                       const std::string& key_usage) {
    std::string cert = dir_.Sub(name + ".pem");
    std::string cmd = "openssl req -x509 -newkey " + newkey + " -nodes -keyout " +
                      ShellQuote(dir_.Sub(name + ".key")) + " -out " + ShellQuote(cert) +
                      " -subj /CN=" + name + " -days 30";
    if (!key_usage.empty()) cmd += " -addext " + ShellQuote("keyUsage=critical," + key_usage);
    auto r = RunCommand(cmd);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return cert;
  }

  Status CreateWith(KeyOptions key, Clock& clock = Clock::Real()) {
    auto s =
        Signer::Create(TestOptions(), {Part("a", kSoftHsm, "hsm-a", 1)}, {std::move(key)}, clock);
    return s.ok() ? Status::Ok() : s.status();
  }

  TempDir dir_;
};

MATCHER_P(NamesCheck, check, "") {
  return arg.code() == StatusCode::kFailedPrecondition &&
         arg.message().find("check '" + std::string(check) + "' failed") != std::string::npos;
}

TEST_F(StartupChecksTest, GoodKeyPasses) {
  EXPECT_TRUE(CreateWith(SealKey({"a"})).ok());
  auto info = Signer::CheckKeyCertificate(SealKey({"a"}));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_LT(info->not_before, info->not_after);
}

TEST_F(StartupChecksTest, ExpiredOrNotYetValidCertificateIsRefused) {
  ManualClock future(std::chrono::system_clock::now() + std::chrono::hours(24 * 3650));
  EXPECT_THAT(CreateWith(SealKey({"a"}), future), NamesCheck("validity period"));
  ManualClock past(std::chrono::system_clock::now() - std::chrono::hours(24 * 3650));
  Status s = CreateWith(SealKey({"a"}), past);
  EXPECT_THAT(s, NamesCheck("validity period"));
  EXPECT_NE(s.message().find("key 'seal' refused"), std::string::npos) << s;
}

TEST_F(StartupChecksTest, WrongKeyUsageIsRefused) {
  KeyOptions k = SealKey({"a"});
  k.certificate_chain_file =
      MakeCert("ke", "ec -pkeyopt ec_paramgen_curve:P-256", "keyEncipherment");
  EXPECT_THAT(CreateWith(k), NamesCheck("key usage"));
  k.certificate_chain_file = MakeCert("noku", "ec -pkeyopt ec_paramgen_curve:P-256", "");
  EXPECT_THAT(Signer::CheckKeyCertificate(k).status(), NamesCheck("key usage"));
}

TEST_F(StartupChecksTest, AlgorithmPolicy) {
  KeyOptions k = SealKey({"a"});
  k.certificate_chain_file = MakeCert("rsa2048", "rsa:2048", "digitalSignature");
  Status s = Signer::CheckKeyCertificate(k).status();
  EXPECT_THAT(s, NamesCheck("algorithm policy"));
  EXPECT_NE(s.message().find("RSA-2048"), std::string::npos) << s;
  k.allow_rsa_below_3072 = true;
  EXPECT_TRUE(Signer::CheckKeyCertificate(k).ok());
  k.allow_rsa_below_3072 = false;
  k.certificate_chain_file =
      MakeCert("p521", "ec -pkeyopt ec_paramgen_curve:P-521", "nonRepudiation");
  EXPECT_THAT(Signer::CheckKeyCertificate(k).status(), NamesCheck("algorithm policy"));
  k.certificate_chain_file = MakeCert("ed", "ed25519", "digitalSignature");
  EXPECT_THAT(Signer::CheckKeyCertificate(k).status(), NamesCheck("algorithm policy"));
}

TEST_F(StartupChecksTest, CertificateOfAnotherKeyIsRefused) {
  KeyOptions k = SealKey({"a"});
  k.certificate_chain_file =
      MakeCert("stranger", "ec -pkeyopt ec_paramgen_curve:P-256", "nonRepudiation");
  Status s = CreateWith(k);
  EXPECT_THAT(s, NamesCheck("key matches certificate"));
  EXPECT_NE(s.message().find("partition 'a'"), std::string::npos) << s;
  // An RSA certificate for the EC key in the token.
  k.certificate_chain_file = Tokens().ChainPem("other");
  s = CreateWith(k);
  EXPECT_THAT(s, NamesCheck("key matches certificate"));
  EXPECT_NE(s.message().find("the token's key is EC"), std::string::npos) << s;
}

TEST_F(StartupChecksTest, KeyMissingFromPartitionIsRefused) {
  KeyOptions k = SealKey({"a"});
  k.uri = "pkcs11:object=absent;type=private";
  EXPECT_THAT(CreateWith(k), NamesCheck("key present"));
}

// eIDAS Annex II 1(b), 1(c), 4 (issue 23, item 5): the key's protection attributes are read and
// reported; the imported test key is sensitive and not extractable, but was not generated in the
// token (never extractable / always sensitive false: a backup copy).
TEST_F(StartupChecksTest, KeyProtectionAndTokenAreReported) {
  auto signer = Signer::Create(TestOptions(),
                               {Part("a", kSoftHsm, "hsm-a", 1), Part("b", kSoftHsm, "hsm-b", 1)},
                               {SealKey({"a", "b"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  const std::vector<PartitionReport>& report = (*signer)->StartupReport();
  ASSERT_EQ(report.size(), 2u);
  for (const PartitionReport& r : report) {
    SCOPED_TRACE(r.name);
    EXPECT_EQ(r.state, PartitionState::kUp);
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.module_path, kSoftHsm);
    EXPECT_EQ(r.library_manufacturer, "SoftHSM");
    EXPECT_EQ(r.token_label, r.name == "a" ? "hsm-a" : "hsm-b");
    EXPECT_FALSE(r.token_serial.empty());
    EXPECT_THAT(r.token_flags, ::testing::Contains("CKF_LOGIN_REQUIRED"));
    EXPECT_THAT(r.sign_mechanisms, ::testing::Contains(::testing::StartsWith("CKM_ECDSA (")));
    ASSERT_EQ(r.keys.size(), 1u);
    EXPECT_EQ(r.keys[0].key, "seal");
    EXPECT_EQ(r.keys[0].partition, r.name);
    EXPECT_TRUE(r.keys[0].sensitive);
    EXPECT_FALSE(r.keys[0].extractable);
    EXPECT_FALSE(r.keys[0].never_extractable);
    EXPECT_FALSE(r.keys[0].always_sensitive);
  }
}

TEST_F(StartupChecksTest, ExtractableKeyIsRefused) {
  Shim a = MakeShim(dir_, "a", "key_extractable=1\n");
  auto s = Signer::Create(TestOptions(), {Part("a", a.so, "hsm-a", 1)}, {SealKey({"a"})});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status(), NamesCheck("key protection"));
  EXPECT_NE(s.status().message().find("CKA_EXTRACTABLE true"), std::string::npos) << s.status();
}

TEST_F(StartupChecksTest, BadOptionsAreInvalidArgument) {
  KeyOptions k = SealKey({"a"});
  k.uri = "not-a-uri";
  EXPECT_EQ(CreateWith(k).code(), StatusCode::kInvalidArgument);
  k = SealKey({"nowhere"});
  EXPECT_EQ(CreateWith(k).code(), StatusCode::kInvalidArgument);
  k = SealKey({"a"});
  k.certificate_chain_file = dir_.Sub("missing.pem");
  EXPECT_EQ(CreateWith(k).code(), StatusCode::kInvalidArgument);
  PartitionOptions p = Part("a", dir_.Sub("no-such-module.so"), "hsm-a");
  EXPECT_EQ(Signer::Create(TestOptions(), {p}, {SealKey({"a"})}).status().code(),
            StatusCode::kInvalidArgument);
  p = Part("a", kSoftHsm, "hsm-a");
  p.pin_source = "plain:1234";
  EXPECT_EQ(Signer::Create(TestOptions(), {p}, {SealKey({"a"})}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(StartupChecksTest, UnreachablePartitionStartsDownAndNotReady) {
  Shim a = MakeShim(dir_, "a", "down=1\n");
  auto signer = Signer::Create(TestOptions(), {Part("a", a.so, "hsm-a", 1)}, {SealKey({"a"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_FALSE((*signer)->Ready());
  EXPECT_EQ(FindPartition((*signer)->Stats(), "a")->state, PartitionState::kDown);
  a.Configure("");
  EXPECT_TRUE(WaitFor([&] { return (*signer)->Ready(); }));
}

TEST_F(StartupChecksTest, TokenFoundBySerial) {
  // The serial of hsm-b, read with pkcs11-tool (independent of qseal).
  auto r = RunCommand("pkcs11-tool --module " + std::string(kSoftHsm) + " --list-token-slots");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string serial;
  std::size_t pos = r.output.find("token label        : hsm-b");
  ASSERT_NE(pos, std::string::npos) << r.output;
  std::size_t sp = r.output.find("serial num         : ", pos);
  ASSERT_NE(sp, std::string::npos);
  sp += std::string("serial num         : ").size();
  serial = r.output.substr(sp, r.output.find('\n', sp) - sp);
  PartitionOptions p = Part("b", kSoftHsm, "");
  p.token_serial = serial;
  auto signer = Signer::Create(TestOptions(), {p}, {SealKey({"b"})});
  ASSERT_TRUE(signer.ok()) << signer.status() << " serial=" << serial;
  EXPECT_TRUE((*signer)->Ready());
}

}  // namespace
}  // namespace qseal::hsm::testing
