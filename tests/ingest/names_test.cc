// The API's name sanitiser (ingest/detail/names.h); the watched folder's names are tested in
// tests/publish/folder_names_test.cc. tests/fuzz/names_fuzzer checks the same guarantees on
// generated input; these are the cases found or worth pinning.
#include "ingest/detail/names.h"

#include <string>

#include <gtest/gtest.h>

#include "publish/folder_names.h"

namespace qseal::ingest::detail {
namespace {

TEST(NamesTest, ClientNameIsOneHarmlessComponent) {
  EXPECT_EQ(SanitizeClientName("../../etc/passwd"), "passwd");
  EXPECT_EQ(SanitizeClientName("C:\\docs\\x.pdf"), "x.pdf");
  EXPECT_EQ(SanitizeClientName("a\nb\x7f\x01.pdf"), "ab.pdf");
  EXPECT_EQ(SanitizeClientName("dir/.."), "");
  EXPECT_EQ(SanitizeClientName(std::string(300, 'n')).size(), publish::kMaxClaimedNameBytes);
}

}  // namespace
}  // namespace qseal::ingest::detail
