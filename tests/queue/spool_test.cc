#include "queue/detail/spool.h"

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "common/sha256.h"
#include "tests/testing/testing.h"

namespace qseal::queue::detail {
namespace {

DocumentId TestId() {
  auto id = DocumentId::Parse("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  EXPECT_TRUE(id.ok()) << id.status();
  return id.ok() ? *id : DocumentId();
}

NewDocument Doc() {
  NewDocument d;
  d.profile = "invoices";
  return d;
}

std::string ReadAll(PayloadReader& reader) {
  std::string out;
  std::uint8_t buf[7];  // small, so reads take several calls
  for (;;) {
    auto n = reader.Read(buf);
    EXPECT_TRUE(n.ok()) << n.status();
    if (!n.ok() || *n == 0) return out;
    out.append(reinterpret_cast<const char*>(buf), *n);
  }
}

TEST(SpoolTest, SmallDocumentStaysInMemory) {
  qseal::testing::TempDir dir;
  PendingDocumentImpl p(nullptr, Doc(), TestId(), dir.path().string(), 16);
  ASSERT_TRUE(p.Append(AsBytes(std::string_view("hello "))).ok());
  ASSERT_TRUE(p.Append(AsBytes(std::string_view("world"))).ok());
  ASSERT_TRUE(p.Finish().ok());
  EXPECT_FALSE(p.spooled());
  EXPECT_EQ(p.size(), 11u);
  EXPECT_EQ(
      std::string(reinterpret_cast<const char*>(p.inline_bytes().data()), p.inline_bytes().size()),
      "hello world");
  EXPECT_EQ(p.sha256_hex(), Sha256Hex(AsBytes(std::string_view("hello world"))));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(SpoolTest, LargeDocumentIsSpooledAndReadBack) {
  qseal::testing::TempDir dir;
  const std::string spool = dir.path().string();
  const std::string body = "a body longer than the eight byte inline limit";
  PendingDocumentImpl p(nullptr, Doc(), TestId(), spool, 8);
  ASSERT_TRUE(p.Append(AsBytes(std::string_view(body).substr(0, 5))).ok());
  ASSERT_TRUE(p.Append(AsBytes(std::string_view(body).substr(5))).ok());
  EXPECT_TRUE(std::filesystem::exists(spool + "/" + TestId().ToString() + ".tmp"));
  ASSERT_TRUE(p.Finish().ok());
  ASSERT_TRUE(p.spooled());
  EXPECT_EQ(p.final_path(), SpoolPayloadPath(spool, TestId()));
  EXPECT_FALSE(std::filesystem::exists(spool + "/" + TestId().ToString() + ".tmp"));
  EXPECT_EQ(p.sha256_hex(), Sha256Hex(AsBytes(body)));
  EXPECT_EQ(p.Finish().code(), StatusCode::kFailedPrecondition);

  auto reader = OpenSpoolReader(p.final_path(), TestId(), body.size());
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->size(), body.size());
  EXPECT_EQ(ReadAll(**reader), body);
}

TEST(SpoolTest, AnUnfinishedDocumentRemovesItsTemporaryFile) {
  qseal::testing::TempDir dir;
  {
    PendingDocumentImpl p(nullptr, Doc(), TestId(), dir.path().string(), 0);
    ASSERT_TRUE(p.Append(AsBytes(std::string_view("spooled"))).ok());
    EXPECT_FALSE(std::filesystem::is_empty(dir.path()));
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(SpoolTest, AnIoErrorNamesTheFileAndErrnoAndSticks) {
  qseal::testing::TempDir dir;
  const std::string missing = dir.Sub("no-such-dir");
  PendingDocumentImpl p(nullptr, Doc(), TestId(), missing, 0);
  Status s = p.Append(AsBytes(std::string_view("x")));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("create spool file " + missing + "/"), std::string::npos) << s;
  EXPECT_NE(s.message().find("ENOENT"), std::string::npos) << s;
  EXPECT_EQ(p.Append(AsBytes(std::string_view("y"))).message(), s.message());
  EXPECT_EQ(p.Finish().message(), s.message());
}

TEST(SpoolTest, ReaderRefusesAMissingOrResizedFile) {
  qseal::testing::TempDir dir;
  const std::string path = SpoolPayloadPath(dir.path().string(), TestId());
  EXPECT_EQ(OpenSpoolReader(path, TestId(), 3).status().code(), StatusCode::kNotFound);
  qseal::testing::WriteFile(path, "four");
  auto resized = OpenSpoolReader(path, TestId(), 3);
  EXPECT_EQ(resized.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(resized.status().message().find(path), std::string::npos) << resized.status();
}

TEST(SpoolTest, InlineReaderReadsEveryByte) {
  auto reader = NewInlineReader("inline bytes, read in pieces");
  EXPECT_EQ(reader->size(), 28u);
  EXPECT_EQ(ReadAll(*reader), "inline bytes, read in pieces");
}

}  // namespace
}  // namespace qseal::queue::detail
