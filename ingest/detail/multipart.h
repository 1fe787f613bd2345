// A streaming parser for the body of a multipart/mixed request (RFC 2046 §5.1), used by the batch
// endpoint: a batch of documents arrives as one body, each document one part with its own header
// fields. The parser never buffers a part's content: it hands it to the handler in pieces as it
// goes, keeping back only what could be the start of the next delimiter. Memory is bounded by the
// chunk fed plus MultipartLimits::max_part_header_bytes.
//
// Framing accepted: an optional preamble (bounded), "--boundary" lines followed by optional
// linear white space and CRLF, part header fields "Name: value" (no obsolete line folding) ended
// by an empty line, the part's bytes exactly as sent (the CRLF before the next delimiter belongs
// to the delimiter), and a closing "--boundary--"; the epilogue is ignored. Anything else is a
// framing error (kInvalidArgument), after which the parser accepts nothing more.
//
// Not thread-safe; owned by one request.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"

namespace qseal::ingest::detail {

// The boundary parameter of a "multipart/mixed" Content-Type (quoted or not; names
// case-insensitive). kInvalidArgument for another media type or a missing or invalid boundary
// (1..70 characters from RFC 2046's bchars, not ending in a space).
Result<std::string> MultipartBoundary(std::string_view content_type);

struct MultipartLimits {
  std::size_t max_parts = 1000;              // more parts: kResourceExhausted. Default: 1000
  std::size_t max_part_header_bytes = 8192;  // one part's header block. Default: 8 KiB
  std::size_t max_preamble_bytes = 4096;     // text before the first boundary. Default: 4 KiB
};

// The header fields of one part, in order; names as sent.
struct PartHeader {
  std::vector<std::pair<std::string, std::string>> fields;
  // The value of the first field named `name` (case-insensitive), or "" when absent.
  std::string_view Get(std::string_view name) const;
  // How many fields are named `name` (case-insensitive).
  std::size_t Count(std::string_view name) const;
};

// Receives the parts. A non-OK Status from any call stops the parser and is returned by Feed.
class MultipartHandler {
 public:
  virtual ~MultipartHandler() = default;
  virtual Status OnPartBegin(const PartHeader& header) = 0;
  virtual Status OnPartData(ByteSpan data) = 0;  // zero or more times per part
  virtual Status OnPartEnd() = 0;
};

class MultipartParser {
 public:
  // `handler` must outlive the parser.
  MultipartParser(std::string boundary, MultipartLimits limits, MultipartHandler* handler);

  // Parses the next piece of the body. kInvalidArgument on a framing error, kResourceExhausted
  // when a part beyond max_parts begins, or the handler's error; the first error sticks.
  Status Feed(ByteSpan chunk);
  // The body ended: OK only if the closing delimiter was seen (kInvalidArgument otherwise).
  Status Finish();

  std::size_t parts() const { return parts_; }
  bool done() const { return state_ == State::kDone; }

 private:
  enum class State { kPreamble, kAfterDelimiter, kHeader, kBody, kDone, kError };
  Status Step(bool* progressed);
  Status Fail(Status s);

  const std::string delimiter_;  // CRLF "--" boundary
  const MultipartLimits limits_;
  MultipartHandler* const handler_;
  State state_ = State::kPreamble;
  std::string buffer_;
  std::size_t preamble_bytes_ = 0;
  std::size_t parts_ = 0;
  Status error_;
};

}  // namespace qseal::ingest::detail
