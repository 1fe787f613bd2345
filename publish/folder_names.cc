#include "publish/folder_names.h"

namespace qseal::publish {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

bool IsIgnoredName(std::string_view name) {
  return name.empty() || name[0] == '.' || EndsWith(name, ".tmp");
}

bool IsSafeName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos && name.size() <= kMaxClaimedNameBytes + 12;
}

std::string ShortenedName(std::string_view name) {
  if (name.size() <= kMaxClaimedNameBytes) return std::string(name);
  std::string_view ext;
  std::size_t dot = name.rfind('.');
  if (dot != std::string_view::npos && dot > 0 && name.size() - dot <= 16) ext = name.substr(dot);
  std::size_t keep = kMaxClaimedNameBytes - ext.size();
  // Back off to a character boundary: a UTF-8 character has at most three continuation bytes.
  // In a name that is not UTF-8 there may be no boundary near; cut it where it is then (backing
  // off further could leave nothing, or only the extension: a dot-file nobody would see).
  std::size_t cut = keep;
  while (cut > 0 && keep - cut < 3 && IsContinuationByte(name[cut])) --cut;
  if (IsContinuationByte(name[cut])) cut = keep;
  // Without a kept extension the cut may end in ".tmp", which would make the claim invisible.
  if (ext.empty() && EndsWith(name.substr(0, cut), ".tmp")) --cut;
  return std::string(name.substr(0, cut)) + std::string(ext);
}

std::string SuffixedName(std::string_view full_name, int k) {
  std::string name = ShortenedName(full_name);
  if (k == 0) return name;
  std::size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0) return name + "-" + std::to_string(k);
  return name.substr(0, dot) + "-" + std::to_string(k) + name.substr(dot);
}

}  // namespace qseal::publish
