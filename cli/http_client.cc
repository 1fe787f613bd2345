#include "cli/http_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <cctype>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace qseal::cli {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

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
  std::optional<beast::tcp_stream> stream;  // plaintext
  std::optional<TlsStream> tls_stream;      // HTTPS
  std::shared_ptr<ssl::context> tls_context;
  std::chrono::steady_clock::time_point last_used;

  // A connection idle longer than this is not reused: servers close idle connections (qseald
  // after its header_timeout, 10 s by default) and a request must not race that close.
  static constexpr std::chrono::seconds kMaxIdle{2};

  bool Open() const { return stream.has_value() || tls_stream.has_value(); }
  beast::tcp_stream& Lowest() {
    return tls_stream ? beast::get_lowest_layer(*tls_stream) : *stream;
  }

  // True when the kept connection can carry the next request: open, recently used, and the
  // server has neither closed it nor sent anything unasked (either shows as readable).
  bool Reusable() {
    if (!Open() || !Lowest().socket().is_open()) return false;
    if (std::chrono::steady_clock::now() - last_used > kMaxIdle) return false;
    pollfd p{Lowest().socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
  void Close() {
    if (!Open()) return;
    beast::error_code ec;
    Lowest().socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    Lowest().socket().close(ec);
    stream.reset();
    tls_stream.reset();
  }
};

HttpClient::~HttpClient() {
  if (conn_) conn_->Close();
}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

HttpClient::HttpClient(std::string server, std::string token, std::chrono::milliseconds timeout,
                       TlsClientFiles tls)
    : tls_files_(std::move(tls)),
      token_(std::move(token)),
      timeout_(timeout),
      conn_(std::make_unique<Connection>()) {
  if (server.rfind("http://", 0) == 0) server = server.substr(7);
  if (server.rfind("https://", 0) == 0) {
    server = server.substr(8);
    tls_ = true;
  }
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
template <typename Stream, typename Initiate>
void Await(Stream& stream, Initiate initiate) {
  auto& io =
      static_cast<net::io_context&>(net::query(stream.get_executor(), net::execution::context));
  beast::error_code result;
  initiate([&result](beast::error_code ec, auto&&...) { result = ec; });
  io.restart();
  io.run();
  if (result) throw boost::system::system_error(result);
}

// OpenSSL's reason for the last failure, for a message.
std::string TlsError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// The client context: TLS 1.2 minimum, the peer verified against the CA file (or the system's
// store), the client certificate when given. A bad file is a local file error (exit 74).
Result<std::shared_ptr<ssl::context>> MakeClientContext(const TlsClientFiles& files) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* raw = ctx->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  if (!files.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(raw, files.ca_file.c_str(), nullptr) != 1) {
      return NotFoundError(std::string(kLocalFile) + files.ca_file + ": " + TlsError());
    }
  } else {
    SSL_CTX_set_default_verify_paths(raw);
  }
  if (!files.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(raw, files.cert_file.c_str()) != 1) {
      return NotFoundError(std::string(kLocalFile) + files.cert_file + ": " + TlsError());
    }
    const std::string& key = files.key_file.empty() ? files.cert_file : files.key_file;
    if (SSL_CTX_use_PrivateKey_file(raw, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(raw) != 1) {
      return NotFoundError(std::string(kLocalFile) + key + ": " + TlsError());
    }
  }
  return ctx;
}

// A request is sent as several writes (header, body, TLS records): without TCP_NODELAY the
// second waits for the server's delayed ACK on a kept-alive connection (up to 40 ms).
void SetNoDelay(net::ip::tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.set_option(net::ip::tcp::no_delay(true), ignored);
}

