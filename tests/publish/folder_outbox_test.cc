// The folder outbox alone, against a real RocksDB queue in a temp dir: the files it writes, the
// order in which it makes them durable, collisions, error.json. fsync, renameat and renameat2 are
// defined in this binary (ahead of libc's, which they call), so every call the outbox makes on a
// path under the test's folder root is recorded in order; the queue's own syncs are elsewhere and
// not recorded.
#include "publish/folder_outbox.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <limits.h>
#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "queue/queue.h"
#include "tests/testing/seal_namer.h"
#include "tests/testing/testing.h"

namespace {

// What the interposed calls record: "fsync <path>" and "rename <from> -> <to>", paths relative to
// the prefix, temp names shown as <temp>.
std::mutex g_calls_mu;
std::string g_calls_prefix;
std::vector<std::string> g_calls;

std::string FdPath(int fd) {
  char buf[PATH_MAX];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

std::string AtPath(int dir_fd, const char* name) {
  if (name[0] == '/') return name;
  return FdPath(dir_fd) + "/" + name;
}

void RecordCall(const std::string& kind, const std::string& path, const std::string& to = "") {
  static const std::regex temp(R"(\.qseal-[0-9]+-[0-9]+\.tmp)");
  std::lock_guard<std::mutex> lock(g_calls_mu);
  if (g_calls_prefix.empty() || path.rfind(g_calls_prefix, 0) != 0) return;
  auto relative = [](const std::string& p) {
    std::string r = p.size() > g_calls_prefix.size() ? p.substr(g_calls_prefix.size() + 1) : "";
    return std::regex_replace(r, temp, "<temp>");
  };
  g_calls.push_back(kind + " " + relative(path) + (to.empty() ? "" : " -> " + relative(to)));
}

template <typename F>
F Next(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" int fsync(int fd) {
  static auto real = Next<int (*)(int)>("fsync");
  RecordCall("fsync", FdPath(fd));
  return real(fd);
}

extern "C" int renameat(int from_dir, const char* from, int to_dir, const char* to) {
  static auto real = Next<int (*)(int, const char*, int, const char*)>("renameat");
  int r = real(from_dir, from, to_dir, to);
  if (r == 0) RecordCall("rename", AtPath(from_dir, from), AtPath(to_dir, to));
  return r;
}

extern "C" int renameat2(int from_dir, const char* from, int to_dir, const char* to,
                         unsigned int flags) {
  static auto real = Next<int (*)(int, const char*, int, const char*, unsigned int)>("renameat2");
  int r = real(from_dir, from, to_dir, to, flags);
  if (r == 0) RecordCall("rename", AtPath(from_dir, from), AtPath(to_dir, to));
  return r;
}

namespace qseal::publish {
namespace {

namespace fs = std::filesystem;
using qseal::testing::ListNames;
using qseal::testing::ReadFile;
using qseal::testing::TempDir;
using qseal::testing::WriteFile;

class FolderOutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::weakly_canonical(tmp_.Sub("watch")).string();
    auto q = queue::Queue::Open({.path = tmp_.Sub("queue")});
    ASSERT_TRUE(q.ok()) << q.status();
    queue_ = std::move(*q);
    outbox_ = std::make_unique<FolderOutbox>(root_, queue_.get(), &namer_, clock_);
    ASSERT_TRUE(outbox_->Open().ok());
    Record(true);
  }
  void TearDown() override { Record(false); }

  // Starts (or stops) recording the calls under the root, forgetting earlier ones.
  void Record(bool on) {
    std::lock_guard<std::mutex> lock(g_calls_mu);
    g_calls_prefix = on ? root_ : "";
    g_calls.clear();
  }
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> lock(g_calls_mu);
    return g_calls;
  }

  // A document accepted from this root: in the queue and claimed as processing/<name>.
  queue::Record Accept(const std::string& name, const std::string& content) {
    queue::NewDocument doc;
    doc.profile = "default";
    doc.source = queue::Source::kWatch;
    doc.client = root_;
    doc.name = name;
    auto enqueued = queue_->Enqueue(doc, AsBytes(content));
    EXPECT_TRUE(enqueued.ok()) << enqueued.status();
    WriteFile(Processing() + "/" + name, content);
    auto record = queue_->Get(enqueued->id);
    EXPECT_TRUE(record.ok()) << record.status();
    return *record;
  }

  std::string Processing() const { return root_ + "/processing"; }
  std::string Outbox() const { return root_ + "/outbox"; }
  std::string Failed() const { return root_ + "/failed"; }

  TempDir tmp_;
  std::string root_;
  ManualClock clock_;
  std::unique_ptr<queue::Queue> queue_;
  qseal::testing::CadesSealNamer namer_;
  std::unique_ptr<FolderOutbox> outbox_;
};

TEST_F(FolderOutboxTest, OpenCreatesTheFoldersAndRemovesTempFilesOfDeadProcesses) {
  for (const auto& d : {Processing(), Outbox(), Failed()}) EXPECT_TRUE(fs::is_directory(d)) << d;
  EXPECT_FALSE(fs::exists(root_ + "/inbox"));  // the watcher's
  std::string own = ".qseal-" + std::to_string(::getpid()) + "-7.tmp";
  WriteFile(Outbox() + "/.qseal-999999-1.tmp", "left by a dead process");
  WriteFile(Failed() + "/.qseal-999999-2.tmp", "left by a dead process");
  WriteFile(Outbox() + "/" + own, "this process's, maybe in use");
  WriteFile(Outbox() + "/.qseal-notes.txt", "not a temp name");
  ASSERT_TRUE(outbox_->Open().ok());
  EXPECT_EQ(ListNames(Outbox()), (std::set<std::string>{own, ".qseal-notes.txt"}));
  EXPECT_TRUE(ListNames(Failed()).empty());

  FolderOutbox unnamed("", queue_.get(), &namer_);
  EXPECT_EQ(unnamed.Open().code(), StatusCode::kInvalidArgument);
  FolderOutbox closed(tmp_.Sub("other"), queue_.get(), &namer_);
  EXPECT_EQ(closed.FreeName("x").status().code(), StatusCode::kFailedPrecondition);
}

// The seal is durable under a temp name before it gets its final name; the original follows it;
// both renames are durable (directory fsyncs) before Publish returns, so the engine's queue commit
// comes after them.
TEST_F(FolderOutboxTest, PublishMakesTheSealDurableBeforeItsNameAndTheOriginalFollows) {
  queue::Record r = Accept("invoice.pdf", "%PDF-1.7 pretend");
  Record(true);
  ASSERT_TRUE(outbox_->Publish(r, AsBytes(std::string("the seal"))).ok());
  EXPECT_EQ(Calls(), (std::vector<std::string>{
                         "fsync outbox/<temp>",
                         "rename outbox/<temp> -> outbox/invoice.pdf.p7s",
                         "rename processing/invoice.pdf -> outbox/invoice.pdf",
                         "fsync outbox",
                         "fsync processing",
                     }));
  EXPECT_EQ(ReadFile(Outbox() + "/invoice.pdf"), "%PDF-1.7 pretend");
  EXPECT_EQ(ReadFile(Outbox() + "/invoice.pdf.p7s"), "the seal");
  EXPECT_EQ(ListNames(Outbox()).size(), 2u);
  EXPECT_TRUE(ListNames(Processing()).empty());
  EXPECT_EQ(outbox_->Stats().published, 1u);

  // Again (a crash before the queue commit): OK, and nothing is written.
  Record(true);
  ASSERT_TRUE(outbox_->Publish(r, AsBytes(std::string("another seal"))).ok());
  EXPECT_TRUE(Calls().empty());
  EXPECT_EQ(ReadFile(Outbox() + "/invoice.pdf.p7s"), "the seal");
  EXPECT_EQ(outbox_->Stats().published, 1u);

  // Enveloping seals are .p7m (the profile's format names the seal).
  queue::Record m = Accept("order.xml", "<order/>");
  m.profile = "enveloping";
  ASSERT_TRUE(outbox_->Publish(m, AsBytes(std::string("enveloped"))).ok());
  EXPECT_EQ(ReadFile(Outbox() + "/order.xml.p7m"), "enveloped");
  EXPECT_EQ(ReadFile(Outbox() + "/order.xml"), "<order/>");
}

TEST_F(FolderOutboxTest, PublishBatchSyncsEachSealAndBothFoldersOnce) {
  std::vector<queue::Record> records;
  for (int i = 0; i < 3; ++i) records.push_back(Accept("d" + std::to_string(i), "doc"));
  std::vector<std::string> seals = {"s0", "s1", "s2"};
  std::vector<PublishItem> items;
  for (int i = 0; i < 3; ++i) items.push_back({&records[i], AsBytes(seals[i])});
  Record(true);
  for (const Status& s : outbox_->PublishBatch(items)) EXPECT_TRUE(s.ok()) << s;
  std::vector<std::string> expected;
  for (int i = 0; i < 3; ++i) {
    std::string d = "d" + std::to_string(i);
    expected.push_back("fsync outbox/<temp>");
    expected.push_back("rename outbox/<temp> -> outbox/" + d + ".p7s");
    expected.push_back("rename processing/" + d + " -> outbox/" + d);
  }
  expected.push_back("fsync outbox");
  expected.push_back("fsync processing");
  EXPECT_EQ(Calls(), expected);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ReadFile(Outbox() + "/d" + std::to_string(i) + ".p7s"), seals[i]);
  }
  EXPECT_EQ(outbox_->Stats().published, 3u);
}

