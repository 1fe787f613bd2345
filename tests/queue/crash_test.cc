// kill -9 in the middle of a stream of enqueues: every enqueue that returned OK is present after
// reopening, exactly once, with its bytes. The writer is a forked child (this process has no
// RocksDB open at fork time); it reports each id over a pipe only after Enqueue returned OK.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "queue/queue.h"
#include "tests/queue/queue_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::queue {
namespace {

using namespace std::chrono_literals;
using testing::Doc;
using testing::ReadAll;

constexpr int kWriters = 8;

std::string Content(int writer, int n) {
  // Some documents go to the spool (above inline_payload_max_bytes), most stay inline.
  std::string body = "writer " + std::to_string(writer) + " doc " + std::to_string(n) + " ";
  std::size_t size = n % 10 == 0 ? 3000 : 200;
  while (body.size() < size) body += static_cast<char>('a' + (n + writer) % 26);
  return body;
}

QueueOptions CrashOptions(const std::string& path) {
  QueueOptions o;
  o.path = path;
  o.inline_payload_max_bytes = 2048;
  o.retention_sweep_interval = 0ms;
  return o;
}

[[noreturn]] void ChildMain(const std::string& path, int report_fd) {
  auto q = Queue::Open(CrashOptions(path));
  if (!q.ok()) _exit(3);
  std::atomic<int> leased_reported{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int n = 0;; ++n) {
        NewDocument d = Doc("w" + std::to_string(w) + "-" + std::to_string(n),
                            "key-" + std::to_string(w) + "-" + std::to_string(n));
        auto r = (*q)->Enqueue(d, AsBytes(Content(w, n)));
        if (!r.ok()) _exit(4);
        // One line per acknowledged document: writer, n, id. A single write(2) of < PIPE_BUF
        // bytes is atomic, so lines from different threads never interleave.
        std::string line =
            std::to_string(w) + " " + std::to_string(n) + " " + r->id.ToString() + "\n";
        if (::write(report_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          _exit(5);
        }
        // Lease some documents too, so the restart has leases to requeue.
        if (w == 0 && n % 5 == 0) {
          auto l = (*q)->Lease(2, 1 << 20, 3600s);
          if (!l.ok()) _exit(6);
          leased_reported += static_cast<int>(l->size());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  _exit(0);
}

TEST(QueueCrashTest, EveryAcknowledgedEnqueueSurvivesKillNine) {
  qseal::testing::TempDir dir;
  std::string path = dir.Sub("q");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    ChildMain(path, fds[1]);
  }
  ::close(fds[1]);

  // Read acknowledgements until enough arrived, then kill the child mid-stream.
  constexpr std::size_t kKillAfter = 3000;
  std::string buffer;
  std::size_t lines = 0;
  char chunk[4096];
  bool killed = false;
  for (;;) {
    ssize_t n = ::read(fds[0], chunk, sizeof chunk);
    if (n <= 0) break;
    buffer.append(chunk, static_cast<std::size_t>(n));
    lines = static_cast<std::size_t>(std::count(buffer.begin(), buffer.end(), '\n'));
    if (!killed && lines >= kKillAfter) {
      ASSERT_EQ(::kill(pid, SIGKILL), 0);
      killed = true;
    }
  }
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited by itself with status " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  // Parse complete lines only (the last one may be torn by the kill).
  std::map<std::string, std::pair<int, int>> acked;  // id -> (writer, n)
  std::size_t start = 0;
  for (std::size_t nl = buffer.find('\n'); nl != std::string::npos;
       start = nl + 1, nl = buffer.find('\n', start)) {
    std::istringstream in(buffer.substr(start, nl - start));
    int w = -1, n = -1;
    std::string id;
    in >> w >> n >> id;
    ASSERT_TRUE(acked.emplace(id, std::make_pair(w, n)).second) << "id reported twice: " << id;
  }
  ASSERT_GE(acked.size(), kKillAfter);

  auto q = Queue::Open(CrashOptions(path));
  ASSERT_TRUE(q.ok()) << q.status();
  QueueStats stats = (*q)->Stats();
  EXPECT_EQ(stats.leased, 0u) << "leases of the dead process must be requeued";

  for (const auto& [text, wn] : acked) {
    auto id = DocumentId::Parse(text);
    ASSERT_TRUE(id.ok()) << text;
    auto rec = (*q)->Get(*id);
    ASSERT_TRUE(rec.ok()) << text << ": " << rec.status();
    EXPECT_EQ(rec->state, State::kQueued);
    EXPECT_EQ(rec->name, "w" + std::to_string(wn.first) + "-" + std::to_string(wn.second));
    auto payload = (*q)->OpenPayload(*id);
    ASSERT_TRUE(payload.ok()) << text << ": " << payload.status();
    EXPECT_EQ(std::string(AsChars(ReadAll(**payload))), Content(wn.first, wn.second));
  }

  // None twice: leasing everything yields each (writer, n) once. Unacknowledged enqueues that
  // reached the disk may appear too (at most one in flight per writer), but only once.
  auto all = (*q)->Lease(1'000'000, ~0ull, 3600s);
  ASSERT_TRUE(all.ok());
  std::set<std::string> names;
  for (const Record& r : *all) {
    EXPECT_TRUE(names.insert(r.name).second) << "document " << r.name << " present twice";
  }
  EXPECT_GE(all->size(), acked.size());
  EXPECT_LE(all->size(), acked.size() + kWriters);
  EXPECT_EQ(stats.queued, all->size());
}

}  // namespace
}  // namespace qseal::queue
