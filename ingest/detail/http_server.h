// A small HTTP/1.1 server on Boost.Beast with the limits a public-facing daemon needs set
// explicitly: header size, body size (413 before the body is read), header and body timeouts,
// connection count. Bodies are streamed to a BodySink chunk by chunk, never buffered whole.
// With a certificate configured every connection is TLS (ingest/detail/tls_context.h), the
// handshake bounded by the header timeout; ReloadTls swaps the certificate for new connections
// while those already open keep theirs.
//
// The handler runs on the connection's strand (an Asio thread): it must not block. Work that
// blocks (a synced queue commit) is done elsewhere and its completion handed back through the
// Respond callback, which may be called from any thread, exactly once.
//
// HttpServer is thread-safe: Start/Stop may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include "common/bytes.h"
#include "common/mutex.h"
#include "common/status.h"
#include "ingest/detail/tls_context.h"

namespace qseal::ingest::detail {

namespace http = boost::beast::http;

using HttpResponse = http::response<http::string_body>;
using Respond = std::function<void(HttpResponse)>;
using RequestHeader = http::request_header<>;

// Receives a request body chunk by chunk. Append runs on the connection's strand and should be
// quick (a buffered file write); Finish may hand off to another thread and call `respond` later.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual Status Append(ByteSpan chunk) = 0;
  virtual void Finish(Respond respond) = 0;
  // The client went away or broke a limit: discard what was received.
  virtual void Abort() = 0;
  // The answer to a failed Append: 503 for kResourceExhausted and kUnavailable, 400 for
  // kInvalidArgument. A sink that knows better (a batch over its limits: 413) overrides it.
  virtual http::status ErrorStatus(const Status& append_error) const;
};

// A small body read into memory, up to `limit` bytes (JSON requests); over it the request is
// answered 413. `done` gets the whole body and the Respond when it has arrived.
class BufferSink : public BodySink {
 public:
  BufferSink(std::uint64_t limit, std::function<void(std::string, Respond)> done)
      : limit_(limit), done_(std::move(done)) {}
  Status Append(ByteSpan chunk) override;
  void Finish(Respond respond) override { done_(std::move(body_), std::move(respond)); }
  void Abort() override { body_.clear(); }
  http::status ErrorStatus(const Status&) const override { return http::status::payload_too_large; }

 private:
  std::uint64_t limit_;
  std::function<void(std::string, Respond)> done_;
  std::string body_;
};

// Reads the next piece of a streamed response body into `buffer`; returns how many, 0 at the end.
using BodyReader = std::function<Result<std::size_t>(std::span<std::uint8_t> buffer)>;

// What the handler decided after seeing the request header.
struct Decision {
  // Exactly one of these is set.
  std::optional<HttpResponse> response;  // answer now (errors, simple GETs)
  // With `response` only: its body is not in it but read from here while it is sent, exactly
  // body_size bytes (Content-Length), so a large body (a seal) is never held whole. A read error
  // or a short body closes the connection (the client sees a truncated body).
  BodyReader body_reader;
  std::uint64_t body_size = 0;
  std::unique_ptr<BodySink> sink;         // read the body into it, then Finish
  std::function<void(Respond)> deferred;  // answer later (e.g. ?wait)
};

// Who sent a request.
struct Peer {
  std::string address;          // the client's IP address
  std::string remote;           // "address:port"
  bool tls = false;             // the connection is TLS
  PeerCertificate certificate;  // a verified client certificate (mTLS), if one was sent
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  virtual Decision OnRequest(const RequestHeader& header, const Peer& peer) = 0;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: pick a free port (tests).
  std::uint64_t max_header_bytes = 16 << 10;
  std::uint64_t max_body_bytes = 256ull << 20;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{300'000};
  std::chrono::milliseconds write_timeout{60'000};
  std::uint32_t max_connections = 1024;
  // Open connections from one IP address; more are closed at once. 0: no limit.
  std::uint32_t max_connections_per_source = 0;
  std::uint32_t threads = 2;
  std::string server_name = "qseald";
  // TLS when tls.certificate_file is set; plaintext HTTP otherwise.
  TlsServerFiles tls;
};

// A decoded query string: parameter name to value.
using Query = std::map<std::string, std::string>;

// Decodes %XX escapes and '+' (a space). A '%' not followed by two hex digits is kept as is.
std::string UrlDecode(std::string_view s);
// Splits "a=1&b=2" (the part of a target after '?') into decoded names and values. A parameter
// without '=' has the empty value; one with an empty name is dropped; the last of a repeated name
// wins.
Query ParseQuery(std::string_view query);

// Whether a request line Beast refused as a bad version is well formed but names a version other
// than 1.0 and 1.1 ("GET / HTTP/2.0"): that is a 505, a garbled one ("HTTQ/1.1") a 400.
bool NamesOtherHttpVersion(std::string_view received);
// Whether the client asked to keep the connection open (HTTP/1.1 default, 1.0 opt-in).
bool WantsKeepAlive(const RequestHeader& req);
// Builds a response with the common headers set.
HttpResponse MakeResponse(http::status status, const RequestHeader& req, std::string body,
                          std::string content_type);
// An RFC 9457 problem+json response: {"type","title","status","detail"}.
HttpResponse MakeProblem(http::status status, const RequestHeader& req, std::string_view detail);
// A problem response telling the client to come back: MakeProblem plus Retry-After.
HttpResponse MakeRetryLater(http::status status, const RequestHeader& req, std::string_view detail,
                            std::uint32_t retry_after_seconds);
// A Decision that answers at once with `res`.
Decision Answer(HttpResponse res);
// A Decision that answers at once with `head` (status and fields) and a body of `size` bytes read
// from `reader`.
Decision AnswerStreamed(HttpResponse head, std::uint64_t size, BodyReader reader);

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler* handler);
  ~HttpServer();

  // Builds the TLS context (when configured), binds and starts the threads. kInvalidArgument when
  // the TLS files are unusable, kUnavailable when the address cannot be bound.
  Status Start();
  // Reads the TLS files again and serves the new certificate to connections accepted from now
  // on; open connections are not touched. On error the current certificate stays in use.
  // kFailedPrecondition when the server has no TLS.
  Status ReloadTls();
  // The bound port (after Start).
  std::uint16_t port() const { return port_; }
  // Stops accepting, closes connections, joins the threads. Idempotent.
  void Stop();

  std::uint64_t connections() const { return connections_.load(); }

 private:
  template <typename Stream>
  class Connection;
  void Accept();
  std::shared_ptr<boost::asio::ssl::context> TlsContext() const;
  // Counts a connection from `source` against max_connections_per_source; false when over it.
  bool AdmitSource(const std::string& source);
  void ReleaseSource(const std::string& source);

  HttpServerOptions options_;
  HttpHandler* handler_;
  // Declared before io_: connections still queued in io_ touch them while io_ is destroyed.
  std::atomic<std::uint64_t> connections_{0};
  std::atomic<bool> stopped_{false};
  Mutex sources_mu_;
  std::map<std::string, std::uint32_t> open_per_source_ QSEAL_GUARDED_BY(sources_mu_);
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  mutable Mutex tls_mu_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_ QSEAL_GUARDED_BY(tls_mu_);
};

}  // namespace qseal::ingest::detail
