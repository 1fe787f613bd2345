// Fuzzes the streaming multipart/mixed parser behind POST /v1/batches
// (ingest/detail/multipart.h). Besides crashes and sanitizer reports it checks that the outcome
// does not depend on how the body is cut into chunks: the whole body in one Feed and the same
// bytes fed in pieces (sizes taken from the input) give the same parts, the same header fields,
// the same bytes and the same status. It also checks the limits hold: never more parts than
// max_parts, and every part's header block within max_part_header_bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/detail/multipart.h"

namespace {

namespace mp = qseal::ingest::detail;

struct Outcome {
  std::vector<std::vector<std::pair<std::string, std::string>>> headers;
  std::vector<std::string> data;
  std::size_t ended = 0;
  bool ok = false;
  qseal::StatusCode code = qseal::StatusCode::kOk;
};

class Collector : public mp::MultipartHandler {
 public:
  explicit Collector(Outcome* out) : out_(out) {}
  qseal::Status OnPartBegin(const mp::PartHeader& header) override {
    std::size_t bytes = 0;
    for (const auto& [k, v] : header.fields) bytes += k.size() + v.size();
    if (bytes > kLimits.max_part_header_bytes) Die("part header over its limit");
    out_->headers.push_back(header.fields);
    out_->data.emplace_back();
    return qseal::Status::Ok();
  }
  qseal::Status OnPartData(qseal::ByteSpan data) override {
    if (out_->data.empty()) Die("data before a part began");
    out_->data.back().append(qseal::AsChars(data));
    return qseal::Status::Ok();
  }
  qseal::Status OnPartEnd() override {
    ++out_->ended;
    return qseal::Status::Ok();
  }

  static void Die(const char* what) {
    std::fprintf(stderr, "multipart_fuzzer: %s\n", what);
    std::abort();
  }
  static inline const mp::MultipartLimits kLimits = [] {
    mp::MultipartLimits l;
    l.max_parts = 16;
    l.max_part_header_bytes = 512;
    l.max_preamble_bytes = 256;
    return l;
  }();

 private:
  Outcome* out_;
};

Outcome Parse(std::string_view body, const std::vector<std::size_t>& steps) {
  Outcome out;
  Collector c(&out);
  mp::MultipartParser parser("fz", Collector::kLimits, &c);
  qseal::Status s;
  std::size_t at = 0;
  std::size_t k = 0;
  while (s.ok() && at < body.size()) {
    std::size_t n = steps.empty() ? body.size() : steps[k++ % steps.size()];
    n = std::min(n, body.size() - at);
    s = parser.Feed(qseal::AsBytes(body.substr(at, n)));
    at += n;
  }
  if (s.ok()) s = parser.Finish();
  out.ok = s.ok();
  out.code = s.code();
  if (parser.parts() > Collector::kLimits.max_parts) Collector::Die("more parts than max_parts");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // The first byte picks the chunk sizes (1..16, cycling), the rest is the body.
  std::vector<std::size_t> steps;
  for (std::size_t i = 0; i < 4; ++i) steps.push_back(((data[0] >> i) & 0x0f) % 16 + 1 + i);
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  Outcome whole = Parse(body, {});
  Outcome pieces = Parse(body, steps);
  if (whole.ok != pieces.ok || whole.code != pieces.code)
    Collector::Die("status depends on chunks");
  if (whole.ok) {
    if (whole.headers != pieces.headers) Collector::Die("headers depend on chunking");
    if (whole.data != pieces.data) Collector::Die("part bytes depend on chunking");
    if (whole.ended != whole.data.size()) Collector::Die("a part of a good body did not end");
  }
  return 0;
}
