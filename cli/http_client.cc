#include "cli/http_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <cctype>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/query.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace qseal::cli {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {

constexpr const char* kLocalFile = "local file ";

Status LocalFileError(const std::string& path, const beast::error_code& ec) {
  std::string msg = std::string(kLocalFile) + path + ": " + ec.message();
  if (ec == beast::errc::no_such_file_or_directory) return NotFoundError(msg);
  if (ec == beast::errc::permission_denied) return PermissionDeniedError(msg);
  return UnavailableError(msg);
}

template <typename Body>
HttpReply ToReply(http::response<Body>& res) {
  HttpReply reply;
  reply.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    reply.headers[name] = std::string(f.value());
  }
  return reply;
}

}  // namespace

bool IsLocalFileError(const Status& status) {
  return !status.ok() && status.message().rfind(kLocalFile, 0) == 0;
}

struct HttpClient::Connection {
  net::io_context io;
  std::optional<beast::tcp_stream> stream;
  std::chrono::steady_clock::time_point last_used;

  // A connection idle longer than this is not reused: servers close idle connections (qseald
  // after its header_timeout, 10 s by default) and a request must not race that close.
  static constexpr std::chrono::seconds kMaxIdle{2};

  // True when the kept connection can carry the next request: open, recently used, and the
  // server has neither closed it nor sent anything unasked (either shows as readable).
  bool Reusable() {
    if (!stream || !stream->socket().is_open()) return false;
    if (std::chrono::steady_clock::now() - last_used > kMaxIdle) return false;
    pollfd p{stream->socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
  void Close() {
    if (!stream) return;
    beast::error_code ec;
    stream->socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    stream->socket().close(ec);
    stream.reset();
  }
};

HttpClient::~HttpClient() {
  if (conn_) conn_->Close();
}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

HttpClient::HttpClient(std::string server, std::string token, std::chrono::milliseconds timeout)
    : token_(std::move(token)), timeout_(timeout), conn_(std::make_unique<Connection>()) {
  if (server.rfind("http://", 0) == 0) server = server.substr(7);
  while (!server.empty() && server.back() == '/') server.pop_back();
  std::size_t colon = server.rfind(':');
  bool bracketed_v6 = !server.empty() && server.back() == ']';
  host_ = colon == std::string::npos || bracketed_v6 ? server : server.substr(0, colon);
  port_ = colon == std::string::npos || bracketed_v6 ? "8440" : server.substr(colon + 1);
  if (host_.size() >= 2 && host_.front() == '[' && host_.back() == ']') {
    host_ = host_.substr(1, host_.size() - 2);
  }
}

namespace {

// Runs one asynchronous operation on `stream` to its end and throws its error. Asynchronous
// because beast::tcp_stream's expiry bounds asynchronous operations only: this is what makes the
// client's timeout a deadline for the whole exchange (a server that accepts and never answers).
template <typename Initiate>
void Await(beast::tcp_stream& stream, Initiate initiate) {
  auto& io =
      static_cast<net::io_context&>(net::query(stream.get_executor(), net::execution::context));
  beast::error_code result;
  initiate([&result](beast::error_code ec, auto&&...) { result = ec; });
  io.restart();
  io.run();
  if (result) throw boost::system::system_error(result);
}

// True for the errors of a connection the peer closed (or reset) under us.
bool IsClosedByPeer(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::error::connection_aborted;
}

// One exchange on `conn` (reused when it can be, else a new connection): write `req`, read the
// header, then let `on_header` read the body; `on_header` sets `*reusable` when it read the
// whole reply and the connection may carry another request. `*stale` is set when a reused
// connection turned out closed by the server before a byte of the reply came: the server then
// never read the request (it closes idle connections between requests), so the caller sends it
// once more on a new connection.
template <typename Conn, typename RequestBody, typename OnHeader>
Result<HttpReply> Exchange(Conn& conn, const std::string& host, const std::string& port,
                           std::chrono::milliseconds timeout, http::request<RequestBody>& req,
                           OnHeader on_header, bool* stale) {
  bool reusable = false;
  bool reused = conn.Reusable();
  beast::flat_buffer buffer;
  try {
    if (!reused) {
      conn.Close();
      net::ip::tcp::resolver resolver(conn.io);
      conn.stream.emplace(conn.io);
      auto endpoints = resolver.resolve(host, port);
      conn.stream->expires_after(timeout);
      Await(*conn.stream, [&](auto handler) { conn.stream->async_connect(endpoints, handler); });
    }
    beast::tcp_stream& stream = *conn.stream;
    stream.expires_after(timeout);
    Await(stream, [&](auto handler) { http::async_write(stream, req, handler); });
    http::response_parser<http::empty_body> header_parser;
    header_parser.body_limit(std::uint64_t{1} << 40);
    Await(stream,
          [&](auto handler) { http::async_read_header(stream, buffer, header_parser, handler); });
    Result<HttpReply> reply = on_header(stream, buffer, header_parser, &reusable);
    // Bytes beyond the reply (pipelining is not used) would desynchronise the next exchange.
    if (!reusable || buffer.size() != 0 || !req.keep_alive()) {
      conn.Close();
    } else {
      conn.last_used = std::chrono::steady_clock::now();
    }
    return reply;
  } catch (const boost::system::system_error& e) {
    conn.Close();
    *stale = reused && buffer.size() == 0 && IsClosedByPeer(e.code());
    return UnavailableError("cannot reach qseald at " + host + ":" + port + ": " + e.what());
  } catch (const std::exception& e) {
    conn.Close();
    return UnavailableError("cannot reach qseald at " + host + ":" + port + ": " + e.what());
  }
}

// Reads the rest of the reply into memory.
Result<HttpReply> ReadStringBody(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                 http::response_parser<http::empty_body>& header_parser,
                                 bool* reusable) {
  http::response_parser<http::string_body> parser(std::move(header_parser));
  parser.body_limit(std::uint64_t{64} << 20);
  Await(stream, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
  auto& res = parser.get();
  *reusable = parser.is_done() && res.keep_alive();
  HttpReply reply = ToReply(res);
  reply.body = std::move(res.body());
  return reply;
}

}  // namespace

Result<HttpReply> HttpClient::Request(const std::string& method, const std::string& target,
                                      const std::string& body,
                                      const std::map<std::string, std::string>& headers) {
  for (int attempt = 0;; ++attempt) {
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, host_);
    req.set(http::field::user_agent, "qsealctl");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    bool stale = false;
    Result<HttpReply> reply = Exchange(*conn_, host_, port_, timeout_, req, ReadStringBody, &stale);
    if (!stale || attempt > 0) return reply;
  }
}

Result<HttpReply> HttpClient::UploadFile(const std::string& method, const std::string& target,
                                         const std::string& path,
                                         const std::map<std::string, std::string>& headers) {
  for (int attempt = 0;; ++attempt) {
    // Built afresh for a second attempt: the file is read again from its start.
    http::request<http::file_body> req(http::string_to_verb(method), target, 11);
    beast::error_code ec;
    req.body().open(path.c_str(), beast::file_mode::scan, ec);
    if (ec) return LocalFileError(path, ec);
    req.set(http::field::host, host_);
    req.set(http::field::user_agent, "qsealctl");
    req.set(http::field::content_type, "application/octet-stream");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.prepare_payload();
    bool stale = false;
    Result<HttpReply> reply = Exchange(*conn_, host_, port_, timeout_, req, ReadStringBody, &stale);
    if (!stale || attempt > 0) return reply;
  }
}

Result<HttpReply> HttpClient::Download(const std::string& target, const std::string& path) {
  for (int attempt = 0;; ++attempt) {
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, host_);
    req.set(http::field::user_agent, "qsealctl");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    req.prepare_payload();
    bool stale = false;
    Result<HttpReply> reply = Exchange(
        *conn_, host_, port_, timeout_, req,
        [&](beast::tcp_stream& stream, beast::flat_buffer& buffer,
            http::response_parser<http::empty_body>& header_parser,
            bool* reusable) -> Result<HttpReply> {
          if (header_parser.get().result_int() != 200) {
            return ReadStringBody(stream, buffer, header_parser, reusable);
          }
          http::response_parser<http::file_body> parser(std::move(header_parser));
          parser.body_limit(std::uint64_t{1} << 40);
          beast::error_code ec;
          parser.get().body().open(path.c_str(), beast::file_mode::write, ec);
          if (ec) return LocalFileError(path, ec);
          Await(stream, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
          *reusable = parser.is_done() && parser.get().keep_alive();
          return ToReply(parser.get());
        },
        &stale);
    if (!stale || attempt > 0) return reply;
  }
}

}  // namespace qseal::cli
