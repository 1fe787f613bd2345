// The line format of audit records (docs/audit.md): building a line with its chain hash, and
// taking one apart again for the verifier. Shared by the writer and the verifier so both agree
// byte for byte. Not a public interface.
//
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace qseal::audit::detail {

inline constexpr std::string_view kZeroHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Builds one record line ("{...}\n"). Start with Begin(seq, time, event), add fields, then
// Finish(prev) which appends prev and the hash; hash() is valid after Finish.
class LineBuilder {
 public:
  LineBuilder(std::uint64_t seq, std::string_view time, std::string_view event);
  // Adds "name":"value" (escaped); skipped when value is empty.
  void Str(std::string_view name, std::string_view value);
  void Num(std::string_view name, std::uint64_t value);
  // Appends "prev", computes the hash and returns the complete line, newline included.
  std::string Finish(std::string_view prev_hex);
  const std::string& hash() const { return hash_; }

 private:
  std::string body_;
  std::string hash_;
};

// One record line as read back. `hash_ok` is false when the stored hash does not match the line's
// bytes. Fields not present are empty / nullopt.
struct ParsedLine {
  std::uint64_t seq = 0;
  std::string event;
  std::string time;
  std::string prev;
  std::string hash;
  bool hash_ok = false;
  // segment_start
  std::optional<std::uint64_t> prev_seq;
  // checkpoint
  std::optional<std::uint64_t> head_seq;
  std::string key_id;
  std::string sig;
};

// Parses a line without its newline. kDataLoss when it is not a record (not JSON, missing seq,
// event, prev or hash, hash not at the end).
Result<ParsedLine> ParseLine(std::string_view line);

// The bytes a checkpoint signature covers.
std::string CheckpointMessage(std::uint64_t seq, std::string_view time, std::uint64_t head_seq,
                              std::string_view head_hash);

// "audit-00000000000000000042.log" for 42; ParseSegmentName is its inverse (nullopt otherwise).
std::string SegmentName(std::uint64_t first_seq);
std::optional<std::uint64_t> ParseSegmentName(std::string_view name);

}  // namespace qseal::audit::detail
