// Unit tests of the HTTP server's request helpers: URL decoding, query parsing and the answers
// built for every route (no sockets).
#include "ingest/detail/http_server.h"

#include <string>

#include <gtest/gtest.h>

namespace qseal::ingest::detail {
namespace {

TEST(UrlDecodeTest, DecodesEscapesAndPlus) {
  EXPECT_EQ(UrlDecode("a%20b+c"), "a b c");
  EXPECT_EQ(UrlDecode("%41%62%7e%7E"), "Ab~~");
  EXPECT_EQ(UrlDecode("caf%C3%A9"), "caf\xC3\xA9");
  EXPECT_EQ(UrlDecode("%2B"), "+");
  EXPECT_EQ(UrlDecode(""), "");
}

TEST(UrlDecodeTest, KeepsMalformedEscapes) {
  EXPECT_EQ(UrlDecode("100%"), "100%");
  EXPECT_EQ(UrlDecode("%4"), "%4");
  EXPECT_EQ(UrlDecode("%zz"), "%zz");
  EXPECT_EQ(UrlDecode("%4g1"), "%4g1");
  EXPECT_EQ(UrlDecode("%%41"), "%A");
}

TEST(UrlDecodeTest, DecodesNulAndSlash) {
  // Decoded bytes are data, not syntax: callers get them as they are.
  EXPECT_EQ(UrlDecode("a%00b"), std::string("a\0b", 3));
  EXPECT_EQ(UrlDecode("..%2F..%2fx"), "../../x");
}

TEST(ParseQueryTest, SplitsAndDecodes) {
  Query q = ParseQuery("profile=my+profile&wait=2.5&x%3Dy=a%26b");
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q.at("profile"), "my profile");
  EXPECT_EQ(q.at("wait"), "2.5");
  EXPECT_EQ(q.at("x=y"), "a&b");
}

TEST(ParseQueryTest, EdgeCases) {
  EXPECT_TRUE(ParseQuery("").empty());
  EXPECT_TRUE(ParseQuery("&&").empty());
  EXPECT_TRUE(ParseQuery("=orphan").empty());  // an empty name is dropped
  Query q = ParseQuery("flag&a=1&a=2&b=&c=x=y");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q.at("flag"), "");  // no '=': empty value
  EXPECT_EQ(q.at("a"), "2");    // the last one wins
  EXPECT_EQ(q.at("b"), "");
  EXPECT_EQ(q.at("c"), "x=y");  // only the first '=' separates
}

TEST(HttpAnswerTest, RetryLaterCarriesRetryAfterAndProblem) {
  RequestHeader req;
  req.version(11);
  HttpResponse res = MakeRetryLater(http::status::service_unavailable, req, "the queue is full", 7);
  EXPECT_EQ(res.result(), http::status::service_unavailable);
  EXPECT_EQ(res[http::field::retry_after], "7");
  EXPECT_EQ(res[http::field::content_type], "application/problem+json");
  EXPECT_NE(res.body().find("\"detail\":\"the queue is full\""), std::string::npos);
  EXPECT_NE(res.body().find("\"status\":503"), std::string::npos);
}

TEST(NamesOtherHttpVersionTest, TellsAnotherVersionFromAGarbledOne) {
  EXPECT_TRUE(NamesOtherHttpVersion("GET / HTTP/2.0\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(NamesOtherHttpVersion("POST /v1/documents?profile=a HTTP/0.1\r\n\r\n"));
  EXPECT_FALSE(NamesOtherHttpVersion("GET / HTTQ/1.1\r\n\r\n"));
  EXPECT_FALSE(NamesOtherHttpVersion("GET / HTTP/1\r\n\r\n"));
  EXPECT_FALSE(NamesOtherHttpVersion("GET / HTTP/x.1\r\n\r\n"));
  EXPECT_FALSE(NamesOtherHttpVersion("GET / HTTP/2.0"));  // no end of line yet
  EXPECT_FALSE(NamesOtherHttpVersion(""));
}

TEST(HttpAnswerTest, AnswerSetsOnlyTheResponse) {
  RequestHeader req;
  Decision d = Answer(MakeProblem(http::status::not_found, req, "no such resource"));
  ASSERT_TRUE(d.response.has_value());
  EXPECT_EQ(d.response->result(), http::status::not_found);
  EXPECT_EQ(d.sink, nullptr);
  EXPECT_FALSE(d.deferred);
}

}  // namespace
}  // namespace qseal::ingest::detail
