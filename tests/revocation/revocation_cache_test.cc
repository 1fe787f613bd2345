// revocation::RevocationCache against real answers: a test CA made with the openssl CLI, its CRL
// made by `openssl ca -gencrl` and served over loopback HTTP, its OCSP responder `openssl ocsp`.
// What the cache returns is checked by openssl again (`openssl crl -CAfile`, `openssl ocsp
// -respin`), not only by the cache's own checks.
#include "revocation/revocation_cache.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include "tests/testing/qseald_harness.h"
#include "tests/testing/testing.h"

namespace qseal::revocation {
namespace {

using testing::RunCommand;
using testing::ShellQuote;

// Serves one file over HTTP/1.0 on 127.0.0.1 to every request (a CRL distribution point).
class FileServer {
 public:
  explicit FileServer(std::string path) : path_(std::move(path)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FileServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  int requests() const { return requests_; }

 private:
  void Serve() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      std::string request;
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      requests_++;
      const std::string body = testing::ReadFile(path_);
      const std::string answer =
          "HTTP/1.0 200 OK\r\nContent-Type: application/pkix-crl\r\n"
          "Content-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body;
      std::size_t sent = 0;
      while (sent < answer.size()) {
        ssize_t n = write(c, answer.data() + sent, answer.size() - sent);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
      close(c);
    }
  }

  std::string path_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// A CA (with the openssl ca database) and leaf certificates issued with given extensions.
class RevocationCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.Sub("");
    Run("mkdir -p " + Q(dir_ + "/new") + " && touch " + Q(dir_ + "/index.txt") +
        " && echo 1000 > " + Q(dir_ + "/crlnumber") + " && echo 01 > " + Q(dir_ + "/serial"));
    testing::WriteFile(dir_ + "/ca.cnf",
                       "[ca]\ndefault_ca = test\n[test]\ndir = " + dir_ +
                           "\ndatabase = $dir/index.txt\nnew_certs_dir = $dir/new\n"
                           "certificate = $dir/ca.pem\nprivate_key = $dir/ca.key\n"
                           "crlnumber = $dir/crlnumber\nserial = $dir/serial\ndefault_md = sha256\n"
                           "default_crl_days = 1\ndefault_days = 30\npolicy = any\n"
                           "unique_subject = no\n[any]\ncommonName = supplied\n");
    Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
        Q(dir_ + "/ca.key") + " -out " + Q(dir_ + "/ca.pem") +
        " -days 30 -subj '/CN=revocation test CA' -addext basicConstraints=critical,CA:TRUE"
        " -addext keyUsage=critical,keyCertSign,cRLSign");
  }

