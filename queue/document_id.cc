#include <cstring>

#include "queue/queue.h"

namespace qseal::queue {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int DecodeChar(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  if (c == 'I' || c == 'L') return 1;
  if (c == 'O') return 0;
  for (int i = 0; i < 32; ++i) {
    if (kAlphabet[i] == c) return i;
  }
  return -1;
}

// Bit `index` (0 = most significant) of the 16 id bytes.
int GetBit(const std::uint8_t* bytes, int index) {
  return (bytes[index / 8] >> (7 - index % 8)) & 1;
}
void SetBit(std::uint8_t* bytes, int index) {
  bytes[index / 8] = static_cast<std::uint8_t>(bytes[index / 8] | (1U << (7 - index % 8)));
}

}  // namespace

std::string_view StateName(State state) {
  switch (state) {
    case State::kQueued:
      return "queued";
    case State::kLeased:
      return "leased";
    case State::kSealed:
      return "sealed";
    case State::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string_view SourceName(Source source) {
  switch (source) {
    case Source::kApi:
      return "api";
    case Source::kWatch:
      return "watch";
    case Source::kBroker:
      return "broker";
  }
  return "unknown";
}

DocumentId DocumentId::FromBytes(ByteSpan sixteen_bytes) {
  DocumentId id;
  if (sixteen_bytes.size() == kSize) std::memcpy(id.bytes_, sixteen_bytes.data(), kSize);
  return id;
}

// 26 base32 characters carry 130 bits: the first character's top two bits are always zero.
std::string DocumentId::ToString() const {
  std::string out(kStringSize, '0');
  for (int c = 0; c < static_cast<int>(kStringSize); ++c) {
    int v = 0;
    for (int k = 0; k < 5; ++k) {
      int bit = c * 5 + k - 2;
      v = (v << 1) | (bit >= 0 ? GetBit(bytes_, bit) : 0);
    }
    out[static_cast<std::size_t>(c)] = kAlphabet[v];
  }
  return out;
}

Result<DocumentId> DocumentId::Parse(std::string_view text) {
  if (text.size() != kStringSize) {
    return InvalidArgumentError("document id must be 26 base32 characters, got " +
                                std::to_string(text.size()));
  }
  DocumentId id;
  for (int c = 0; c < static_cast<int>(kStringSize); ++c) {
    int v = DecodeChar(text[static_cast<std::size_t>(c)]);
    if (v < 0) return InvalidArgumentError("document id has a character outside base32");
    if (c == 0 && v > 7) return InvalidArgumentError("document id out of range");
    for (int k = 0; k < 5; ++k) {
      int bit = c * 5 + k - 2;
      if (bit >= 0 && ((v >> (4 - k)) & 1) != 0) SetBit(id.bytes_, bit);
    }
  }
  return id;
}

bool DocumentId::IsZero() const {
  for (std::uint8_t b : bytes_) {
    if (b != 0) return false;
  }
  return true;
}

std::chrono::system_clock::time_point DocumentId::Time() const {
  std::uint64_t ms = 0;
  for (int i = 0; i < 6; ++i) ms = (ms << 8) | bytes_[i];
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::milliseconds(static_cast<std::int64_t>(ms))));
}

}  // namespace qseal::queue
