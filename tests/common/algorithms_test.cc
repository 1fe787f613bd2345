#include "common/algorithms.h"

#include <gtest/gtest.h>

namespace qseal {
namespace {

TEST(AlgorithmsTest, NamesRoundTrip) {
  for (auto d : {DigestAlgorithm::kSha256, DigestAlgorithm::kSha384, DigestAlgorithm::kSha512}) {
    EXPECT_EQ(ParseDigest(DigestName(d)), d);
  }
  for (auto s :
       {SignatureScheme::kRsaPkcs1v15, SignatureScheme::kRsaPss, SignatureScheme::kEcdsa}) {
    EXPECT_EQ(ParseScheme(SchemeName(s)), s);
  }
  EXPECT_EQ(DigestSize(DigestAlgorithm::kSha384), 48u);
}

TEST(AlgorithmsTest, WeakDigestsAreUnknown) {
  EXPECT_FALSE(ParseDigest("sha1").has_value());
  EXPECT_FALSE(ParseDigest("sha224").has_value());
  EXPECT_FALSE(ParseScheme("dsa").has_value());
}

}  // namespace
}  // namespace qseal
