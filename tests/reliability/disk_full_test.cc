// Scenario 2, durability, disk full: the queue and the watched folder on a small tmpfs. As free
// space falls below the queue's reserve (QueueOptions::min_free_bytes) the API answers 503 with
// Retry-After and the watcher stops claiming; once space returns, intake resumes by itself, and
// the checker finds every accepted document sealed once and no partial output anywhere.
//
// Needs root (mount -t tmpfs); skipped with a message otherwise. Seeded: QSEAL_SEED=<n>.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/reliability/scenario.h"

namespace qseal::reliability {
namespace {

using testing::Qseald;
using testing::TempDir;

std::uint64_t FreeBytes(const std::string& path) {
  struct statvfs vfs;
  if (::statvfs(path.c_str(), &vfs) != 0) return 0;
  return static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

// Grows (or creates) `path` until the filesystem has about `leave` bytes free.
void FillUntil(const std::string& path, std::uint64_t leave) {
  std::uint64_t free_bytes = FreeBytes(std::filesystem::path(path).parent_path());
  if (free_bytes <= leave) return;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  std::string chunk(1 << 20, 'f');
  std::uint64_t want = free_bytes - leave;
  while (want > 0) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(want, chunk.size()));
    ssize_t w = ::write(fd, chunk.data(), n);
    if (w <= 0) break;
    want -= static_cast<std::uint64_t>(w);
  }
  ::close(fd);
}

struct Mount {
  std::string dir;
  bool mounted = false;
  ~Mount() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
  }
};

bool WaitUntil(const std::function<bool()>& done, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

TEST(ReliabilityDurabilityTest, DiskFullAnswers503WithRetryAfterAndRecoversWhenSpaceReturns) {
  const std::uint64_t seed = SeedFromEnv();
  SCOPED_TRACE("QSEAL_SEED=" + std::to_string(seed));
  TempDir tmp;
  Mount small{tmp.Sub("small")};
  std::filesystem::create_directories(small.dir);
  if (::mount("tmpfs", small.dir.c_str(), "tmpfs", 0, "size=256m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                 << "): the disk-full scenario needs root";
  }
  small.mounted = true;
  const std::string root = small.dir + "/watch";
  testing::QsealdOptions options = ScenarioOptions();
  auto base_edit = options.edit_config;
  options.edit_config = [&, base_edit](std::string& conf) {
    base_edit(conf);
    SetConfig(conf, "path", "\"" + small.dir + "/queue\"");
    SetConfig(conf, "root", "\"" + root + "\"");
  };
  Qseald qseald(tmp.Sub("d"), options);
  Ledger ledger(tmp.Sub("ledger"));
  RunWindow window = RunWindow::StartNow();
  ASSERT_TRUE(Started(qseald));

  // Leave a little more than the queue's 64 MiB reserve, then load it.
  const std::string filler = small.dir + "/filler";
  FillUntil(filler, (64u << 20) + (6u << 20));
  LoadOptions lo;
  lo.api = qseald.api();
  lo.token = qseald.token();
  lo.ca_file = qseald.ca_pem();
  lo.watch_root = root;
  lo.seed = seed;
  lo.min_bytes = 16 << 10;
  lo.max_bytes = 64 << 10;
  lo.max_api_documents = 0;  // until stopped
  lo.max_watch_documents = 0;
  lo.api_threads = 2;
  lo.watch_per_second = 20;
  LoadGenerator load(ledger, lo);
  load.Start();
  // Big bodies refused before they are read show up as lost connections; probe with a small one.
  Result<cli::HttpReply> reply = UnavailableError("no probe yet");
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::string original = ledger.Keep("probe");
        reply = qseald.Client().Request("POST", "/v1/documents?profile=default", "probe");
        if (reply.ok() && reply->status == 202) {
          auto j = nlohmann::json::parse(reply->body, nullptr, false);
          ledger.Accepted({Via::kApi, j.value("id", ""), "probe", original});
        }
        return reply.ok() && reply->status == 503;
      },
      std::chrono::seconds(60)))
      << ledger.Summary();
  EXPECT_FALSE(reply->Header("retry-after").empty());
  EXPECT_NE(reply->body.find("full"), std::string::npos) << reply->body;
  // The watcher stopped claiming too: files wait in inbox/.
  EXPECT_TRUE(WaitUntil([&] { return !std::filesystem::is_empty(root + "/inbox"); },
                        std::chrono::seconds(30)));

  // Space returns: intake resumes without a restart, through both doors.
  std::filesystem::remove(filler);
  std::size_t before = ledger.accepted_count();
  EXPECT_TRUE(
      WaitUntil([&] { return ledger.accepted_count() > before + 20; }, std::chrono::seconds(60)))
      << ledger.Summary();
  load.Stop();
  ExpectRunKeptPromises(qseald, ledger, window, {}, std::chrono::seconds(180), root,
                        small.dir + "/queue");
}

}  // namespace
}  // namespace qseal::reliability
