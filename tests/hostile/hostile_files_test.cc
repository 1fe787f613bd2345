// Reliability scenario 4, hostile files: a real qseald's watched folder gets what careless or
// hostile producers leave in inbox/. Each entry ends with its defined outcome (docs/reliability.md,
// "Hostile files"):
//   sealed          empty files, names with newlines, invalid UTF-8, 255-byte names
//                   (claimed under a shortened name), the same name twice (the second gets a
//                   suffix; nothing is overwritten), a file still being written (claimed only once
//                   its writer closed it, sealed with every byte)
//   failed/         files over max_file_bytes and hard links (st_nlink > 1), with error.json,
//                   moved without being read
//   left alone      symlinks (never followed), FIFOs (never opened: the watcher never blocks),
//                   sockets, files the watcher may not rename (permission denied); logged once
//   nothing         a file that vanishes between the event and the claim
// and the watcher keeps claiming afterwards. Every accepted document ends in the reliability
// checker (tests/reliability/checker.h): exactly one seal, `openssl cms -verify` against the
// ledger's own copy of the accepted bytes, nothing sealed that nobody submitted.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "publish/folder_names.h"
#include "tests/p11shim/p11shim.h"
#include "tests/reliability/checker.h"
#include "tests/reliability/scenario.h"
#include "tests/testing/qseald_harness.h"

namespace qseal {
namespace {

namespace fs = std::filesystem;
using reliability::Ledger;
using reliability::RunWindow;
using reliability::Via;
using testing::Qseald;
using testing::QsealdOptions;
using testing::TempDir;

bool WaitFor(const std::function<bool()>& pred,
             std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// rchar of a process: every byte it read through read(2) and friends, from any file.
std::uint64_t BytesRead(int pid) {
  std::ifstream io("/proc/" + std::to_string(pid) + "/io");
  std::string key;
  std::uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "rchar:") return value;
  }
  return 0;
}

class HostileFilesTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& extra_config = "") {
    shim_ = tmp_.Sub("shim.so");
    fs::copy_file(QSEAL_P11SHIM_PATH, shim_);
    QsealdOptions o = reliability::ScenarioOptions();
    o.module = shim_;
    auto base = o.edit_config;
    o.edit_config = [base, extra_config](std::string& conf) {
      base(conf);
      // Rescans find files that inotify has nothing to say about (still open, left alone).
      reliability::SetConfig(conf, "poll_interval", "\"200ms\"");
      conf += extra_config;
    };
    qseald_ = std::make_unique<Qseald>(tmp_.Sub("d"), o);
    Status s = qseald_->Start();
    ASSERT_TRUE(s.ok()) << s << qseald_->Stderr();
    root_ = qseald_->watch_root();
    outside_ = tmp_.Sub("outside");
    fs::create_directories(outside_);
  }

  std::string Inbox(const std::string& name) const { return root_ + "/inbox/" + name; }
  std::string Outbox(const std::string& name) const { return root_ + "/outbox/" + name; }

  // The producer contract: write under a dot-name, rename in. Recorded as accepted under the
  // name it will be published as.
  void Drop(Ledger& ledger, const std::string& name, const std::string& bytes,
            const std::string& published_as = "") {
    std::string tmp = Inbox(".drop.tmp");
    testing::WriteFile(tmp, bytes);
    ASSERT_EQ(::rename(tmp.c_str(), Inbox(name).c_str()), 0) << name;
    std::string out = published_as.empty() ? name : published_as;
    ledger.Accepted({Via::kWatch, name, out, ledger.Keep(bytes)});
  }

  bool Sealed(const std::string& name) const { return Exists(Outbox(name + ".p7s")); }

  TempDir tmp_;
  std::string shim_;
  std::unique_ptr<Qseald> qseald_;
  std::string root_;
  std::string outside_;
};

