// Small byte utilities shared by every component. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace qseal {

using Bytes = std::vector<std::uint8_t>;
using ByteSpan = std::span<const std::uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return ByteSpan(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}
inline std::string_view AsChars(ByteSpan b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

// Lower-case hex.
std::string HexEncode(ByteSpan bytes);
// Accepts upper or lower case; kInvalidArgument on odd length or a non-hex character.
Result<Bytes> HexDecode(std::string_view hex);

// Compares in time independent of where the inputs differ (for secrets such as token hashes).
bool ConstantTimeEquals(ByteSpan a, ByteSpan b);

}  // namespace qseal
