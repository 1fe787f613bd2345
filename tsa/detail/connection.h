// One keep-alive HTTP/1.1 connection to a TSA (plain TCP or TLS), carrying one request at a
// time: POST application/timestamp-query, answer application/timestamp-reply.
//
// Not thread-safe; owned by the client's I/O thread, which runs every handler.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "common/bytes.h"
#include "common/status.h"

namespace qseal::tsa::detail {

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;  // path and query, at least "/"
};

// "http://host[:port]/path" or "https://..."; kInvalidArgument otherwise.
Result<Url> ParseUrl(const std::string& url);

class Connection {
 public:
  // The HTTP body of a 200 answer, or kUnavailable with what went wrong (connect, TLS, timeout,
  // HTTP status, content type).
  using Done = std::function<void(Result<Bytes>)>;

  virtual ~Connection() = default;
  // Sends `body`; connects first when not connected (or when the server closed an idle
  // connection, which is retried once on a fresh one). `timeout` bounds the whole exchange.
  // `done` runs once, on the I/O thread. One Send at a time.
  virtual void Send(Bytes body, std::chrono::milliseconds timeout, Done done) = 0;
  // Closes the socket; an exchange in flight ends with an error.
  virtual void Close() = 0;
  // True while a socket is open (a keep-alive connection may be reused).
  virtual bool is_open() const = 0;
};

// `tls` must be set for an https URL and outlive the connection.
std::shared_ptr<Connection> MakeConnection(boost::asio::io_context& io, const Url& url,
                                           boost::asio::ssl::context* tls);

}  // namespace qseal::tsa::detail