TEST_F(HostileFilesTest, OddEntriesEndWithTheirOutcomeAndTheWatcherKeepsWorking) {
  StartDaemon();
  Ledger ledger(tmp_.Sub("ledger"));
  RunWindow window = RunWindow::StartNow();
  const int pid = qseald_->process().pid();

  // Sealed: an empty file, a name with a newline, an invalid UTF-8 name.
  Drop(ledger, "empty.xml", "");
  Drop(ledger, "two\nlines.xml", "<a>newline in the name</a>\n");
  Drop(ledger, "bad-\xff\xfe-\x80.xml", "<a>invalid UTF-8 name</a>\n");
  // A 255-byte name (NAME_MAX): claimed under a shortened name that leaves room for suffixes.
  const std::string long_name = std::string(251, 'L') + ".xml";
  Drop(ledger, long_name, "<a>long name</a>\n", publish::ShortenedName(long_name));
  // A hard link into inbox/ (the other name stays outside): refused, to failed/ unread with the
  // reason; the other name untouched.
  testing::WriteFile(outside_ + "/linked.xml", "<a>hard link</a>\n");
  ASSERT_EQ(::link((outside_ + "/linked.xml").c_str(), Inbox("linked.xml").c_str()), 0);

  // Left alone: symlinks (to an outside file, to a directory, dangling), a FIFO, a socket.
  testing::WriteFile(outside_ + "/secret.xml", "<a>outside, never to be sealed</a>\n");
  ASSERT_EQ(::symlink((outside_ + "/secret.xml").c_str(), Inbox("link-to-outside.xml").c_str()), 0);
  ASSERT_EQ(::symlink(outside_.c_str(), Inbox("link-to-dir").c_str()), 0);
  ASSERT_EQ(::symlink("/nonexistent/x.xml", Inbox("dangling.xml").c_str()), 0);
  ASSERT_EQ(::mkfifo(Inbox("pipe.xml").c_str(), 0600), 0);
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string sock_path = Inbox("sock.xml");
  ASSERT_LT(sock_path.size(), sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, sock_path.c_str(), sock_path.size() + 1);
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  // Permission denied: an immutable file cannot be renamed, even by root (skipped where the file
  // system has no immutable attribute, e.g. tmpfs).
  // Written in place and made immutable while still open (so the watcher skips it until the
  // close), then closed: its claim's rename fails with EPERM.
  int imm = ::open(Inbox("immutable.xml").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(imm, 0);
  ASSERT_EQ(::write(imm, "<a>immutable</a>\n", 17), 17);
  bool immutable =
      testing::RunCommand("chattr +i " + testing::ShellQuote(Inbox("immutable.xml"))).exit_code ==
      0;
  ::close(imm);
  if (!immutable && ::unlink(Inbox("immutable.xml").c_str()) != 0) {
    ledger.Accepted({Via::kWatch, "immutable.xml", "immutable.xml",
                     ledger.Keep("<a>immutable</a>\n")});  // claimed before the unlink
  }

  // Failed unread: 5 GiB, sparse (no disk used), above max_file_bytes (256 MiB).
  const std::uint64_t read_before = BytesRead(pid);
  {
    int fd = ::open(Inbox(".big.tmp").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 5ll << 30), 0);
    ::close(fd);
    ASSERT_EQ(::rename(Inbox(".big.tmp").c_str(), Inbox("big.pdf").c_str()), 0);
  }

  // The same name twice: the second is claimed as dup-1.xml once dup.xml is taken.
  Drop(ledger, "dup.xml", "<a>first</a>\n");
  ASSERT_TRUE(WaitFor([&] { return Sealed("dup.xml"); }));
  Drop(ledger, "dup.xml", "<a>second</a>\n", "dup-1.xml");

  // Vanishing files: renamed in and deleted at once, racing the watcher. Whichever wins, the
  // outcome is exact: deleted from inbox/ means never claimed (nothing to seal); already gone
  // means the watcher claimed it, and then it must be sealed.
  int vanished = 0, claimed_first = 0;
  for (int i = 0; i < 40; ++i) {
    std::string name = "vanish-" + std::to_string(i) + ".xml";
    std::string bytes = "<a>vanishing " + std::to_string(i) + "</a>\n";
    testing::WriteFile(Inbox(".v.tmp"), bytes);
    ASSERT_EQ(::rename(Inbox(".v.tmp").c_str(), Inbox(name).c_str()), 0);
    if (i % 2 == 1) std::this_thread::sleep_for(std::chrono::microseconds(200 * i));
    if (::unlink(Inbox(name).c_str()) == 0) {
      vanished++;
    } else {
      ASSERT_EQ(errno, ENOENT);
      claimed_first++;
      ledger.Accepted({Via::kWatch, name, name, ledger.Keep(bytes)});
    }
  }

  // The oversized file is in failed/ with its error.json, and was never read.
  ASSERT_TRUE(WaitFor([&] { return Exists(root_ + "/failed/big.pdf.error.json"); }));
  auto error = nlohmann::json::parse(testing::ReadFile(root_ + "/failed/big.pdf.error.json"));
  EXPECT_EQ(error["code"], "INVALID_ARGUMENT");
  EXPECT_TRUE(error["sha256"].is_null());
  EXPECT_EQ(error["attempts"], 0);
  EXPECT_EQ(fs::file_size(root_ + "/failed/big.pdf"), 5ull << 30);
  ASSERT_TRUE(WaitFor([&] { return Exists(root_ + "/failed/linked.xml.error.json"); }));
  auto linked = nlohmann::json::parse(testing::ReadFile(root_ + "/failed/linked.xml.error.json"));
  EXPECT_NE(linked["message"].get<std::string>().find("2 hard links"), std::string::npos) << linked;
  EXPECT_TRUE(linked["sha256"].is_null());
  EXPECT_EQ(testing::ReadFile(root_ + "/failed/linked.xml"), "<a>hard link</a>\n");
  const std::uint64_t read_after = BytesRead(pid);
  EXPECT_LT(read_after - read_before, 256ull << 20)
      << "qseald read " << (read_after - read_before) << " bytes meanwhile";

  // A normal file after all of it: the watcher still works.
  Drop(ledger, "after.xml", "<a>after the hostile files</a>\n");
  ASSERT_TRUE(WaitFor([&] { return Sealed("after.xml"); }))
      << reliability::LogDigest(tmp_.Sub("d"));
  // Several rescans have passed over the entries left alone by now.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));

  // Left alone, and the symlink's target untouched and not sealed.
  for (const char* name :
       {"link-to-outside.xml", "link-to-dir", "dangling.xml", "pipe.xml", "sock.xml"}) {
    EXPECT_TRUE(Exists(Inbox(name))) << name;
    EXPECT_FALSE(Exists(Outbox(std::string(name) + ".p7s"))) << name;
    EXPECT_FALSE(Exists(root_ + "/failed/" + name)) << name;
  }
  EXPECT_EQ(testing::ReadFile(outside_ + "/secret.xml"), "<a>outside, never to be sealed</a>\n");
  EXPECT_TRUE(Exists(outside_ + "/linked.xml"));
  if (immutable) {
    EXPECT_TRUE(Exists(Inbox("immutable.xml")));
    EXPECT_FALSE(Sealed("immutable.xml"));
  }
  // Each is logged once, not once per rescan.
  std::string log = testing::ReadFile(tmp_.Sub("d") + "/qseald.1.log");
  std::size_t fifo_lines = 0;
  for (std::size_t p = log.find("pipe.xml"); p != std::string::npos;
       p = log.find("pipe.xml", p + 1))
    fifo_lines++;
  EXPECT_EQ(fifo_lines, 1u);

  // Clear what was left alone or failed by design, then the checker sees only accepted
  // documents: each sealed exactly once, verified against the ledger's copy.
  if (immutable) testing::RunCommand("chattr -i " + testing::ShellQuote(Inbox("immutable.xml")));
  for (const char* name : {"link-to-outside.xml", "link-to-dir", "dangling.xml", "pipe.xml",
                           "sock.xml", "immutable.xml"})
    ::unlink(Inbox(name).c_str());
  ::close(sock);
  fs::remove(root_ + "/failed/big.pdf");
  fs::remove(root_ + "/failed/big.pdf.error.json");
  fs::remove(root_ + "/failed/linked.xml");
  fs::remove(root_ + "/failed/linked.xml.error.json");
  reliability::ExpectRunKeptPromises(*qseald_, ledger, window);
  std::printf("vanishing files: %d deleted before the claim, %d claimed first\n", vanished,
              claimed_first);
}

