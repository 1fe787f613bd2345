// A 1 GiB document is enqueued by streaming and read back with bounded memory. Runs in a forked
// child so its peak RSS (VmHWM, reset at start through /proc/self/clear_refs) is its own.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "queue/queue.h"
#include "tests/queue/queue_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::queue {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kChunk = 1 << 20;
constexpr std::uint64_t kChunks = 1024;  // 1 GiB

long VmHwmKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

void ResetPeakRss() {
  int fd = ::open("/proc/self/clear_refs", O_WRONLY);
  if (fd >= 0) {
    (void)!::write(fd, "5", 1);
    ::close(fd);
  }
}

std::string Hex(const unsigned char* md, unsigned int len) { return HexEncode(ByteSpan(md, len)); }

// Returns "<baseline_kb> <peak_kb> <digest_ok> <roundtrip_ok>" or an error word.
std::string ChildRun(const std::string& path) {
  ResetPeakRss();
  QueueOptions o;
  o.path = path;
  o.retention_sweep_interval = 0ms;
  auto q = Queue::Open(o);
  if (!q.ok()) return "open-failed";
  long baseline = VmHwmKb();

  EVP_MD_CTX* in_ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(in_ctx, EVP_sha256(), nullptr);
  Bytes chunk(kChunk);
  auto pending = (*q)->Begin(testing::Doc("huge.bin"));
  if (!pending.ok()) return "begin-failed";
  for (std::uint64_t i = 0; i < kChunks; ++i) {
    for (std::size_t k = 0; k < chunk.size(); k += 4096) {
      chunk[k] = static_cast<std::uint8_t>(i);
      chunk[k + 1] = static_cast<std::uint8_t>(k >> 12);
    }
    EVP_DigestUpdate(in_ctx, chunk.data(), chunk.size());
    if (!(*pending)->Append(chunk).ok()) return "append-failed";
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(in_ctx, md, &len);
  EVP_MD_CTX_free(in_ctx);
  std::string expected = Hex(md, len);
  auto committed = (*q)->Commit(std::move(*pending));
  if (!committed.ok()) return "commit-failed";
  bool digest_ok = committed->sha256_hex == expected && committed->size == kChunk * kChunks;

  auto reader = (*q)->OpenPayload(committed->id);
  if (!reader.ok()) return "open-payload-failed";
  EVP_MD_CTX* out_ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(out_ctx, EVP_sha256(), nullptr);
  std::uint64_t total = 0;
  for (;;) {
    auto n = (*reader)->Read(chunk);
    if (!n.ok()) return "read-failed";
    if (*n == 0) break;
    total += *n;
    EVP_DigestUpdate(out_ctx, chunk.data(), *n);
  }
  EVP_DigestFinal_ex(out_ctx, md, &len);
  EVP_MD_CTX_free(out_ctx);
  bool roundtrip_ok = total == kChunk * kChunks && Hex(md, len) == expected;
  long peak = VmHwmKb();
  if (!(*q)->Close().ok()) return "close-failed";
  return std::to_string(baseline) + " " + std::to_string(peak) + " " + (digest_ok ? "1" : "0") +
         " " + (roundtrip_ok ? "1" : "0");
}

TEST(QueueLargePayloadTest, OneGibDocumentNeedsBoundedMemory) {
  qseal::testing::TempDir dir;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string out = ChildRun(dir.Sub("q"));
    (void)!::write(fds[1], out.data(), out.size());
    _exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  long baseline = 0, peak = 0;
  int digest_ok = 0, roundtrip_ok = 0;
  ASSERT_EQ(std::sscanf(out.c_str(), "%ld %ld %d %d", &baseline, &peak, &digest_ok, &roundtrip_ok),
            4)
      << out;
  EXPECT_EQ(digest_ok, 1);
  EXPECT_EQ(roundtrip_ok, 1);
  std::printf("1 GiB enqueue + read back: VmHWM %ld KiB after open, %ld KiB peak\n", baseline,
              peak);
  // 1 GiB of content; the queue may use a few MiB of buffers on top of the baseline.
  EXPECT_LT(peak - baseline, 64 * 1024) << "peak RSS grew by " << (peak - baseline) << " KiB";
}

}  // namespace
}  // namespace qseal::queue