TEST_F(FolderOutboxTest, RefusesRecordsOfAnotherRootUnsafeNamesAndProfilesWithoutSealNames) {
  queue::Record r = Accept("a.txt", "a");
  queue::Record foreign = r;
  foreign.client = "/elsewhere";
  queue::Record sneaky = r;
  sneaky.name = "../a.txt";
  Bytes seal = {1, 2, 3};
  EXPECT_EQ(outbox_->Publish(foreign, seal).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(outbox_->Publish(sneaky, seal).code(), StatusCode::kInvalidArgument);
  queue::Record unnamed = r;
  unnamed.profile = "unnamed";  // no format names its seal
  EXPECT_EQ(outbox_->Publish(unnamed, seal).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(outbox_->PublishFailure(foreign, InternalError("x")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(outbox_->PublishFailure(sneaky, InternalError("x")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ListNames(Outbox()).empty());
  EXPECT_TRUE(ListNames(Failed()).empty());
  EXPECT_EQ(ListNames(Processing()), (std::set<std::string>{"a.txt"}));
}

TEST_F(FolderOutboxTest, CollisionsGetASuffixAndNothingIsOverwritten) {
  WriteFile(Outbox() + "/report.txt", "someone else's file");
  queue::Record r = Accept("report.txt", "my report");
  ASSERT_TRUE(outbox_->Publish(r, AsBytes(std::string("seal"))).ok());
  EXPECT_EQ(ReadFile(Outbox() + "/report.txt"), "someone else's file");
  EXPECT_FALSE(fs::exists(Outbox() + "/report.txt.p7s"));
  EXPECT_EQ(ReadFile(Outbox() + "/report-1.txt"), "my report");
  EXPECT_EQ(ReadFile(Outbox() + "/report-1.txt.p7s"), "seal");

  // FreeName looks at every folder and every output a name can have.
  WriteFile(Processing() + "/x.pdf", "claimed");
  WriteFile(Outbox() + "/x-1.pdf.p7m", "a seal");
  WriteFile(Failed() + "/x-2.pdf.error.json", "{}");
  auto free = outbox_->FreeName("x.pdf");
  ASSERT_TRUE(free.ok()) << free.status();
  EXPECT_EQ(*free, "x-3.pdf");
  EXPECT_EQ(*outbox_->FreeName("new.pdf"), "new.pdf");

  // A failure in the way in failed/ gets a suffix too.
  WriteFile(Failed() + "/bad.xml", "an earlier bad.xml");
  queue::Record bad = Accept("bad.xml", "<bad/>");
  ASSERT_TRUE(outbox_->PublishFailure(bad, InvalidArgumentError("no")).ok());
  EXPECT_EQ(ReadFile(Failed() + "/bad.xml"), "an earlier bad.xml");
  EXPECT_EQ(ReadFile(Failed() + "/bad-1.xml"), "<bad/>");
  EXPECT_TRUE(fs::exists(Failed() + "/bad-1.xml.error.json"));
}

TEST_F(FolderOutboxTest, PublishFailureWritesErrorJsonDurablyThenMovesTheOriginal) {
  queue::Record r = Accept("bad.xml", "<not-sealable/>");
  Record(true);
  ASSERT_TRUE(outbox_->PublishFailure(r, InvalidArgumentError("not a document we can seal")).ok());
  EXPECT_EQ(Calls(), (std::vector<std::string>{
                         "fsync failed/<temp>",
                         "rename failed/<temp> -> failed/bad.xml.error.json",
                         "rename processing/bad.xml -> failed/bad.xml",
                         "fsync failed",
                         "fsync processing",
                     }));
  EXPECT_EQ(ReadFile(Failed() + "/bad.xml"), "<not-sealable/>");
  auto j = nlohmann::json::parse(ReadFile(Failed() + "/bad.xml.error.json"));
  EXPECT_EQ(j, (nlohmann::json{{"code", "INVALID_ARGUMENT"},
                               {"message", "not a document we can seal"},
                               {"sha256", Sha256Hex(AsBytes(std::string("<not-sealable/>")))},
                               {"attempts", 0},
                               {"failed_at", FormatUtc(clock_.Now())}}));
  EXPECT_TRUE(ListNames(Processing()).empty());
  EXPECT_TRUE(ListNames(Outbox()).empty());
  EXPECT_EQ(outbox_->Stats().failed, 1u);

  // Again after a crash before the queue commit: nothing new.
  Record(true);
  ASSERT_TRUE(outbox_->PublishFailure(r, InternalError("again")).ok());
  EXPECT_TRUE(Calls().empty());
  EXPECT_EQ(ListNames(Failed()).size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(ReadFile(Failed() + "/bad.xml.error.json"))["message"],
            "not a document we can seal");
  EXPECT_EQ(outbox_->Stats().failed, 1u);
}

// processing/<name> changed after acceptance (a second hard link): the queue's copy is published
// beside the seal, and the changed file goes to failed/ saying so.
TEST_F(FolderOutboxTest, FileChangedAfterAcceptancePublishesTheAcceptedBytes) {
  queue::Record r = Accept("contract.txt", "the accepted terms");
  WriteFile(Processing() + "/contract.txt", "terms changed afterwards");
  ASSERT_TRUE(outbox_->Publish(r, AsBytes(std::string("seal"))).ok());
  EXPECT_EQ(ReadFile(Outbox() + "/contract.txt"), "the accepted terms");
  EXPECT_EQ(ReadFile(Outbox() + "/contract.txt.p7s"), "seal");
  EXPECT_EQ(ReadFile(Failed() + "/contract.txt"), "terms changed afterwards");
  auto j = nlohmann::json::parse(ReadFile(Failed() + "/contract.txt.error.json"));
  EXPECT_EQ(j["code"], "FAILED_PRECONDITION");
  EXPECT_NE(j["message"].get<std::string>().find("changed after it was accepted"),
            std::string::npos);
  EXPECT_EQ(j["sha256"], r.sha256_hex);
  EXPECT_TRUE(ListNames(Processing()).empty());
  EXPECT_EQ(ListNames(Outbox()).size(), 2u);

  // Same size, other bytes: caught by the SHA-256, not the size.
  queue::Record same_size = Accept("n.txt", "1234");
  WriteFile(Processing() + "/n.txt", "4321");
  ASSERT_TRUE(outbox_->Publish(same_size, AsBytes(std::string("seal"))).ok());
  EXPECT_EQ(ReadFile(Outbox() + "/n.txt"), "1234");
  EXPECT_EQ(ReadFile(Failed() + "/n.txt"), "4321");
}

TEST_F(FolderOutboxTest, MoveUnreadToFailedMovesTheFileBesideItsReason) {
  std::string inbox = tmp_.Sub("inbox");
  fs::create_directories(inbox);
  WriteFile(inbox + "/big.bin", std::string(101, 'b'));
  WriteFile(Failed() + "/big.bin", "an earlier big.bin");
  Fd inbox_fd(::open(inbox.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(inbox_fd.valid());
  auto moved = outbox_->MoveUnreadToFailed(inbox_fd.get(), "big.bin",
                                           InvalidArgumentError("file is 101 bytes"));
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, "big-1.bin");
  EXPECT_EQ(ReadFile(Failed() + "/big-1.bin"), std::string(101, 'b'));
  auto j = nlohmann::json::parse(ReadFile(Failed() + "/big-1.bin.error.json"));
  EXPECT_EQ(j["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(j["message"], "file is 101 bytes");
  EXPECT_TRUE(j["sha256"].is_null());
  EXPECT_EQ(j["attempts"], 0);
  EXPECT_EQ(j["failed_at"], FormatUtc(clock_.Now()));
  EXPECT_TRUE(ListNames(inbox).empty());
  EXPECT_EQ(outbox_->Stats().failed, 1u);

  // Gone before the move: "" and no error.json left behind.
  auto gone =
      outbox_->MoveUnreadToFailed(inbox_fd.get(), "vanished.bin", InvalidArgumentError("x"));
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(*gone, "");
  EXPECT_EQ(ListNames(Failed()).size(), 3u);
  EXPECT_EQ(outbox_->Stats().failed, 1u);
}

TEST_F(FolderOutboxTest, PublishFinishedPublishesWhatTheQueueRecorded) {
  queue::Record sealed = Accept("sealed.txt", "will be sealed");
  queue::Record failed = Accept("failed.txt", "will fail");
  queue::Record queued = Accept("queued.txt", "still queued");
  auto leased = queue_->Lease(2, 1 << 20, std::chrono::seconds(60));
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 2u);
  ASSERT_TRUE(queue_->Complete({{sealed.id, Bytes{'e', 'n', 'v'}, "application/pkcs7-mime"}}).ok());
  ASSERT_TRUE(queue_->Fail({{failed.id, UnavailableError("HSM gone"), false}}).ok());
  for (const auto& id : {sealed.id, failed.id, queued.id}) {
    auto r = queue_->Get(id);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(outbox_->PublishFinished(*r).ok());
  }
  EXPECT_EQ(ReadFile(Outbox() + "/sealed.txt.p7m"), "env");
  EXPECT_EQ(ReadFile(Outbox() + "/sealed.txt"), "will be sealed");
  EXPECT_EQ(ReadFile(Failed() + "/failed.txt"), "will fail");
  auto j = nlohmann::json::parse(ReadFile(Failed() + "/failed.txt.error.json"));
  EXPECT_EQ(j["code"], "UNAVAILABLE");
  EXPECT_EQ(j["message"], "HSM gone");
  EXPECT_EQ(j["attempts"], 1);
  EXPECT_EQ(ListNames(Processing()), (std::set<std::string>{"queued.txt"}));
}

}  // namespace
}  // namespace qseal::publish
