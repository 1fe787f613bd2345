#include "audit/detail/record.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/sha256.h"

namespace qseal::audit::detail {
namespace {

constexpr std::string_view kHashKey = ",\"hash\":\"";
constexpr char kHex[] = "0123456789abcdef";

// JSON string escaping. Bytes >= 0x80 are escaped too, so a line is always plain ASCII and valid
// JSON whatever bytes an error message carried (the writer never has to validate UTF-8).
void AppendEscaped(std::string& out, std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x80) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
}

std::optional<std::uint64_t> OptU64(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<std::uint64_t>();
}

std::string OptStr(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

LineBuilder::LineBuilder(std::uint64_t seq, std::string_view time, std::string_view event) {
  body_.reserve(384);
  body_ += "{\"seq\":";
  body_ += std::to_string(seq);
  Str("time", time);
  Str("event", event);
}

void LineBuilder::Str(std::string_view name, std::string_view value) {
  if (value.empty()) return;
  body_ += ",\"";
  body_ += name;
  body_ += "\":\"";
  AppendEscaped(body_, value);
  body_ += '"';
}

void LineBuilder::Num(std::string_view name, std::uint64_t value) {
  body_ += ",\"";
  body_ += name;
  body_ += "\":";
  body_ += std::to_string(value);
}

std::string LineBuilder::Finish(std::string_view prev_hex) {
  Str("prev", prev_hex);
  // The hash covers the record exactly as it would read without its own hash field.
  body_ += '}';
  hash_ = Sha256Hex(AsBytes(body_));
  body_.pop_back();
  body_ += kHashKey;
  body_ += hash_;
  body_ += "\"}\n";
  return std::move(body_);
}

Result<ParsedLine> ParseLine(std::string_view line) {
  std::size_t pos = line.rfind(kHashKey);
  if (pos == std::string_view::npos || line.size() != pos + kHashKey.size() + 64 + 2 ||
      line.substr(line.size() - 2) != "\"}") {
    return DataLossError("not a record: the line does not end with its hash");
  }
  ParsedLine p;
  p.hash = std::string(line.substr(pos + kHashKey.size(), 64));
  std::string body(line.substr(0, pos));
  body += '}';
  p.hash_ok = IsLowerHex(p.hash) && Sha256Hex(AsBytes(body)) == p.hash;
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return DataLossError("not a record: the line is not a JSON object");
  std::optional<std::uint64_t> seq = OptU64(j, "seq");
  p.event = OptStr(j, "event");
  p.prev = OptStr(j, "prev");
  if (!seq || p.event.empty() || p.prev.size() != 64) {
    return DataLossError("not a record: seq, event or prev missing");
  }
  p.seq = *seq;
  p.time = OptStr(j, "time");
  p.prev_seq = OptU64(j, "prev_seq");
  p.head_seq = OptU64(j, "head_seq");
  p.key_id = OptStr(j, "key_id");
  p.sig = OptStr(j, "sig");
  return p;
}

std::string CheckpointMessage(std::uint64_t seq, std::string_view time, std::uint64_t head_seq,
                              std::string_view head_hash) {
  std::string m = "qseal-audit-checkpoint/1\n";
  m += std::to_string(seq);
  m += '\n';
  m += time;
  m += '\n';
  m += std::to_string(head_seq);
  m += '\n';
  m += head_hash;
  m += '\n';
  return m;
}

std::string SegmentName(std::uint64_t first_seq) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "audit-%020llu.log", static_cast<unsigned long long>(first_seq));
  return buf;
}

std::optional<std::uint64_t> ParseSegmentName(std::string_view name) {
  constexpr std::string_view kPrefix = "audit-";
  constexpr std::string_view kSuffix = ".log";
  if (name.size() != kPrefix.size() + 20 + kSuffix.size()) return std::nullopt;
  if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  if (name.substr(name.size() - kSuffix.size()) != kSuffix) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : name.substr(kPrefix.size(), 20)) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

}  // namespace qseal::audit::detail
