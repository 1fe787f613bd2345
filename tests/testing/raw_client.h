// A raw client connection for tests that control every byte sent (hostile HTTP, smuggling
// shapes): plaintext for "host:port" or "http://host:port", TLS for "https://host:port". Over TLS
// the server certificate is not checked (the test is the attacker, not a client to protect) and
// the bytes go through the TLS layer exactly as given.
//
// Blocking with deadlines; test-only; not thread-safe (one thread per RawClient).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace qseal::testing {

class RawClient {
 public:
  // Connects (and for https completes the handshake) within 10 s; see connected(). With
  // `source_ip` (e.g. "127.0.0.2") the connection comes from that local address.
  explicit RawClient(const std::string& url, const std::string& source_ip = "");
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  // False once the server closed or reset the connection.
  bool Send(const std::string& bytes);
  // Ends the request stream: TCP half-close, after a TLS close_notify over TLS.
  void ShutdownWrite();
  // Reads until the server closes (or resets) the connection or `limit` passes; true when closed.
  bool ReadUntilClosed(std::chrono::milliseconds limit);
  // Reads until the next whole response with a Content-Length (after those an earlier call
  // returned) has arrived, the server closes, or `limit` passes; returns all that was received.
  const std::string& ReadResponse(std::chrono::milliseconds limit);
  const std::string& received() const { return received_; }
  // Number of HTTP responses in what was received.
  std::size_t Responses() const;
  // The status code of the first response, 0 when none.
  int Status() const;

 private:
  // One read of whatever is available within `limit`: >0 bytes appended, 0 closed, -1 timeout.
  long ReadSome(std::chrono::milliseconds limit);

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string received_;
  std::size_t consumed_ = 0;  // end of the responses ReadResponse has returned
};

}  // namespace qseal::testing
