// Unit tests of the streaming multipart/mixed parser behind POST /v1/batches.
#include "ingest/detail/multipart.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace qseal::ingest::detail {
namespace {

struct Part {
  PartHeader header;
  std::string data;
  bool ended = false;
};

class Collector : public MultipartHandler {
 public:
  Status OnPartBegin(const PartHeader& header) override {
    parts.push_back({header, "", false});
    return Status::Ok();
  }
  Status OnPartData(ByteSpan data) override {
    parts.back().data.append(AsChars(data));
    return Status::Ok();
  }
  Status OnPartEnd() override {
    parts.back().ended = true;
    return Status::Ok();
  }
  std::vector<Part> parts;
};

// Feeds `body` in pieces of `step` bytes; returns the first error or Finish's status.
Status ParseInSteps(const std::string& body, std::size_t step, Collector& out,
                    MultipartLimits limits = {}) {
  MultipartParser parser("b0undary", limits, &out);
  for (std::size_t i = 0; i < body.size(); i += step) {
    QSEAL_RETURN_IF_ERROR(parser.Feed(AsBytes(std::string_view(body).substr(i, step))));
  }
  return parser.Finish();
}

const std::string kBody =
    "preamble to ignore\r\n"
    "--b0undary\r\n"
    "Content-Type: application/pdf\r\n"
    "Idempotency-Key: k-1\r\n"
    "X-Filename: a.pdf\r\n"
    "\r\n"
    "first\r\n--b0undar not a delimiter\r\n\r\n"
    "\r\n--b0undary  \t\r\n"
    "\r\n"
    "second, no header"
    "\r\n--b0undary\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "\r\n--b0undary--\r\nepilogue\r\n--b0undary\r\n";

TEST(MultipartParserTest, ParsesPartsWithTheSameResultWhateverTheChunking) {
  for (std::size_t step : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7},
                           std::size_t{13}, kBody.size()}) {
    Collector c;
    Status s = ParseInSteps(kBody, step, c);
    ASSERT_TRUE(s.ok()) << "step " << step << ": " << s;
    ASSERT_EQ(c.parts.size(), 3u) << "step " << step;
    EXPECT_EQ(c.parts[0].header.Get("content-type"), "application/pdf");
    EXPECT_EQ(c.parts[0].header.Get("IDEMPOTENCY-KEY"), "k-1");
    EXPECT_EQ(c.parts[0].header.Get("X-Filename"), "a.pdf");
    EXPECT_EQ(c.parts[0].data, "first\r\n--b0undar not a delimiter\r\n\r\n");
    EXPECT_TRUE(c.parts[1].header.fields.empty());
    EXPECT_EQ(c.parts[1].data, "second, no header");
    EXPECT_EQ(c.parts[2].header.Get("Content-Type"), "text/plain");
    EXPECT_EQ(c.parts[2].data, "");
    for (const auto& p : c.parts) EXPECT_TRUE(p.ended);
  }
}

TEST(MultipartParserTest, RejectsBrokenFraming) {
  const std::vector<std::string> bad = {
      "",                                                        // no boundary at all
      "--b0undary\r\n\r\nbody never closed",                     // truncated
      "--b0undary\r\n\r\nbody\r\n--b0undary",                    // delimiter without its line end
      "--b0undaryX\r\n\r\nbody\r\n--b0undary--",                 // another boundary
      "--b0undary\r\nNo colon here\r\n\r\nx\r\n--b0undary--",    // malformed header field
      "--b0undary\r\nA: b\r\n folded\r\n\r\nx\r\n--b0undary--",  // obsolete line folding
      "--b0undary\r\nA: b\x01\r\n\r\nx\r\n--b0undary--",         // control character
      std::string(5000, 'p') + "\r\n--b0undary\r\n\r\nx\r\n--b0undary--",  // preamble too long
  };
  for (const std::string& body : bad) {
    Collector c;
    Status s = ParseInSteps(body, 5, c);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << body.substr(0, 60);
  }
}

TEST(MultipartParserTest, BoundsPartCountAndHeaderSize) {
  std::string body;
  for (int i = 0; i < 4; ++i) body += "--b0undary\r\n\r\nx\r\n";
  body += "--b0undary--";
  MultipartLimits limits;
  limits.max_parts = 3;
  Collector c;
  MultipartParser parser("b0undary", limits, &c);
  EXPECT_EQ(parser.Feed(AsBytes(body)).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(c.parts.size(), 3u);
  EXPECT_EQ(parser.parts(), 3u);  // the refused part is not counted (checked by the fuzzer)

  limits.max_parts = 10;
  limits.max_part_header_bytes = 64;
  Collector h;
  std::string big = "--b0undary\r\nX: " + std::string(100, 'v') + "\r\n\r\nx\r\n--b0undary--";
  EXPECT_EQ(ParseInSteps(big, 7, h, limits).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(h.parts.empty());
}

TEST(MultipartParserTest, AnErrorSticks) {
  Collector c;
  MultipartParser parser("b0undary", {}, &c);
  EXPECT_FALSE(parser.Feed(AsBytes("--b0undary\r\nbad header\r\n\r\n")).ok());
  EXPECT_FALSE(parser.Feed(AsBytes("\r\n--b0undary--")).ok());
  EXPECT_FALSE(parser.Finish().ok());
}

TEST(MultipartBoundaryTest, AcceptsOnlyMultipartMixedWithAValidBoundary) {
  EXPECT_EQ(*MultipartBoundary("multipart/mixed; boundary=abc"), "abc");
  EXPECT_EQ(*MultipartBoundary("Multipart/Mixed;charset=x; BOUNDARY=\"a b:c\""), "a b:c");
  EXPECT_EQ(*MultipartBoundary("multipart/mixed; boundary=\"q\\z\"; x=y"), "qz");
  EXPECT_FALSE(MultipartBoundary("multipart/mixed; boundary=\"q\\\"\"").ok());  // '"'
  EXPECT_FALSE(MultipartBoundary("multipart/mixed; boundary=\"q\" junk").ok());
  for (const char* bad :
       {"multipart/form-data; boundary=abc", "multipart/mixed",
        "multipart/mixed; boundary=", "multipart/mixed; boundary=\"abc",
        "multipart/mixed; boundary=\"abc \"", "multipart/mixed; boundary=a;boundary=b",
        "application/json", "multipart/mixed; boundary=abc\x01"}) {
    EXPECT_FALSE(MultipartBoundary(bad).ok()) << bad;
  }
  EXPECT_FALSE(MultipartBoundary("multipart/mixed; boundary=" + std::string(71, 'a')).ok());
  EXPECT_TRUE(MultipartBoundary("multipart/mixed; boundary=" + std::string(70, 'a')).ok());
}

}  // namespace
}  // namespace qseal::ingest::detail