  std::string Q(const std::string& s) { return ShellQuote(s); }
  void Run(const std::string& cmd) {
    testing::CommandResult r = RunCommand(cmd + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
  }

  // Issues `name`.pem through `openssl ca` (so the database knows it) with `extensions`.
  void Issue(const std::string& name, const std::string& extensions) {
    testing::WriteFile(dir_ + "/" + name + ".ext",
                       "keyUsage=critical,digitalSignature,nonRepudiation\n" + extensions);
    Run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
        Q(dir_ + "/" + name + ".key") + " -out " + Q(dir_ + "/" + name + ".csr") + " -subj " +
        Q("/CN=" + name));
    Run("openssl ca -batch -config " + Q(dir_ + "/ca.cnf") + " -in " +
        Q(dir_ + "/" + name + ".csr") + " -out " + Q(dir_ + "/" + name + ".pem") + " -extfile " +
        Q(dir_ + "/" + name + ".ext") + " -notext");
  }
  void GenCrl() {
    Run("openssl ca -batch -config " + Q(dir_ + "/ca.cnf") + " -gencrl -out " +
        Q(dir_ + "/ca.crl.pem") + " && openssl crl -in " + Q(dir_ + "/ca.crl.pem") +
        " -outform DER -out " + Q(dir_ + "/ca.crl"));
  }
  Bytes Der(const std::string& name) {
    testing::CommandResult r = RunCommand("openssl x509 -in " + Q(dir_ + "/" + name + ".pem") +
                                          " -outform DER -out " + Q(dir_ + "/" + name + ".der"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::string der = testing::ReadFile(dir_ + "/" + name + ".der");
    return Bytes(der.begin(), der.end());
  }
  RevocationOptions Options(const std::string& leaf) {
    RevocationOptions o;
    o.name = "seal";
    o.chain_der = {Der(leaf), Der("ca")};
    o.retry_interval = std::chrono::milliseconds(100);
    o.fetch_timeout = std::chrono::seconds(2);
    return o;
  }
  // Waits for Current() to leave kUnavailable "not fetched yet"; returns its last answer.
  Result<std::shared_ptr<const formats::ValidationData>> WaitForAnswer(const RevocationCache& c,
                                                                       int min_attempts = 1) {
    testing::WaitFor(
        [&] {
          RevocationStats s = c.Stats();
          return s.fetches + s.fetch_errors >= static_cast<std::uint64_t>(min_attempts);
        },
        std::chrono::seconds(20), std::chrono::milliseconds(20));
    return c.Current();
  }

  testing::TempDir tmp_;
  std::string dir_;
};

TEST_F(RevocationCacheTest, CrlDistributionPointGivesTheCrlThatOpensslVerifies) {
  GenCrl();
  FileServer crl_server(dir_ + "/ca.crl");
  ASSERT_GT(crl_server.port(), 0);
  Issue("leaf", "crlDistributionPoints=URI:http://127.0.0.1:" + std::to_string(crl_server.port()) +
                    "/ca.crl\n");
  GenCrl();  // the same CA's CRL, leaf not in it
  Result<std::unique_ptr<RevocationCache>> cache = RevocationCache::Create(Options("leaf"));
  ASSERT_TRUE(cache.ok()) << cache.status();
  (*cache)->Start();
  auto data = WaitForAnswer(**cache);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ((*data)->crls.size(), 1u);
  EXPECT_TRUE((*data)->ocsp_responses.empty());
  EXPECT_GE(crl_server.requests(), 1);
  // What the cache keeps is the CA's CRL: openssl verifies it against the CA.
  testing::WriteFile(dir_ + "/got.crl",
                     std::string((*data)->crls[0].begin(), (*data)->crls[0].end()));
  testing::CommandResult v = RunCommand("openssl crl -inform DER -in " + Q(dir_ + "/got.crl") +
                                        " -CAfile " + Q(dir_ + "/ca.pem") + " -noout 2>&1");
  EXPECT_NE(v.output.find("verify OK"), std::string::npos) << v.output;
  RevocationStats s = (*cache)->Stats();
  EXPECT_TRUE(s.current);
  EXPECT_GT(s.seconds_to_expiry, 3600);  // default_crl_days = 1: nextUpdate a day ahead
}

TEST_F(RevocationCacheTest, ALeafListedInTheCrlIsRevoked) {
  FileServer crl_server(dir_ + "/ca.crl");
  Issue("leaf", "crlDistributionPoints=URI:http://127.0.0.1:" + std::to_string(crl_server.port()) +
                    "/ca.crl\n");
  Run("openssl ca -batch -config " + Q(dir_ + "/ca.cnf") + " -revoke " + Q(dir_ + "/leaf.pem") +
      " -crl_reason keyCompromise");
  GenCrl();
  Result<std::unique_ptr<RevocationCache>> cache = RevocationCache::Create(Options("leaf"));
  ASSERT_TRUE(cache.ok()) << cache.status();
  (*cache)->Start();
  auto data = WaitForAnswer(**cache);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), StatusCode::kFailedPrecondition) << data.status();
  EXPECT_NE(data.status().message().find("revoked"), std::string::npos) << data.status();
  EXPECT_TRUE((*cache)->Stats().revoked);
}

