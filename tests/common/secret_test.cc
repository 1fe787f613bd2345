#include "common/secret.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <type_traits>

#include <gtest/gtest.h>

namespace qseal {
namespace {

// The type's promises, checked by the compiler: no copies, no way into a std::string.
static_assert(!std::is_copy_constructible_v<Secret>);
static_assert(!std::is_copy_assignable_v<Secret>);
static_assert(std::is_nothrow_move_constructible_v<Secret>);
static_assert(!std::is_convertible_v<Secret, std::string>);
static_assert(!std::is_constructible_v<std::string, Secret>);
static_assert(!std::is_constructible_v<std::string, const Secret&>);

class SecretTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "secret_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& contents, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << contents;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  std::string dir_;
};

// The VmFlags line of the /proc/self/smaps entry that maps `address` ("" when unmapped).
std::string VmFlagsOf(const void* address) {
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = a >= lo && a < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line + " ";
    }
  }
  return "";
}

TEST_F(SecretTest, FileIsReadWithoutItsNewlineIntoALockedPageLeftOutOfDumps) {
  Result<Secret> pin = ReadSecretFile(Write("pin", "123456\r\n", 0600));
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_TRUE(pin->Equals("123456", 6));
  EXPECT_FALSE(pin->Equals("12345", 5));
  EXPECT_EQ(pin->size(), 6u);
  std::string flags = VmFlagsOf(pin->data());
  EXPECT_NE(flags.find(" dd "), std::string::npos) << "not MADV_DONTDUMP: " << flags;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // (The sanitizers' runtimes turn mlock into a no-op that reports success.)
  if (pin->locked()) {
    EXPECT_NE(flags.find(" lo "), std::string::npos) << flags;
  }
#endif
  if (::geteuid() == 0) {
    EXPECT_TRUE(pin->locked());  // root has no locked-memory limit
  }

  // Moving hands the page over; wiping unmaps it.
  const char* page = pin->data();
  Secret moved = std::move(*pin);
  EXPECT_TRUE(pin->empty());
  EXPECT_EQ(moved.data(), page);
  moved.Wipe();
  EXPECT_TRUE(moved.empty());
  EXPECT_EQ(VmFlagsOf(page), "");
  moved.Wipe();
}

TEST_F(SecretTest, FilesThatGroupOrOtherMayAccessAreRefused) {
  for (mode_t mode : {0640, 0604, 0660, 0610, 0601, 0644}) {
    std::string path = Write("loose", "654321\n", mode);
    Result<Secret> pin = ReadSecretFile(path);
    ASSERT_FALSE(pin.ok()) << std::oct << mode;
    EXPECT_EQ(pin.status().code(), StatusCode::kInvalidArgument);
    char text[8];
    std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode));
    EXPECT_NE(pin.status().message().find(std::string("mode ") + text), std::string::npos)
        << pin.status();
    EXPECT_NE(pin.status().message().find("chmod 600"), std::string::npos);
    EXPECT_EQ(pin.status().message().find("654321"), std::string::npos);  // never the PIN
    EXPECT_FALSE(CheckSecretFileMode(path, "pin").ok());
  }
  EXPECT_TRUE(ReadSecretFile(Write("owner-only", "1", 0400)).ok());
  EXPECT_TRUE(CheckSecretFileMode(dir_ + "/owner-only", "pin").ok());
  EXPECT_FALSE(ReadSecretFile(dir_ + "/missing").ok());
  EXPECT_FALSE(ReadSecretFile(dir_).ok());  // not a regular file
}

TEST_F(SecretTest, LimitsAndEmptySecrets) {
  EXPECT_TRUE(ReadSecretFile(Write("max", std::string(Secret::kMaxBytes, 'p') + "\n", 0600)).ok());
  Result<Secret> too_long = ReadSecretFile(Write("long", std::string(5000, 'p'), 0600));
  EXPECT_EQ(too_long.status().code(), StatusCode::kInvalidArgument);
  Result<Secret> empty = ReadSecretFile(Write("empty", "\n", 0600));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_STREQ(empty->data(), "");
  Result<Secret> copy = Secret::Of("abc", 3);
  ASSERT_TRUE(copy.ok());
  Result<Secret> clone = copy->Clone();
  ASSERT_TRUE(clone.ok());
  EXPECT_NE(clone->data(), copy->data());
  EXPECT_TRUE(clone->Equals("abc", 3));
}

TEST(SecretEnvTest, VariableIsOverwrittenAndUnsetOnceRead) {
  ASSERT_EQ(::setenv("QSEAL_SECRET_TEST", "s3cr3t", 1), 0);
  Result<Secret> pin = ReadSecretEnv("QSEAL_SECRET_TEST");
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_TRUE(pin->Equals("s3cr3t", 6));
  EXPECT_EQ(std::getenv("QSEAL_SECRET_TEST"), nullptr);
  Result<Secret> again = ReadSecretEnv("QSEAL_SECRET_TEST");
  EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument);
}

TEST(CoreDumpTest, DisableCoreDumpsClearsDumpableAndTheCoreLimit) {
  // In a child, so this test process keeps its own settings.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    (void)::setrlimit(RLIMIT_CORE, &unlimited);
    if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1) ::_exit(2);
    if (!DisableCoreDumps().ok()) ::_exit(3);
    struct rlimit core {};
    ::getrlimit(RLIMIT_CORE, &core);
    if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) ::_exit(4);
    if (core.rlim_cur != 0 || core.rlim_max != 0) ::_exit(5);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace qseal
