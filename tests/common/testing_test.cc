#include "tests/testing/testing.h"

#include <gtest/gtest.h>

namespace qseal::testing {
namespace {

TEST(TestingTest, ProvisionedTokenHoldsANonExtractableKeyAndANonRepudiationCert) {
  TempDir tmp;
  Result<SoftHsm> hsm = ProvisionSoftHsm(tmp.Sub("hsm"), {"t1"});
  ASSERT_TRUE(hsm.ok()) << hsm.status();
  CommandResult objects =
      RunCommand("pkcs11-tool --module " + hsm->module + " --token-label t1 --login --pin " +
                 ShellQuote(hsm->pin) + " --list-objects --type privkey");
  ASSERT_EQ(objects.exit_code, 0) << objects.output;
  EXPECT_NE(objects.output.find("sensitive"), std::string::npos) << objects.output;
  EXPECT_EQ(objects.output.find("extractable"), std::string::npos) << objects.output;
  CommandResult cert = RunCommand("openssl x509 -noout -text -in " + hsm->CertPem("seal"));
  EXPECT_NE(cert.output.find("Non Repudiation"), std::string::npos) << cert.output;
  CommandResult verify = RunCommand("openssl verify -purpose smimesign -CAfile " + hsm->ca_pem +
                                    " " + hsm->CertPem("seal"));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

}  // namespace
}  // namespace qseal::testing