TEST_F(RevocationCacheTest, OcspAnswerIsPreferredAndOpensslAcceptsIt) {
  const int port = testing::FreeLoopbackPort();
  ASSERT_GT(port, 0);
  FileServer crl_server(dir_ + "/ca.crl");
  Issue("leaf", "authorityInfoAccess=OCSP;URI:http://127.0.0.1:" + std::to_string(port) +
                    "/\ncrlDistributionPoints=URI:http://127.0.0.1:" +
                    std::to_string(crl_server.port()) + "/ca.crl\n");
  GenCrl();
  testing::ChildProcess responder;
  ASSERT_TRUE(responder
                  .Start({"/usr/bin/openssl", "ocsp", "-index", dir_ + "/index.txt", "-port",
                          std::to_string(port), "-rsigner", dir_ + "/ca.pem", "-rkey",
                          dir_ + "/ca.key", "-CA", dir_ + "/ca.pem", "-nmin", "10"},
                         dir_ + "/ocsp.log")
                  .ok());
  ASSERT_NE(responder.WaitForLine("waiting for OCSP client", std::chrono::seconds(10)), "");
  Result<std::unique_ptr<RevocationCache>> cache = RevocationCache::Create(Options("leaf"));
  ASSERT_TRUE(cache.ok()) << cache.status();
  (*cache)->Start();
  auto data = WaitForAnswer(**cache);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ((*data)->ocsp_responses.size(), 1u);
  EXPECT_TRUE((*data)->crls.empty());
  EXPECT_EQ(crl_server.requests(), 0);  // OCSP answered: the CRL is not fetched
  const Bytes& r = (*data)->ocsp_responses[0];
  EXPECT_EQ(testing::OpensslOcspCheck(std::string(r.begin(), r.end()), dir_ + "/ca.pem",
                                      dir_ + "/leaf.pem", dir_ + "/got.ocsp"),
            "");
  // -nmin 10: current for about ten minutes, refreshed halfway.
  const double expiry = (*cache)->Stats().seconds_to_expiry;
  EXPECT_GT(expiry, 500);
  EXPECT_LT(expiry, 601);
  responder.Signal(SIGTERM);
}

TEST_F(RevocationCacheTest, WithoutAnAnswerTheReasonIsGivenAndRetried) {
  Issue("leaf", "authorityInfoAccess=OCSP;URI:http://127.0.0.1:" +
                    std::to_string(testing::FreeLoopbackPort()) + "/\n");
  // OpenSSL's client retries a refused connect until the timeout: 1 s per attempt here.
  RevocationOptions o = Options("leaf");
  o.fetch_timeout = std::chrono::seconds(1);
  Result<std::unique_ptr<RevocationCache>> cache = RevocationCache::Create(o);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ((*cache)->Current().status().code(), StatusCode::kUnavailable);  // not started
  (*cache)->Start();
  auto data = WaitForAnswer(**cache, 3);  // retried every 100 ms
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), StatusCode::kUnavailable) << data.status();
  EXPECT_NE(data.status().message().find("CN=leaf"), std::string::npos) << data.status();
  EXPECT_GE((*cache)->Stats().fetch_errors, 3u);
  EXPECT_FALSE((*cache)->Stats().current);
}

TEST_F(RevocationCacheTest, ChainsItCannotCheckAreRefusedAtCreation) {
  Issue("plain", "");
  Issue("leaf", "authorityInfoAccess=OCSP;URI:http://127.0.0.1:1/\n");
  RevocationOptions no_root = Options("leaf");
  no_root.chain_der.pop_back();
  auto a = RevocationCache::Create(no_root);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("self-signed root"), std::string::npos) << a.status();
  auto b = RevocationCache::Create(Options("plain"));
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("names neither"), std::string::npos) << b.status();
  RevocationOptions swapped = Options("leaf");
  swapped.chain_der = {Der("leaf"), Der("plain"), Der("ca")};
  auto c = RevocationCache::Create(swapped);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("is not issued by"), std::string::npos) << c.status();
}

}  // namespace
}  // namespace qseal::revocation
