#include "tests/testing/raw_client.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

namespace qseal::testing {

using Clock = std::chrono::steady_clock;

RawClient::RawClient(const std::string& url, const std::string& source_ip) {
  std::string address = url;
  bool tls = false;
  if (address.rfind("https://", 0) == 0) {
    address = address.substr(8);
    tls = true;
  } else if (address.rfind("http://", 0) == 0) {
    address = address.substr(7);
  }
  std::size_t colon = address.rfind(':');
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (!source_ip.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, source_ip.c_str(), &local.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  if (!tls) return;
  // OpenSSL writes with write(2), not send(MSG_NOSIGNAL): a server that closes first (what these
  // tests provoke) would kill the test with SIGPIPE instead of failing Send.
  ::signal(SIGPIPE, SIG_IGN);
  ctx_ = SSL_CTX_new(TLS_client_method());
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_);
  timeval tv{10, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (SSL_connect(ssl_) != 1) {
    ::close(fd_);
    fd_ = -1;
  }
  timeval none{0, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
}

RawClient::~RawClient() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::Send(const std::string& bytes) {
  if (fd_ < 0) return false;
  std::size_t done = 0;
  while (done < bytes.size()) {
    long n = 0;
    if (ssl_ != nullptr) {
      n = SSL_write(ssl_, bytes.data() + done, static_cast<int>(bytes.size() - done));
    } else {
      n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    }
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

void RawClient::ShutdownWrite() {
  if (fd_ < 0) return;
  if (ssl_ != nullptr) SSL_shutdown(ssl_);
  ::shutdown(fd_, SHUT_WR);
}

long RawClient::ReadSome(std::chrono::milliseconds limit) {
  char buf[8192];
  auto deadline = Clock::now() + limit;
  while (true) {
    if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
      pollfd p{fd_, POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return -1;
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    }
    long n = 0;
    if (ssl_ != nullptr) {
      n = SSL_read(ssl_, buf, sizeof(buf));
      if (n <= 0) {
        int err = SSL_get_error(ssl_, static_cast<int>(n));
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) continue;
        return 0;
      }
    } else {
      n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return 0;
    }
    received_.append(buf, static_cast<std::size_t>(n));
    return n;
  }
}

bool RawClient::ReadUntilClosed(std::chrono::milliseconds limit) {
  if (fd_ < 0) return true;
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    long n = ReadSome(std::max(left, std::chrono::milliseconds(1)));
    if (n == 0) return true;
  }
  return false;
}

const std::string& RawClient::ReadResponse(std::chrono::milliseconds limit) {
  if (fd_ < 0) return received_;
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    std::size_t end = received_.find("\r\n\r\n", consumed_);
    std::size_t cl = received_.find("Content-Length: ", consumed_);
    if (end != std::string::npos && cl != std::string::npos && cl < end) {
      std::size_t whole = end + 4 + std::stoul(received_.substr(cl + 16));
      if (received_.size() >= whole) {
        consumed_ = whole;
        break;
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (ReadSome(std::max(left, std::chrono::milliseconds(1))) == 0) break;
  }
  return received_;
}

std::size_t RawClient::Responses() const {
  std::size_t count = 0;
  for (std::size_t p = received_.find("HTTP/1."); p != std::string::npos;
       p = received_.find("HTTP/1.", p + 1)) {
    if (p == 0 || received_.compare(p - 2, 2, "\r\n") == 0) ++count;
  }
  return count;
}

int RawClient::Status() const {
  if (received_.rfind("HTTP/1.", 0) != 0 || received_.size() < 12) return 0;
  return std::stoi(received_.substr(9, 3));
}

}  // namespace qseal::testing
