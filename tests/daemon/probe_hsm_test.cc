// qseald --probe-hsm (issue 23, item 4; docs/hsm-vendors.md) on the embedded default (two SoftHSM2
// tokens with copies of one key) and on what an operator gets wrong: a wrong PIN, a key missing
// from the token, an extractable key, an HSM that cannot be reached.
#include <filesystem>
#include <iostream>

#include <gtest/gtest.h>

#include "common/exit_codes.h"
#include "tests/p11shim/p11shim.h"
#include "tests/testing/qseald_harness.h"

namespace qseal {
namespace {

using testing::CommandResult;
using testing::TempDir;

// Replaces every occurrence of `from` in the config text.
void ReplaceAll(std::string& conf, const std::string& from, const std::string& to) {
  for (std::size_t p = conf.find(from); p != std::string::npos; p = conf.find(from, p + to.size()))
    conf.replace(p, from.size(), to);
}

CommandResult Probe(const TempDir& tmp, testing::QsealdOptions options = {}) {
  testing::Qseald qseald(tmp.Sub("d"), std::move(options));
  Status prepared = qseald.Prepare();
  EXPECT_TRUE(prepared.ok()) << prepared;
  return qseald.Run("--probe-hsm");
}

// A copy of the shim for both partitions, configured with `shim_conf`.
testing::QsealdOptions BehindShim(const TempDir& tmp, const std::string& shim_conf) {
  const std::string so = tmp.Sub("hsm.so");
  std::filesystem::copy_file(QSEAL_P11SHIM_PATH, so);
  p11shim::WriteConfig(so + ".conf", shim_conf);
  testing::QsealdOptions o;
  o.module = so;
  return o;
}

TEST(ProbeHsmTest, EmbeddedDefaultPassesAndReportsTokensMechanismsAndCopies) {
  TempDir tmp;
  CommandResult r = Probe(tmp);
  std::cout << r.output;  // the report, for the test log
  EXPECT_EQ(r.exit_code, kExitOk) << r.output;
  for (const char* want :
       {"partition p1: up", "partition p2: up", "token 'qseal-p1': manufacturer SoftHSM",
        "token 'qseal-p2'", "firmware ", "CKF_LOGIN_REQUIRED", "CKM_ECDSA (",
        "key seal: found, test signature verified; sensitive yes, extractable no",
        "key seal (EC P-256), certificate valid until ", "on p1, p2 (2 copies (backup))",
        "HSM probe OK"}) {
    EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n" << r.output;
  }
  EXPECT_EQ(r.output.find("qseald started"), std::string::npos) << r.output;
}

TEST(ProbeHsmTest, WrongPinExits78NamingThePin) {
  TempDir tmp;
  testing::QsealdOptions o;
  o.edit_config = [](std::string& conf) {
    ReplaceAll(conf, "file:${QSEAL_VAR:-var}/pin", "env:QSEAL_TEST_WRONG_PIN");
  };
  o.extra_env = {"QSEAL_TEST_WRONG_PIN=0000"};
  CommandResult r = Probe(tmp, o);
  EXPECT_EQ(r.exit_code, kExitConfig) << r.output;
  EXPECT_NE(r.output.find("CKR_PIN_INCORRECT"), std::string::npos) << r.output;
}

TEST(ProbeHsmTest, MissingKeyExits78NamingTheCheck) {
  TempDir tmp;
  testing::QsealdOptions o;
  o.edit_config = [](std::string& conf) {
    ReplaceAll(conf, "pkcs11:object=seal;type=private", "pkcs11:object=absent;type=private");
  };
  CommandResult r = Probe(tmp, o);
  EXPECT_EQ(r.exit_code, kExitConfig) << r.output;
  EXPECT_NE(r.output.find("check 'key present' failed"), std::string::npos) << r.output;
}

TEST(ProbeHsmTest, ExtractableKeyExits78) {
  TempDir tmp;
  CommandResult r = Probe(tmp, BehindShim(tmp, "key_extractable=1\n"));
  EXPECT_EQ(r.exit_code, kExitConfig) << r.output;
  EXPECT_NE(r.output.find("check 'key protection' failed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("CKA_EXTRACTABLE true"), std::string::npos) << r.output;
}

TEST(ProbeHsmTest, UnreachableHsmExits69) {
  TempDir tmp;
  CommandResult r = Probe(tmp, BehindShim(tmp, "down=1\n"));
  EXPECT_EQ(r.exit_code, kExitUnavailable) << r.output;
  EXPECT_NE(r.output.find("partition p1 is down"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("CKR_DEVICE_ERROR"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("HSM probe FAILED"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace qseal
