// Fuzzes the name sanitisers of the two doors (ingest/detail/names.h for the API's X-Filename,
// publish/folder_names.h for the watched folder's claimed names) and checks the guarantees
// the watched folder relies on: any directory entry name (1..255 bytes, no '/', no NUL) that is not
// ignored gives claimed names that are safe path components, visible (not a dot-file, not *.tmp),
// short enough for "<name>.error.json" within NAME_MAX, distinct per suffix, and valid UTF-8 when
// the entry's name was. The API's X-Filename sanitiser never lets a separator or control byte by.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ingest/detail/names.h"
#include "publish/folder_names.h"

namespace {

namespace api = qseal::ingest::detail;
namespace names = qseal::publish;

void Check(bool ok, const char* what, std::string_view input) {
  if (!ok) {
    std::fprintf(stderr, "names_fuzzer: %s (input of %zu bytes)\n", what, input.size());
    std::abort();
  }
}

bool ValidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

// Input: one byte choosing the suffix number, then the name.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int k = data[0];
  std::string_view name(reinterpret_cast<const char*>(data + 1), size - 1);

  std::string client = api::SanitizeClientName(name);
  Check(client.size() <= names::kMaxClaimedNameBytes, "X-Filename too long", name);
  Check(client != "." && client != "..", "X-Filename is a dot entry", name);
  for (char c : client) {
    auto u = static_cast<unsigned char>(c);
    Check(c != '/' && c != '\\' && u >= 0x20 && u != 0x7f, "X-Filename keeps a bad byte", name);
  }

  const bool entry = !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
                     name.find('/') == std::string_view::npos &&
                     name.find('\0') == std::string_view::npos;
  if (!entry || names::IsIgnoredName(name)) return 0;
  std::string shortened = names::ShortenedName(name);
  Check(!shortened.empty() && shortened.size() <= names::kMaxClaimedNameBytes,
        "shortened name empty or too long", name);
  for (int suffix : {0, k, k + 1, 100000}) {
    std::string claimed = names::SuffixedName(name, suffix);
    Check(names::IsSafeName(claimed), "claimed name not safe", name);
    Check(!names::IsIgnoredName(claimed), "claimed name would be ignored (dot-file or .tmp)", name);
    Check((claimed + ".error.json").size() <= 255, "claimed name leaves no room for .error.json",
          name);
    if (ValidUtf8(name)) Check(ValidUtf8(claimed), "claimed name is not UTF-8 any more", name);
  }
  Check(names::SuffixedName(name, k) != names::SuffixedName(name, k + 1),
        "two suffixes give one name", name);
  return 0;
}
