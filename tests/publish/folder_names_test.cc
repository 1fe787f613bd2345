// The names of a watched folder (publish/folder_names.h). tests/fuzz/names_fuzzer checks the same
// guarantees on generated input; these are the cases found or worth pinning.
#include "publish/folder_names.h"

#include <string>

#include <gtest/gtest.h>

namespace qseal::publish {
namespace {

TEST(NamesTest, SuffixGoesBeforeTheExtension) {
  EXPECT_EQ(SuffixedName("invoice.pdf", 0), "invoice.pdf");
  EXPECT_EQ(SuffixedName("invoice.pdf", 2), "invoice-2.pdf");
  EXPECT_EQ(SuffixedName("README", 1), "README-1");
}

TEST(NamesTest, LongNameKeepsWholeUtf8CharactersAndItsExtension) {
  std::string name;
  for (int i = 0; i < 120; ++i) name += "\xC3\xA9";  // é, 240 bytes
  name += ".pdf";
  std::string s = ShortenedName(name);
  EXPECT_LE(s.size(), kMaxClaimedNameBytes);
  EXPECT_EQ(s.substr(s.size() - 4), ".pdf");
  EXPECT_EQ((s.size() - 4) % 2, 0u) << "a character was cut in half";
}

// Regression (hostile files: invalid UTF-8 names): a long name made of UTF-8 continuation bytes has
// no character boundary; the shortening used to back off to nothing, leaving ".xml" (a dot-file,
// ignored) or "" (the claim's rename failed and the file stayed in inbox/ for ever).
TEST(NamesTest, HostileFilesLongInvalidUtf8NameStaysVisible) {
  std::string with_ext = std::string(240, '\x80') + ".xml";
  std::string s = ShortenedName(with_ext);
  EXPECT_FALSE(IsIgnoredName(s)) << s;
  EXPECT_LE(s.size(), kMaxClaimedNameBytes);
  EXPECT_EQ(s.substr(s.size() - 4), ".xml");

  std::string no_ext(250, '\x80');
  s = ShortenedName(no_ext);
  EXPECT_FALSE(s.empty());
  EXPECT_FALSE(IsIgnoredName(s));
  EXPECT_TRUE(IsSafeName(SuffixedName(no_ext, 7)));
}

// Regression: without a kept extension the cut could end in ".tmp", a name the watcher ignores.
TEST(NamesTest, HostileFilesShortenedNameNeverEndsInTmp) {
  std::string name = std::string(196, 'a') + ".tmp." + std::string(20, 'x');
  std::string s = ShortenedName(name);
  EXPECT_FALSE(IsIgnoredName(s)) << s;
  EXPECT_FALSE(IsIgnoredName(SuffixedName(name, 3)));
}

}  // namespace
}  // namespace qseal::publish
