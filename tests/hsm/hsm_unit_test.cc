// Pure parts of hsm/: CK_RV names, recovery classes and verdicts, RFC 7512 key URIs, PIN sources,
// the option checks, DigestInfo and ECDSA encoding.
#include <sys/stat.h>

#include <cstdlib>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ecdsa.h>

#include "hsm/detail/crypto.h"
#include "hsm/detail/options.h"
#include "hsm/detail/partition.h"
#include "hsm/detail/pkcs11.h"
#include "tests/testing/testing.h"

namespace qseal::hsm::detail {
namespace {

TEST(CkrTest, NamesKnownAndUnknownValues) {
  EXPECT_EQ(CkrName(CKR_OK), "CKR_OK");
  EXPECT_EQ(CkrName(CKR_DEVICE_ERROR), "CKR_DEVICE_ERROR");
  EXPECT_EQ(CkrName(CKR_SESSION_HANDLE_INVALID), "CKR_SESSION_HANDLE_INVALID");
  EXPECT_EQ(CkrName(0x8000abcdUL), "CKR_0x8000abcd");
}

TEST(CkrTest, ClassifiesTheRecoveryLadder) {
  EXPECT_EQ(Classify(CKR_OK), CkrClass::kOk);
  EXPECT_EQ(Classify(CKR_SESSION_HANDLE_INVALID), CkrClass::kSession);
  EXPECT_EQ(Classify(CKR_SESSION_CLOSED), CkrClass::kSession);
  EXPECT_EQ(Classify(CKR_USER_NOT_LOGGED_IN), CkrClass::kNotLoggedIn);
  EXPECT_EQ(Classify(CKR_OBJECT_HANDLE_INVALID), CkrClass::kObject);
  EXPECT_EQ(Classify(CKR_KEY_HANDLE_INVALID), CkrClass::kObject);
  for (CK_RV rv : {CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_GENERAL_ERROR,
                   CKR_CRYPTOKI_NOT_INITIALIZED}) {
    EXPECT_EQ(Classify(rv), CkrClass::kDevice) << CkrName(rv);
  }
  EXPECT_EQ(Classify(CKR_PIN_INCORRECT), CkrClass::kPin);
  EXPECT_EQ(Classify(CKR_PIN_LOCKED), CkrClass::kPin);
  EXPECT_EQ(Classify(CKR_DATA_LEN_RANGE), CkrClass::kRequest);
  EXPECT_EQ(Classify(CKR_FUNCTION_FAILED), CkrClass::kOther);
}

TEST(CkrTest, StatusKeepsTheName) {
  Status s = CkrStatus(CKR_DEVICE_ERROR, "C_Sign");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "C_Sign: CKR_DEVICE_ERROR");
  EXPECT_EQ(CkrStatus(CKR_PIN_INCORRECT, "C_Login").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(CkrStatus(CKR_DATA_LEN_RANGE, "C_Sign").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(CkrStatus(CKR_OK, "x").ok());
}

TEST(CkrTest, VerdictsFollowTheClasses) {
  EXPECT_EQ(VerdictFor(CKR_SESSION_HANDLE_INVALID), Verdict::kSession);
  EXPECT_EQ(VerdictFor(CKR_SESSION_CLOSED), Verdict::kSession);
  EXPECT_EQ(VerdictFor(CKR_USER_NOT_LOGGED_IN), Verdict::kDown);  // after the one re-login
  EXPECT_EQ(VerdictFor(CKR_DEVICE_ERROR), Verdict::kDown);
  EXPECT_EQ(VerdictFor(CKR_CRYPTOKI_NOT_INITIALIZED), Verdict::kDown);
  EXPECT_EQ(VerdictFor(CKR_PIN_INCORRECT), Verdict::kDisabled);
  EXPECT_EQ(VerdictFor(CKR_PIN_LOCKED), Verdict::kDisabled);
  EXPECT_EQ(VerdictFor(CKR_DATA_LEN_RANGE), Verdict::kRequest);
  EXPECT_EQ(VerdictFor(CKR_MECHANISM_INVALID), Verdict::kRequest);
  EXPECT_EQ(VerdictFor(CKR_OBJECT_HANDLE_INVALID), Verdict::kRetry);  // after the one re-find
  EXPECT_EQ(VerdictFor(CKR_FUNCTION_FAILED), Verdict::kRetry);
  EXPECT_EQ(VerdictFor(CKR_OK), Verdict::kRetry);
}

TEST(KeyUriTest, ParsesLabelAndId) {
  auto k = ParseKeyUri("pkcs11:token=whatever;object=seal%20key;id=%01%ff;type=private");
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->label, "seal key");
  EXPECT_EQ(k->id, (Bytes{0x01, 0xff}));
  auto only_id = ParseKeyUri("pkcs11:id=%02");
  ASSERT_TRUE(only_id.ok());
  EXPECT_TRUE(only_id->label.empty());
}

TEST(KeyUriTest, RejectsWhatIsNotOnePrivateKey) {
  EXPECT_EQ(ParseKeyUri("seal").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKeyUri("pkcs11:type=private").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKeyUri("pkcs11:object=seal;type=cert").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(PinSourceTest, FileAndEnv) {
  qseal::testing::TempDir dir;
  qseal::testing::WriteFile(dir.Sub("pin"), "123456\n");
  ASSERT_EQ(::chmod(dir.Sub("pin").c_str(), 0600), 0);
  auto p = ReadPin("file:" + dir.Sub("pin"));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->Equals("123456", 6));
  setenv("QSEAL_UNIT_PIN", "9876", 1);
  EXPECT_TRUE(ReadPin("env:QSEAL_UNIT_PIN").value().Equals("9876", 4));
  EXPECT_EQ(std::getenv("QSEAL_UNIT_PIN"), nullptr);  // cleared once read
  EXPECT_EQ(ReadPin("env:QSEAL_UNIT_PIN").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadPin("env:QSEAL_UNIT_PIN_UNSET").status().code(), StatusCode::kInvalidArgument);
  // A PIN file group or other may read is refused, naming the mode but never the PIN.
  ASSERT_EQ(::chmod(dir.Sub("pin").c_str(), 0640), 0);
  Status loose = ReadPin("file:" + dir.Sub("pin")).status();
  EXPECT_EQ(loose.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(loose.message().find("mode 0640"), std::string::npos) << loose;
  EXPECT_EQ(loose.message().find("123456"), std::string::npos);
  EXPECT_EQ(ReadPin("file:" + dir.Sub("nope")).status().code(), StatusCode::kInvalidArgument);
  Status bad = ReadPin("1234").status();
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message().find("1234"), std::string::npos);  // never echo a PIN
}

// A configuration ValidateOptions accepts; each check below breaks one thing in a copy of it.
struct Config {
  SignerOptions options;
  std::vector<PartitionOptions> partitions;
  std::vector<KeyOptions> keys;

  Status Validate() const { return ValidateOptions(options, partitions, keys); }
};

Config GoodConfig() {
  Config c;
  for (const char* name : {"a", "b"}) {
    PartitionOptions p;
    p.name = name;
    p.module_path = "/usr/lib/softhsm/libsofthsm2.so";
    p.token_label = std::string("hsm-") + name;
    p.pin_source = "env:QSEAL_UNIT_PIN";  // not read: no environment is checked here
    c.partitions.push_back(p);
  }
  KeyOptions k;
  k.name = "seal";
  k.uri = "pkcs11:object=seal;type=private";
  k.certificate_chain_file = "/nonexistent/seal.pem";  // not read either
  k.partitions = {"a", "b"};
  c.keys.push_back(k);
  return c;
}

MATCHER_P(RejectedWith, text, "") {
  return arg.code() == StatusCode::kInvalidArgument &&
         arg.message().find(text) != std::string::npos;
}

TEST(ValidateOptionsTest, AcceptsAGoodConfigurationAndItsBoundaries) {
  EXPECT_TRUE(GoodConfig().Validate().ok()) << GoodConfig().Validate();
  Config c = GoodConfig();
  c.options.hung_call_timeout = c.options.sign_timeout;
  c.options.max_linger = c.options.max_queue_time - std::chrono::milliseconds(1);
  c.options.max_attempts = 1;
  c.options.max_batch = 1;
  c.options.max_pending = 1;
  c.partitions[0].sessions = 1;
  c.partitions[1].sessions = 1024;
  c.partitions[1].token_label.clear();
  c.partitions[1].token_serial = "0123456789abcdef";
  c.keys[0].uri = "pkcs11:id=%01";
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
}

TEST(ValidateOptionsTest, RejectsBadSignerOptions) {
  Config c = GoodConfig();
  c.partitions.clear();
  EXPECT_THAT(c.Validate(), RejectedWith("no partition configured"));
  c = GoodConfig();
  c.keys.clear();
  EXPECT_THAT(c.Validate(), RejectedWith("no key configured"));
  for (int which = 0; which < 3; ++which) {
    c = GoodConfig();
    if (which == 0) c.options.max_batch = 0;
    if (which == 1) c.options.max_pending = 0;
    if (which == 2) c.options.max_attempts = 0;
    EXPECT_THAT(c.Validate(), RejectedWith("must be positive")) << which;
  }
  c = GoodConfig();
  c.options.hung_call_timeout = c.options.sign_timeout - std::chrono::milliseconds(1);
  EXPECT_THAT(c.Validate(), RejectedWith("hung_call_timeout must be at least sign_timeout"));
  c = GoodConfig();
  c.options.max_linger = c.options.max_queue_time;
  EXPECT_THAT(c.Validate(), RejectedWith("max_linger must be shorter than max_queue_time"));
}

TEST(ValidateOptionsTest, RejectsBadPartitions) {
  Config c = GoodConfig();
  c.partitions[1].name.clear();
  EXPECT_THAT(c.Validate(), RejectedWith("a partition has no name"));
  c = GoodConfig();
  c.partitions[1].name = "a";
  EXPECT_THAT(c.Validate(), RejectedWith("partition 'a' configured twice"));
  c = GoodConfig();
  c.partitions[1].module_path.clear();
  EXPECT_THAT(c.Validate(), RejectedWith("partition 'b': module is empty"));
  c = GoodConfig();
  c.partitions[1].token_label.clear();
  EXPECT_THAT(c.Validate(), RejectedWith("partition 'b': needs a token label or serial"));
  for (int sessions : {0, -1, 1025}) {
    c = GoodConfig();
    c.partitions[1].sessions = sessions;
    EXPECT_THAT(c.Validate(), RejectedWith("partition 'b': sessions must be 1..1024")) << sessions;
  }
  c = GoodConfig();
  c.partitions[1].keepalive_interval = std::chrono::milliseconds(-1);
  EXPECT_THAT(c.Validate(), RejectedWith("partition 'b': keepalive_interval is negative"));
  for (int retries : {-1, 11}) {
    c = GoodConfig();
    c.partitions[1].device_error_retries = retries;
    EXPECT_THAT(c.Validate(), RejectedWith("partition 'b': device_error_retries must be 0..10"))
        << retries;
  }
  c = GoodConfig();
  c.partitions[1].keepalive_interval = std::chrono::minutes(5);
  c.partitions[1].device_error_retries = 10;
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
}

TEST(ValidateOptionsTest, RejectsBadKeys) {
  Config c = GoodConfig();
  c.keys[0].name.clear();
  EXPECT_THAT(c.Validate(), RejectedWith("a key has no name"));
  c = GoodConfig();
  c.keys.push_back(c.keys[0]);
  EXPECT_THAT(c.Validate(), RejectedWith("key 'seal' configured twice"));
  c = GoodConfig();
  c.keys[0].uri = "pkcs11:object=seal;type=cert";
  EXPECT_THAT(c.Validate(), RejectedWith("key 'seal'"));
  c.keys[0].uri = "seal";
  EXPECT_THAT(c.Validate(), RejectedWith("bad PKCS#11 URI"));
  c = GoodConfig();
  c.keys[0].partitions.clear();
  EXPECT_THAT(c.Validate(), RejectedWith("key 'seal': no partitions"));
  c = GoodConfig();
  c.keys[0].partitions = {"a", "nowhere"};
  EXPECT_THAT(c.Validate(), RejectedWith("key 'seal': unknown partition 'nowhere'"));
}

TEST(DigestInfoTest, PrefixesPerDigest) {
  Bytes d256(32, 0xab);
  Bytes di = DigestInfo(DigestAlgorithm::kSha256, d256);
  ASSERT_EQ(di.size(), 19u + 32u);
  EXPECT_EQ(HexEncode(ByteSpan(di).first(19)), "3031300d060960864801650304020105000420");
  EXPECT_EQ(DigestInfo(DigestAlgorithm::kSha384, Bytes(48)).size(), 19u + 48u);
  Bytes di512 = DigestInfo(DigestAlgorithm::kSha512, Bytes(64));
  EXPECT_EQ(HexEncode(ByteSpan(di512).first(19)), "3051300d060960864801650304020305000440");
}

TEST(EcdsaTest, RawToDerRoundTrips) {
  Bytes raw(64);
  for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<std::uint8_t>(i + 1);
  raw[0] = 0x80;  // high bit set: DER needs a leading zero for r
  auto der = EcdsaRawToDer(raw);
  ASSERT_TRUE(der.ok());
  const unsigned char* p = der->data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der->size()));
  ASSERT_NE(sig, nullptr);
  Bytes r(32), s(32);
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), r.data(), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), s.data(), 32);
  ECDSA_SIG_free(sig);
  EXPECT_EQ(r, Bytes(raw.begin(), raw.begin() + 32));
  EXPECT_EQ(s, Bytes(raw.begin() + 32, raw.end()));
  EXPECT_FALSE(EcdsaRawToDer(Bytes(63)).ok());
}

}  // namespace
}  // namespace qseal::hsm::detail
