// 1 GiB documents sealed through SoftHSM2 with every key, detached and enveloping, checked with
// openssl and our Verify. Label `slow`: the openssl CLI needs files, so this moves several GiB.
#include <sys/statvfs.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "tests/formats/hsm_fixture.h"

namespace qseal::formats::cades {
namespace {

using namespace hsmtest;
using formats::testing::Sh;
using qseal::testing::ShellQuote;

::testing::Environment* const kHsmEnvironment =
    ::testing::AddGlobalTestEnvironment(new hsmtest::HsmEnvironment);

// Where the GiB files go: a fresh directory on /dev/shm when it has room (the disk here writes
// ~80 MB/s, tmpfs is memory), else the test's temp dir. Removed on destruction.
class LargeDir {
 public:
  LargeDir() {
    struct statvfs vfs {};
    if (statvfs("/dev/shm", &vfs) == 0 &&
        static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize > (6ull << 30)) {
      std::string templ = "/dev/shm/qseal-formats-large.XXXXXX";
      if (mkdtemp(templ.data()) != nullptr) path_ = templ;
    }
    if (path_.empty()) path_ = Hsm::Get().Sub("large");
    std::filesystem::create_directories(path_);
  }
  ~LargeDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// 1 GiB documents, streamed: generated on the fly into a temp file, hashed once, sealed with every
// key in both packagings.
class CadesHsmLargeTest : public ::testing::TestWithParam<Packaging> {};

TEST_P(CadesHsmLargeTest, OneGibDocument) {
  Hsm& hsm = Hsm::Get();
  LargeDir dir;
  const std::uint64_t size = 1ull << 30;
  std::string doc = dir.Sub("large.bin");
  ASSERT_TRUE(formats::testing::WritePseudoRandomFile(doc, size, 1234).ok());
  auto sha256sum = Sh("sha256sum " + ShellQuote(doc));
  ASSERT_EQ(sha256sum.exit_code, 0);
  for (const KeyKind& kind : {kRsaPkcs1, kRsaPss, kP256, kP384}) {
    SCOPED_TRACE(kind.name);
    std::string seal = doc + (GetParam() == Packaging::kDetached ? ".p7s" : ".p7m");
    Sealed s = SealFile(kind, doc, GetParam(), seal);
    EXPECT_EQ(HexEncode(s.content_digest), FirstField(sha256sum.output));
    auto v = OpensslVerify(s, hsm.ca_pem(), doc, doc + ".out");
    EXPECT_EQ(v.exit_code, 0) << v.output;
    if (GetParam() == Packaging::kEnveloping) {
      auto cmp = Sh("cmp " + ShellQuote(doc) + " " + ShellQuote(doc + ".out"));
      EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
    } else {
      CheckAttributesWithOpenssl(s, kind);
    }
    auto ours = OurVerify(s, hsm.ca_pem(), doc);
    ASSERT_TRUE(ours.ok()) << ours.status();
    EXPECT_TRUE(ours->ok) << Describe(*ours);
    std::remove(seal.c_str());
    std::remove((doc + ".out").c_str());
  }
  std::remove(doc.c_str());
}

INSTANTIATE_TEST_SUITE_P(Packagings, CadesHsmLargeTest,
                         ::testing::Values(Packaging::kDetached, Packaging::kEnveloping),
                         [](const ::testing::TestParamInfo<Packaging>& param_info) {
                           return std::string(param_info.param == Packaging::kDetached
                                                  ? "Detached"
                                                  : "Enveloping");
                         });

}  // namespace
}  // namespace qseal::formats::cades