// A file written in place (not renamed in) is not claimed while its writer holds it open, however
// many rescans pass; once closed it is claimed and sealed with every byte written.
TEST_F(HostileFilesTest, GrowingFileIsClaimedOnlyOnceClosedAndSealedWhole) {
  StartDaemon();
  Ledger ledger(tmp_.Sub("ledger"));
  RunWindow window = RunWindow::StartNow();
  int fd = ::open(Inbox("growing.xml").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  std::string all;
  for (int i = 0; i < 10; ++i) {
    std::string part =
        "<part n=\"" + std::to_string(i) + "\">" + std::string(100000, 'g') + "</part>\n";
    ASSERT_EQ(::write(fd, part.data(), part.size()), static_cast<ssize_t>(part.size()));
    all += part;
    // Longer than the poll interval: rescans see the file while it grows.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(Exists(Inbox("growing.xml"))) << "claimed while still open for writing";
  }
  ::close(fd);
  ledger.Accepted({Via::kWatch, "growing.xml", "growing.xml", ledger.Keep(all)});
  reliability::ExpectRunKeptPromises(*qseald_, ledger, window);
}

// The file is rewritten in processing/ after qseald accepted it (by someone who may write there,
// or a writer the lease probe could not see; a second hard link, the other way, is refused at the
// claim). The HSM is slowed down by the shim so the change lands before the seal is made. The
// seal covers the bytes accepted — the queue's copy — and never the changed ones.
TEST_F(HostileFilesTest, FileChangedAfterAcceptanceSealCoversTheAcceptedBytes) {
  StartDaemon();
  const std::string accepted_bytes = "<invoice>100.00 EUR</invoice>\n";
  const std::string changed_bytes = "<invoice>999.00 EUR</invoice>\n";
  auto count = [&](p11shim::Counter c) { return p11shim::ReadCount(shim_ + ".counts", c); };
  ASSERT_TRUE(WaitFor([&] { return count(p11shim::kSign) >= 2; }));  // the partitions' self-tests
  const std::uint64_t sign_inits = count(p11shim::kSignInit);
  p11shim::WriteConfig(shim_ + ".conf", "sign_latency_ms=1500\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the shim re-reads within 20 ms
  testing::WriteFile(outside_ + "/invoice.xml", accepted_bytes);
  ASSERT_EQ(::rename((outside_ + "/invoice.xml").c_str(), Inbox("invoice.xml").c_str()), 0);
  // Accepted: a C_SignInit for it means the engine leased it from the queue, so its bytes were
  // committed; the signature itself is held back 1.5 s by the shim.
  ASSERT_TRUE(WaitFor([&] { return count(p11shim::kSignInit) > sign_inits; }));
  ASSERT_FALSE(Sealed("invoice.xml"));
  {
    std::ofstream rewrite(root_ + "/processing/invoice.xml", std::ios::binary | std::ios::trunc);
    rewrite << changed_bytes;
  }
  // The changed file reaches failed/ last (after the seal and the accepted copy).
  ASSERT_TRUE(WaitFor([&] { return Exists(root_ + "/failed/invoice.xml"); }))
      << reliability::LogDigest(tmp_.Sub("d"));
  TempDir t;
  testing::WriteFile(t.Sub("accepted.xml"), accepted_bytes);
  testing::WriteFile(t.Sub("changed.xml"), changed_bytes);
  EXPECT_EQ(
      testing::OpensslVerify(Outbox("invoice.xml.p7s"), qseald_->ca_pem(), t.Sub("accepted.xml")),
      "");
  EXPECT_NE(
      testing::OpensslVerify(Outbox("invoice.xml.p7s"), qseald_->ca_pem(), t.Sub("changed.xml")),
      "");
  // outbox/ holds the pair that verifies: the accepted bytes (the queue's copy), not the changed
  // file, which goes to failed/ with the reason beside it.
  EXPECT_EQ(testing::ReadFile(Outbox("invoice.xml")), accepted_bytes);
  EXPECT_EQ(
      testing::OpensslVerify(Outbox("invoice.xml.p7s"), qseald_->ca_pem(), Outbox("invoice.xml")),
      "");
  EXPECT_EQ(testing::ReadFile(root_ + "/failed/invoice.xml"), changed_bytes);
  EXPECT_NE(testing::ReadFile(root_ + "/failed/invoice.xml.error.json")
                .find("changed after it was accepted"),
            std::string::npos);
  EXPECT_EQ(qseald_->Stop(), 0) << qseald_->Stderr();
}

}  // namespace
}  // namespace qseal
