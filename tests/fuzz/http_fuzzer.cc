// Fuzzes the HTTP door end to end in one process: the input is written as raw bytes to a real
// ApiServer (Beast parser, our limits and timeouts, routing, authentication, body streaming into a
// real RocksDB queue) over a loopback socket, then the write side is closed and the answer read.
// Besides crashes, leaks and sanitizer reports it checks that the server answers or closes within
// a bound (no request can wedge a connection) and that nothing is accepted (202) without the
// bearer token: no byte sequence leads past authentication.
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/sha.h>

#include "common/log.h"
#include "ingest/api_server.h"
#include "queue/queue.h"

namespace {

constexpr std::string_view kToken = "fuzz-token-0123456789";

// A system call's errno is printed: "connect: Cannot assign requested address" is the client
// running out of ports, not a server fault.
void Die(const char* what, int err = 0) {
  if (err != 0) {
    std::fprintf(stderr, "http_fuzzer: %s: %s\n", what, std::strerror(err));
  } else {
    std::fprintf(stderr, "http_fuzzer: %s\n", what);
  }
  std::abort();
}

// One server for the whole run; removed at exit.
class Server {
 public:
  Server() {
    // Refusals are the common case here; their warnings would bury a crash report in CI's log.
    qseal::SetLogLevel(qseal::LogLevel::kError);
    char dir[] = "/tmp/qseal-http-fuzzer-XXXXXX";
    if (::mkdtemp(dir) == nullptr) Die("mkdtemp");
    dir_ = dir;
    qseal::queue::QueueOptions qo;
    qo.path = dir_ + "/queue";
    qo.retention_sweep_interval = std::chrono::milliseconds(0);
    auto q = qseal::queue::Queue::Open(qo);
    if (!q.ok()) Die("cannot open the queue");
    queue_ = std::move(*q);

    qseal::ingest::ApiServerOptions o;
    o.port = 0;
    o.max_header_bytes = 4 << 10;
    o.max_body_bytes = 64 << 10;
    o.header_timeout = std::chrono::milliseconds(2000);
    o.body_timeout = std::chrono::milliseconds(2000);
    o.max_wait = std::chrono::milliseconds(5);
    o.commit_threads = 2;
    unsigned char hash[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(kToken.data()), kToken.size(), hash);
    o.clients.push_back({"fuzz", qseal::Bytes(hash, hash + sizeof(hash)), {"default"}, "", {}});
    o.clients.push_back({"other", qseal::Bytes(32, 0x42), {"*"}, "", {}});
    o.profiles.push_back({"default", "cades-detached", "sha256", "ecdsa", "-----PEM-----\n"});
    o.profiles.push_back({"other", "cades-enveloping", "sha256", "ecdsa", "-----PEM-----\n"});
    api_ = std::make_unique<qseal::ingest::ApiServer>(o, queue_.get(),
                                                      [] { return qseal::Status::Ok(); });
    if (!api_->Start().ok()) Die("cannot start the API server");
    port_ = api_->port();
  }
  ~Server() {
    api_->Stop();
    api_.reset();
    queue_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::uint16_t port() const { return port_; }

 private:
  std::string dir_;
  std::unique_ptr<qseal::queue::Queue> queue_;
  std::unique_ptr<qseal::ingest::ApiServer> api_;
  std::uint16_t port_ = 0;
};

Server& TheServer() {
  static Server server;
  return server;
}

// Sends `request`, closes the write side, returns everything the server sent until it closed.
std::string Exchange(std::uint16_t port, std::string_view request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket", errno);
  // Each exchange leaves a TIME_WAIT entry on this side (it shuts down first) for 60 s; at ~1 000
  // exchanges a second one source address runs out of its 28 000 ports. Rotating over 200
  // loopback sources gives each exchange a fresh 4-tuple.
  static std::uint32_t exchanges = 0;
  sockaddr_in source{};
  source.sin_family = AF_INET;
  source.sin_addr.s_addr = htonl((127u << 24) | (2u << 8) | (1u + exchanges++ % 200));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof(source)) != 0) Die("bind", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    // libFuzzer's -timeout timer (SIGALRM each second) interrupts a connect that waits for the
    // listener's backlog: the connection goes on, so wait for it instead of failing.
    if (errno != EINTR) Die("connect", errno);
    pollfd p{fd, POLLOUT, 0};
    int ready;
    do {
      ready = ::poll(&p, 1, 10'000);
    } while (ready < 0 && errno == EINTR);
    int err = 0;
    socklen_t len = sizeof(err);
    if (ready != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      Die("connect", ready == 1 ? err : ETIMEDOUT);
    }
  }
  // Longer than the server's header and body timeouts: a connection still open after this is
  // wedged.
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server answered early (413, 401) and closed: fine
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string response;
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) Die("the server neither answered nor closed");
      break;  // reset by the server: fine
    }
    response.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return response;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view request(reinterpret_cast<const char*>(data), size);
  std::string response = Exchange(TheServer().port(), request);
  // Every answer is HTTP/1.x.
  if (!response.empty() && response.rfind("HTTP/1.", 0) != 0) Die("an answer that is not HTTP");
  // Acceptance needs the token: 202 is only ever the answer to an authenticated submission.
  if (request.find(kToken) == std::string_view::npos &&
      response.find(" 202 Accepted\r\n") != std::string::npos) {
    Die("a document was accepted without the bearer token");
  }
  return 0;
}
