// Small pieces every formats::Format implementation shares: the read buffer for a Content and the
// file-name rule of Format::OutputName. Pure; thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "formats/format.h"

namespace qseal::formats::detail {

// One buffer per document, never larger than the document (a small file needs no 256 KiB) and
// never empty.
inline std::size_t ReadBufferSize(const Content& content) {
  return static_cast<std::size_t>(
      std::min<std::uint64_t>(std::max<std::size_t>(content.read_chunk_bytes, 1),
                              std::max<std::uint64_t>(content.size, 1)));
}

// A document name usable as a file name (format.h: never a path, never hidden): the name itself,
// or "document" when it is empty, contains '/' or starts with '.'.
inline std::string SafeFileName(std::string_view document_name) {
  if (document_name.empty() || document_name.front() == '.' ||
      document_name.find('/') != std::string_view::npos) {
    return "document";
  }
  return std::string(document_name);
}

}  // namespace qseal::formats::detail