// Connects `conn` afresh: TCP, then for HTTPS the handshake with the name check (an IP literal
// is matched against the certificate's IP addresses, a name against its DNS names).
template <typename Conn>
void Connect(Conn& conn, const std::string& host, const std::string& port,
             std::chrono::milliseconds timeout, bool tls) {
  net::ip::tcp::resolver resolver(conn.io);
  auto endpoints = resolver.resolve(host, port);
  if (!tls) {
    conn.stream.emplace(conn.io);
    conn.stream->expires_after(timeout);
    Await(*conn.stream, [&](auto handler) { conn.stream->async_connect(endpoints, handler); });
    SetNoDelay(conn.stream->socket());
    return;
  }
  conn.tls_stream.emplace(conn.io, *conn.tls_context);
  beast::tcp_stream& lowest = beast::get_lowest_layer(*conn.tls_stream);
  lowest.expires_after(timeout);
  Await(lowest, [&](auto handler) { lowest.async_connect(endpoints, handler); });
  SetNoDelay(lowest.socket());
  SSL* ssl = conn.tls_stream->native_handle();
  boost::system::error_code ec;
  net::ip::make_address(host, ec);
  if (!ec) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    // SSL_set_tlsext_host_name, without the macro's C cast.
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(host.c_str()));
    SSL_set1_host(ssl, host.c_str());
  }
  Await(*conn.tls_stream,
        [&](auto handler) { conn.tls_stream->async_handshake(ssl::stream_base::client, handler); });
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
                           std::chrono::milliseconds timeout, bool tls,
                           http::request<RequestBody>& req, OnHeader on_header, bool* stale) {
  bool reusable = false;
  bool reused = conn.Reusable();
  beast::flat_buffer buffer;
  try {
    if (!reused) {
      conn.Close();
      Connect(conn, host, port, timeout, tls);
    }
    auto run = [&](auto& stream) -> Result<HttpReply> {
      beast::get_lowest_layer(stream).expires_after(timeout);
      Await(stream, [&](auto handler) { http::async_write(stream, req, handler); });
      http::response_parser<http::empty_body> header_parser;
      header_parser.body_limit(std::uint64_t{1} << 40);
      Await(stream,
            [&](auto handler) { http::async_read_header(stream, buffer, header_parser, handler); });
      return on_header(stream, buffer, header_parser, &reusable);
    };
    Result<HttpReply> reply = conn.tls_stream ? run(*conn.tls_stream) : run(*conn.stream);
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
template <typename Stream>
Result<HttpReply> ReadStringBody(Stream& stream, beast::flat_buffer& buffer,
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

// ReadStringBody as a callable for Exchange.
constexpr auto kReadStringBody = [](auto& stream, beast::flat_buffer& buffer,
                                    http::response_parser<http::empty_body>& header_parser,
                                    bool* reusable) {
  return ReadStringBody(stream, buffer, header_parser, reusable);
};

}  // namespace

Status HttpClient::PrepareTls() {
  if (!tls_ || conn_->tls_context) return Status::Ok();
  QSEAL_ASSIGN_OR_RETURN(conn_->tls_context, MakeClientContext(tls_files_));
  return Status::Ok();
}

Result<HttpReply> HttpClient::Request(const std::string& method, const std::string& target,
                                      const std::string& body,
                                      const std::map<std::string, std::string>& headers) {
  QSEAL_RETURN_IF_ERROR(PrepareTls());
  for (int attempt = 0;; ++attempt) {
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, host_);
    req.set(http::field::user_agent, "qsealctl");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    bool stale = false;
    Result<HttpReply> reply =
        Exchange(*conn_, host_, port_, timeout_, tls_, req, kReadStringBody, &stale);
    if (!stale || attempt > 0) return reply;
  }
}

Result<HttpReply> HttpClient::UploadFile(const std::string& method, const std::string& target,
                                         const std::string& path,
                                         const std::map<std::string, std::string>& headers) {
  QSEAL_RETURN_IF_ERROR(PrepareTls());
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
    Result<HttpReply> reply =
        Exchange(*conn_, host_, port_, timeout_, tls_, req, kReadStringBody, &stale);
    if (!stale || attempt > 0) return reply;
  }
}

Result<HttpReply> HttpClient::Download(const std::string& target, const std::string& path) {
  QSEAL_RETURN_IF_ERROR(PrepareTls());
  for (int attempt = 0;; ++attempt) {
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, host_);
    req.set(http::field::user_agent, "qsealctl");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    req.prepare_payload();
    bool stale = false;
    Result<HttpReply> reply = Exchange(
        *conn_, host_, port_, timeout_, tls_, req,
        [&](auto& stream, beast::flat_buffer& buffer,
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
