#include <algorithm>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "queue/queue.h"

namespace qseal::queue {
namespace {

TEST(DocumentIdTest, StringRoundTrips) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 1000; ++i) {
    Bytes b(16);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    DocumentId id = DocumentId::FromBytes(b);
    std::string s = id.ToString();
    ASSERT_EQ(s.size(), DocumentId::kStringSize);
    auto parsed = DocumentId::Parse(s);
    ASSERT_TRUE(parsed.ok()) << s;
    EXPECT_EQ(*parsed, id) << s;
  }
}

TEST(DocumentIdTest, KnownEncodings) {
  EXPECT_EQ(DocumentId().ToString(), "00000000000000000000000000");
  Bytes ones(16, 0xFF);
  EXPECT_EQ(DocumentId::FromBytes(ones).ToString(), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
  Bytes last(16, 0);
  last[15] = 1;
  EXPECT_EQ(DocumentId::FromBytes(last).ToString(), "00000000000000000000000001");
}

TEST(DocumentIdTest, StringOrderMatchesByteOrder) {
  std::mt19937_64 rng(99);
  std::vector<DocumentId> ids;
  for (int i = 0; i < 500; ++i) {
    Bytes b(16);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng() % 4);  // many shared prefixes
    ids.push_back(DocumentId::FromBytes(b));
  }
  std::sort(ids.begin(), ids.end());
  for (std::size_t i = 1; i < ids.size(); ++i) {
    EXPECT_LE(ids[i - 1].ToString(), ids[i].ToString());
  }
}

TEST(DocumentIdTest, ParseAcceptsLowerCaseAndAmbiguousLetters) {
  auto a = DocumentId::Parse("01arz3ndektsv4rrffq69g5fav");
  auto b = DocumentId::Parse("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  auto c = DocumentId::Parse("0LARZ3NDEKTSV4RRFFQ69G5FAV");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, *b);
}

TEST(DocumentIdTest, ParseRejectsBadInput) {
  EXPECT_EQ(DocumentId::Parse("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DocumentId::Parse("01ARZ3NDEKTSV4RRFFQ69G5FA").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DocumentId::Parse("01ARZ3NDEKTSV4RRFFQ69G5FAU").status().code(),
            StatusCode::kInvalidArgument);  // U is not in Crockford's alphabet
  EXPECT_EQ(DocumentId::Parse("81ARZ3NDEKTSV4RRFFQ69G5FAV").status().code(),
            StatusCode::kInvalidArgument);  // above 2^128
  EXPECT_EQ(DocumentId::Parse("01ARZ3NDEKTSV4RRFFQ69G5F/V").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(DocumentIdTest, TimeIsTheLeading48Bits) {
  Bytes b(16, 0);
  std::uint64_t ms = 1'700'000'000'123;
  for (int i = 0; i < 6; ++i)
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  auto t = DocumentId::FromBytes(b).Time();
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count(),
            1'700'000'000'123);
}

TEST(DocumentIdTest, NamesAreStable) {
  EXPECT_EQ(StateName(State::kQueued), "queued");
  EXPECT_EQ(StateName(State::kLeased), "leased");
  EXPECT_EQ(StateName(State::kSealed), "sealed");
  EXPECT_EQ(StateName(State::kFailed), "failed");
  EXPECT_EQ(SourceName(Source::kApi), "api");
  EXPECT_EQ(SourceName(Source::kWatch), "watch");
  EXPECT_EQ(SourceName(Source::kBroker), "broker");
}

}  // namespace
}  // namespace qseal::queue
