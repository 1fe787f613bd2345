// Unit tests of the API's JSON bodies (DESIGN.md §5, contract): the status object and the
// problem objects inside batch answers.
#include "ingest/detail/json_bodies.h"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

namespace qseal::ingest::detail {
namespace {

queue::Record SampleRecord(queue::State state) {
  queue::Record r;
  std::uint8_t bytes[queue::DocumentId::kSize] = {0x01, 0x8f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a};
  r.id = queue::DocumentId::FromBytes(ByteSpan(bytes, sizeof(bytes)));
  r.profile = "default";
  r.client = "alice";
  r.sha256_hex = std::string(64, 'a');
  r.size = 1234;
  r.state = state;
  r.attempts = 2;
  r.created_at = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  r.sealed_at = r.created_at + std::chrono::seconds(3);
  return r;
}

TEST(JsonBodiesTest, ApiStateNamesAndFinality) {
  EXPECT_EQ(ApiState(queue::State::kQueued), "queued");
  EXPECT_EQ(ApiState(queue::State::kLeased), "sealing");
  EXPECT_EQ(ApiState(queue::State::kSealed), "sealed");
  EXPECT_EQ(ApiState(queue::State::kFailed), "failed");
  EXPECT_FALSE(IsFinal(queue::State::kQueued));
  EXPECT_FALSE(IsFinal(queue::State::kLeased));
  EXPECT_TRUE(IsFinal(queue::State::kSealed));
  EXPECT_TRUE(IsFinal(queue::State::kFailed));
}

TEST(JsonBodiesTest, StatusOfASealedDocument) {
  queue::Record r = SampleRecord(queue::State::kSealed);
  r.name = "invoice.pdf";
  nlohmann::ordered_json j = StatusJson(r);
  EXPECT_EQ(j["id"], r.id.ToString());
  EXPECT_EQ(j["status"], "sealed");
  EXPECT_EQ(j["profile"], "default");
  EXPECT_EQ(j["sha256"], r.sha256_hex);
  EXPECT_EQ(j["size"], 1234);
  EXPECT_EQ(j["name"], "invoice.pdf");
  EXPECT_EQ(j["created_at"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(j["sealed_at"], "2023-11-14T22:13:23.000Z");
  EXPECT_EQ(j["attempts"], 2);
  EXPECT_FALSE(j.contains("error"));
  EXPECT_FALSE(j.contains("last_error"));
  EXPECT_FALSE(j.contains("client"));  // who submitted is not part of the answer
  // The contract's field order.
  std::string keys;
  for (const auto& [k, v] : j.items()) keys += k + ",";
  EXPECT_EQ(keys, "id,status,profile,sha256,size,name,created_at,sealed_at,attempts,");
}

TEST(JsonBodiesTest, FailedCarriesErrorRetriedCarriesLastError) {
  queue::Record failed = SampleRecord(queue::State::kFailed);
  failed.error_code = "INVALID_ARGUMENT";
  failed.error_message = "not a PDF";
  nlohmann::ordered_json f = StatusJson(failed);
  EXPECT_EQ(f["status"], "failed");
  EXPECT_EQ(f["error"]["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(f["error"]["message"], "not a PDF");
  EXPECT_FALSE(f.contains("last_error"));
  EXPECT_FALSE(f.contains("sealed_at"));
  EXPECT_FALSE(f.contains("name"));

  queue::Record retried = SampleRecord(queue::State::kQueued);
  retried.error_code = "UNAVAILABLE";
  retried.error_message = "HSM down";
  nlohmann::ordered_json q = StatusJson(retried);
  EXPECT_EQ(q["status"], "queued");
  EXPECT_EQ(q["last_error"]["code"], "UNAVAILABLE");
  EXPECT_FALSE(q.contains("error"));
}

TEST(JsonBodiesTest, ProblemObject) {
  nlohmann::ordered_json p = ProblemJson(boost::beast::http::status::payload_too_large, "too big");
  EXPECT_EQ(Dump(p), "{\"status\":413,\"title\":\"Payload Too Large\",\"detail\":\"too big\"}\n");
}

TEST(JsonBodiesTest, DumpReplacesInvalidUtf8InsteadOfThrowing) {
  nlohmann::ordered_json j;
  j["name"] = std::string(
      "a\xff"
      "b");
  std::string text;
  ASSERT_NO_THROW(text = Dump(j));
  EXPECT_EQ(text,
            "{\"name\":\"a\xEF\xBF\xBD"
            "b\"}\n");
}

}  // namespace
}  // namespace qseal::ingest::detail
