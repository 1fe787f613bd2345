#include "queue/detail/rocksdb_status.h"

#include <gtest/gtest.h>

namespace qseal::queue::detail {
namespace {

TEST(RocksDbStatusTest, OkStaysOk) { EXPECT_TRUE(FromRocksDb(rocksdb::Status::OK(), "x").ok()); }

TEST(RocksDbStatusTest, CodesMapToTheirRetryMeaning) {
  struct Case {
    rocksdb::Status in;
    StatusCode want;
    const char* name;
  };
  const Case cases[] = {
      {rocksdb::Status::NotFound("k"), StatusCode::kNotFound, "NotFound"},
      {rocksdb::Status::Corruption("bad block"), StatusCode::kDataLoss, "Corruption"},
      {rocksdb::Status::IOError("fsync"), StatusCode::kUnavailable, "IOError"},
      {rocksdb::Status::NoSpace("disk full"), StatusCode::kUnavailable, "IOError(NoSpace)"},
      {rocksdb::Status::Busy("b"), StatusCode::kUnavailable, "Busy"},
      {rocksdb::Status::TimedOut("t"), StatusCode::kUnavailable, "TimedOut"},
      {rocksdb::Status::TryAgain("t"), StatusCode::kUnavailable, "TryAgain"},
      {rocksdb::Status::InvalidArgument("i"), StatusCode::kInvalidArgument, "InvalidArgument"},
      {rocksdb::Status::NotSupported("n"), StatusCode::kFailedPrecondition, "NotSupported"},
      {rocksdb::Status::ShutdownInProgress("s"), StatusCode::kCancelled, "ShutdownInProgress"},
      {rocksdb::Status::Aborted("a"), StatusCode::kCancelled, "Aborted"},
      {rocksdb::Status::Incomplete("i"), StatusCode::kInternal, "Incomplete"},
  };
  for (const Case& c : cases) {
    Status s = FromRocksDb(c.in, "queue write");
    EXPECT_EQ(s.code(), c.want) << c.name;
    EXPECT_EQ(s.message().rfind(std::string("queue write: rocksdb ") + c.name + ": ", 0), 0u)
        << s.message();
  }
}

TEST(RocksDbStatusTest, MessageKeepsRocksDbText) {
  Status s = FromRocksDb(rocksdb::Status::Corruption("block checksum mismatch"), "open");
  EXPECT_NE(s.message().find("block checksum mismatch"), std::string::npos);
}

}  // namespace
}  // namespace qseal::queue::detail
