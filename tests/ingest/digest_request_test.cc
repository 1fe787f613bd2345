#include "ingest/detail/digest_request.h"

#include <gtest/gtest.h>

namespace qseal::ingest::detail {
namespace {

TEST(DigestRequestTest, Base64IsStrictRfc4648) {
  EXPECT_EQ(*Base64Decode(""), Bytes());
  EXPECT_EQ(*Base64Decode("Zg=="), (Bytes{'f'}));
  EXPECT_EQ(*Base64Decode("Zm8="), (Bytes{'f', 'o'}));
  EXPECT_EQ(*Base64Decode("Zm9v"), (Bytes{'f', 'o', 'o'}));
  EXPECT_EQ(*Base64Decode("+/+/"), (Bytes{0xfb, 0xff, 0xbf}));
  for (const char* bad : {"Zg", "Zg=", "Zg===", "Z===", "Zh==", "Zm9=", "Zm 9v", "Zm9v\n",
                          "Zg==Zg==", "Zm-_", "=Zg="}) {
    EXPECT_FALSE(Base64Decode(bad).has_value()) << bad;
  }
}

TEST(DigestRequestTest, AlgorithmNamesInEitherSpelling) {
  EXPECT_EQ(ParseClientDigestName("sha256"), DigestAlgorithm::kSha256);
  EXPECT_EQ(ParseClientDigestName("SHA-256"), DigestAlgorithm::kSha256);
  EXPECT_EQ(ParseClientDigestName("Sha-384"), DigestAlgorithm::kSha384);
  EXPECT_EQ(ParseClientDigestName("SHA512"), DigestAlgorithm::kSha512);
  for (const char* bad : {"sha1", "SHA-1", "sha224", "md5", "", "sha--256", "sha-256 "}) {
    EXPECT_FALSE(ParseClientDigestName(bad).has_value()) << bad;
  }
}

TEST(DigestRequestTest, ParsesAGoodBody) {
  auto r =
      ParseDigestRequest(R"({"algorithm":"SHA-384","digest_hex":")" + std::string(96, 'A') +
                         R"(","profile":"p","filename":"a.pdf","media_type":"application/pdf"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->algorithm, DigestAlgorithm::kSha384);
  EXPECT_EQ(r->digest, Bytes(48, 0xaa));
  EXPECT_EQ(r->profile, "p");
  EXPECT_EQ(r->filename, "a.pdf");
  EXPECT_EQ(r->media_type, "application/pdf");
  auto no_profile =
      ParseDigestRequest(R"({"algorithm":"sha256","digest":")" + std::string(43, 'A') + R"(="})");
  ASSERT_TRUE(no_profile.ok()) << no_profile.status();
  EXPECT_FALSE(no_profile->profile.has_value());
  EXPECT_EQ(no_profile->digest, Bytes(32, 0));
}

TEST(DigestRequestTest, NotJsonIsInvalidArgumentAndBadFieldsFailedPrecondition) {
  for (const char* body : {"", "nope", "[]", "\"x\"", "{"}) {
    EXPECT_EQ(ParseDigestRequest(body).status().code(), StatusCode::kInvalidArgument) << body;
  }
  const std::string hex64(64, 'a');
  for (const std::string& body :
       {std::string(R"({"digest_hex":")") + hex64 + "\"}", std::string(R"({"algorithm":"sha256"})"),
        std::string(R"({"algorithm":"sha256","digest_hex":")") + hex64.substr(2) + "\"}",
        std::string(R"({"algorithm":"sha512","digest_hex":")") + hex64 + "\"}",
        std::string(R"({"algorithm":"sha256","digest_hex":"xyz"})"),
        std::string(R"({"algorithm":"sha256","digest":"***"})"),
        std::string(R"({"algorithm":"sha256","digest_hex":")") + hex64 + R"(","digest":"AAAA"})",
        std::string(R"({"algorithm":1,"digest_hex":")") + hex64 + "\"}",
        std::string(R"({"algorithm":"sha256","digest_hex":")") + hex64 + R"(","profile":7})"}) {
    EXPECT_EQ(ParseDigestRequest(body).status().code(), StatusCode::kFailedPrecondition) << body;
  }
}

}  // namespace
}  // namespace qseal::ingest::detail
