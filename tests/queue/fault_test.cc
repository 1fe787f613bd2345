// A failed WAL sync makes the queue read-only for good. The failure is injected by a RocksDB
// FileSystem wrapper around the real file system (the queue's only test seam:
// queue/detail/open_with_env.h).
#include <atomic>

#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include "queue/detail/open_with_env.h"
#include "queue/queue.h"
#include "tests/queue/queue_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::queue {
namespace {

using namespace std::chrono_literals;
using testing::Doc;

class FailingWal final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FailingWal(std::unique_ptr<rocksdb::FSWritableFile> file, const std::atomic<bool>* fail)
      : FSWritableFileOwnerWrapper(std::move(file)), fail_(fail) {}
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    if (fail_->load()) return rocksdb::IOStatus::IOError("injected WAL fdatasync failure (EIO)");
    return target()->Sync(o, d);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    if (fail_->load()) return rocksdb::IOStatus::IOError("injected WAL fsync failure (EIO)");
    return target()->Fsync(o, d);
  }

 private:
  const std::atomic<bool>* fail_;
};

class FailingFs final : public rocksdb::FileSystemWrapper {
 public:
  FailingFs() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "FailingFs"; }
  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, result, dbg);
    if (s.ok() && name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0) {
      *result = std::make_unique<FailingWal>(std::move(*result), &fail_sync);
    }
    return s;
  }
  std::atomic<bool> fail_sync{false};
};

TEST(QueueFaultTest, WalSyncFailureMakesTheQueueReadOnlyForGood) {
  qseal::testing::TempDir dir;
  ManualClock clock;
  auto fs = std::make_shared<FailingFs>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  QueueOptions options;
  options.path = dir.Sub("q");
  options.retention_sweep_interval = 0ms;

  DocumentId acknowledged;
  {
    auto q = detail::OpenWithEnv(options, clock, env.get());
    ASSERT_TRUE(q.ok()) << q.status();
    auto ok = (*q)->Enqueue(Doc(), AsBytes("before"));
    ASSERT_TRUE(ok.ok()) << ok.status();
    acknowledged = ok->id;

    fs->fail_sync = true;
    auto failed = (*q)->Enqueue(Doc(), AsBytes("during"));
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable) << failed.status();
    Status health = (*q)->Health();
    EXPECT_EQ(health.code(), StatusCode::kUnavailable);
    EXPECT_NE(health.message().find("injected"), std::string::npos) << health;
    EXPECT_FALSE((*q)->Stats().healthy);

    // The cause went away, but nothing is retried and nothing more is acknowledged.
    fs->fail_sync = false;
    EXPECT_EQ((*q)->Admit().code(), StatusCode::kUnavailable);
    EXPECT_EQ((*q)->Enqueue(Doc(), AsBytes("after")).status().code(), StatusCode::kUnavailable);
    EXPECT_EQ((*q)->Lease(1, 1 << 20, 1s).status().code(), StatusCode::kUnavailable);
    EXPECT_EQ((*q)->Complete({{acknowledged, Bytes{1}, "x"}}).code(), StatusCode::kUnavailable);
    // Reads still work.
    EXPECT_EQ((*q)->Get(acknowledged)->state, State::kQueued);
    (*q)->Close().IgnoreError();
  }

  // A restart (the operator fixed the disk) finds the acknowledged document.
  auto q = Queue::Open(options, clock);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_TRUE((*q)->Health().ok());
  EXPECT_EQ((*q)->Get(acknowledged)->state, State::kQueued);
  EXPECT_TRUE((*q)->Enqueue(Doc(), AsBytes("again")).ok());
}

}  // namespace
}  // namespace qseal::queue
