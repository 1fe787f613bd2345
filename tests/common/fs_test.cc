#include "common/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace qseal {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "fs_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FsTest, WriteAllWritesEveryByteAndFsyncSucceeds) {
  std::string path = dir_ + "/f";
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  std::string data(3 << 20, 'x');  // larger than one pipe/page write, to cross short writes
  data[12345] = 'y';
  ASSERT_TRUE(WriteAll(fd.get(), AsBytes(data), "f").ok());
  ASSERT_TRUE(FsyncFd(fd.get(), "f").ok());
  ASSERT_TRUE(FsyncDir(dir_).ok());
  fd.Reset();
  EXPECT_FALSE(fd.valid());
  std::ifstream in(path, std::ios::binary);
  std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(back, data);
}

TEST_F(FsTest, ErrorsAreUnavailableAndNameTheFileAndErrno) {
  Status s = WriteAll(-1, AsBytes("x"), "nowhere.bin");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("nowhere.bin"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("EBADF"), std::string::npos) << s.message();
  Status d = FsyncDir(dir_ + "/missing");
  EXPECT_EQ(d.code(), StatusCode::kUnavailable);
  EXPECT_NE(d.message().find("ENOENT"), std::string::npos) << d.message();
  EXPECT_EQ(ErrnoText(ENOSPC), "ENOSPC (No space left on device)");
}

TEST_F(FsTest, FdClosesOnDestructionAndMoveTransfersOwnership) {
  int raw = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    Fd a(raw);
    Fd b(std::move(a));
    EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
    EXPECT_EQ(b.get(), raw);
    EXPECT_EQ(::fcntl(raw, F_GETFD), FD_CLOEXEC);
  }
  errno = 0;
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST_F(FsTest, ListDirNamesEveryEntryTwiceWithoutFollowingSymlinks) {
  std::ofstream(dir_ + "/a.txt") << "a";
  std::ofstream(dir_ + "/.hidden") << "h";
  std::filesystem::create_directory(dir_ + "/sub");
  std::ofstream(dir_ + "/sub/inner") << "i";
  ASSERT_EQ(::symlink("/nonexistent", (dir_ + "/dangling").c_str()), 0);
  Fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir.valid());
  const std::set<std::string> expected = {"a.txt", ".hidden", "sub", "dangling"};
  for (int pass = 0; pass < 2; ++pass) {  // the second listing starts from the beginning again
    Result<std::vector<std::string>> names = ListDir(dir.get());
    ASSERT_TRUE(names.ok()) << names.status();
    EXPECT_EQ(std::set<std::string>(names->begin(), names->end()), expected) << pass;
  }
  Result<std::vector<std::string>> bad = ListDir(-1);
  EXPECT_EQ(bad.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace qseal
