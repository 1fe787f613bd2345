#include "ingest/detail/names.h"

#include "publish/folder_names.h"

namespace qseal::ingest::detail {

std::string SanitizeClientName(std::string_view raw) {
  std::size_t slash = raw.find_last_of("/\\");
  if (slash != std::string_view::npos) raw.remove_prefix(slash + 1);
  std::string out;
  for (char c : raw) {
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
  }
  if (out == "." || out == "..") out.clear();
  if (out.size() > publish::kMaxClaimedNameBytes) out.resize(publish::kMaxClaimedNameBytes);
  return out;
}

}  // namespace qseal::ingest::detail
