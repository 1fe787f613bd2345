#include "common/bytes.h"

#include <gtest/gtest.h>

namespace qseal {
namespace {

TEST(BytesTest, HexRoundTrip) {
  Bytes b = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(HexEncode(b), "0001abff");
  Result<Bytes> back = HexDecode("0001ABff");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, b);
}

TEST(BytesTest, HexDecodeRejectsBadInput) {
  EXPECT_EQ(HexDecode("abc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HexDecode("zz").status().code(), StatusCode::kInvalidArgument);
}

TEST(BytesTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals(AsBytes("secret"), AsBytes("secret")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("secret"), AsBytes("secreT")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("secret"), AsBytes("secrets")));
  EXPECT_TRUE(ConstantTimeEquals(AsBytes(""), AsBytes("")));
}

}  // namespace
}  // namespace qseal
