#include "common/sha256.h"

#include <string>

#include <gtest/gtest.h>

namespace qseal {
namespace {

// FIPS 180-2 test vectors ("abc").
constexpr char kAbcSha256[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kAbcSha384Prefix[] = "cb00753f45a35e8bb5a03d699ac65007";

TEST(HasherTest, StreamingEqualsOneShotAndKnownVector) {
  Hasher h;
  ASSERT_TRUE(h.Update(AsBytes("a")).ok());
  ASSERT_TRUE(h.Update(AsBytes("")).ok());
  ASSERT_TRUE(h.Update(AsBytes("bc")).ok());
  Result<std::string> hex = h.FinalHex();
  ASSERT_TRUE(hex.ok());
  EXPECT_EQ(*hex, kAbcSha256);
  EXPECT_EQ(Sha256Hex(AsBytes("abc")), kAbcSha256);
}

TEST(HasherTest, OtherDigestsHaveTheirSize) {
  Result<Bytes> d384 = Digest(DigestAlgorithm::kSha384, AsBytes("abc"));
  ASSERT_TRUE(d384.ok());
  EXPECT_EQ(d384->size(), 48u);
  EXPECT_EQ(HexEncode(*d384).substr(0, 32), kAbcSha384Prefix);
  Result<Bytes> d512 = Digest(DigestAlgorithm::kSha512, AsBytes("abc"));
  ASSERT_TRUE(d512.ok());
  EXPECT_EQ(d512->size(), 64u);
}

TEST(HasherTest, FinalTwiceFailsInsteadOfReturningGarbage) {
  Hasher h;
  ASSERT_TRUE(h.Final().ok());
  EXPECT_EQ(h.Final().status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(h.Update(AsBytes("x")).ok());
}

}  // namespace
}  // namespace qseal
