#include "ingest/detail/http_server.h"

#include <array>
#include <thread>
#include <type_traits>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <nlohmann/json.hpp>

#include "common/log.h"

namespace qseal::ingest::detail {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

std::string UrlDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      if (Result<Bytes> byte = HexDecode(s.substr(i + 1, 2)); byte.ok()) {
        out += static_cast<char>((*byte)[0]);
        i += 2;
        continue;
      }
    }
    out += s[i] == '+' ? ' ' : s[i];
  }
  return out;
}

Query ParseQuery(std::string_view query) {
  Query out;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    std::size_t eq = part.find('=');
    std::string key = UrlDecode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : UrlDecode(part.substr(eq + 1));
    if (!key.empty()) out[key] = value;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

bool NamesOtherHttpVersion(std::string_view received) {
  std::size_t eol = received.find("\r\n");
  if (eol == std::string_view::npos) return false;
  std::string_view line = received.substr(0, eol);
  constexpr std::string_view kSuffix = " HTTP/d.d";
  if (line.size() < kSuffix.size()) return false;
  std::string_view v = line.substr(line.size() - kSuffix.size());
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  return v.substr(0, 6) == " HTTP/" && digit(v[6]) && v[7] == '.' && digit(v[8]);
}

bool WantsKeepAlive(const RequestHeader& req) {
  auto connection = req[http::field::connection];
  auto has = [&](const char* token) { return http::token_list(connection).exists(token); };
  if (req.version() >= 11) return !has("close");
  return has("keep-alive");
}

HttpResponse MakeResponse(http::status status, const RequestHeader& req, std::string body,
                          std::string content_type) {
  HttpResponse res(status, req.version());
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(WantsKeepAlive(req));
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

HttpResponse MakeProblem(http::status status, const RequestHeader& req, std::string_view detail) {
  nlohmann::ordered_json j;
  j["type"] = "about:blank";
  j["title"] = std::string(http::obsolete_reason(status));
  j["status"] = static_cast<int>(status);
  j["detail"] = std::string(detail);
  return MakeResponse(status, req, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                      "application/problem+json");
}

HttpResponse MakeRetryLater(http::status status, const RequestHeader& req, std::string_view detail,
                            std::uint32_t retry_after_seconds) {
  HttpResponse res = MakeProblem(status, req, detail);
  res.set(http::field::retry_after, std::to_string(retry_after_seconds));
  return res;
}

Decision Answer(HttpResponse res) {
  Decision d;
  d.response = std::move(res);
  return d;
}

Decision AnswerStreamed(HttpResponse head, std::uint64_t size, BodyReader reader) {
  Decision d;
  head.body().clear();
  d.response = std::move(head);
  d.body_size = size;
  d.body_reader = std::move(reader);
  return d;
}

Status BufferSink::Append(ByteSpan chunk) {
  if (body_.size() + chunk.size() > limit_) {
    return ResourceExhaustedError("request body larger than the limit of " +
                                  std::to_string(limit_) + " bytes");
  }
  body_.append(AsChars(chunk));
  return Status::Ok();
}

http::status BodySink::ErrorStatus(const Status& append_error) const {
  return append_error.code() == StatusCode::kInvalidArgument ? http::status::bad_request
                                                             : http::status::service_unavailable;
}

// Stream is beast::tcp_stream (plaintext) or TlsStream; everything but the handshake and the
// close is the same code over both.
template <typename Stream>
class HttpServer::Connection : public std::enable_shared_from_this<Connection<Stream>> {
 public:
  // `context` is null for plaintext; a TLS connection keeps its context alive, so a reload
  // never pulls it from under the session.
  Connection(HttpServer* server, tcp::socket socket, std::shared_ptr<net::ssl::context> context)
      : context_(std::move(context)),
        stream_(MakeStream(std::move(socket), context_.get())),
        server_(server) {
    beast::error_code ec;
    auto ep = Socket().remote_endpoint(ec);
    if (!ec) {
      peer_.address = ep.address().to_string();
      peer_.remote = peer_.address + ":" + std::to_string(ep.port());
    }
    peer_.tls = kTls;
  }

  ~Connection() {
    server_->connections_--;
    server_->ReleaseSource(peer_.address);
  }

  void Start() {
    if constexpr (kTls) {
      // The handshake counts against the header deadline: a client that opens a connection and
      // sends nothing holds it no longer than one that sends half a header.
      Lowest().expires_after(opts().header_timeout);
      stream_.async_handshake(
          net::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
            if (ec) return self->CloseSocket();
            self->peer_.certificate = PeerCertificateOf(self->stream_.native_handle());
            self->ReadHeader();
          });
    } else {
      ReadHeader();
    }
  }

 private:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  static Stream MakeStream(tcp::socket socket, net::ssl::context* context) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *context);
    } else {
      return Stream(std::move(socket));
    }
  }

  const HttpServerOptions& opts() const { return server_->options_; }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }
  tcp::socket& Socket() { return Lowest().socket(); }
  auto shared_from_this() { return std::enable_shared_from_this<Connection>::shared_from_this(); }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(opts().max_header_bytes));
    // The server checks Content-Length itself; the limit also bounds chunked bodies.
    parser_->body_limit(opts().max_body_bytes);
    Lowest().expires_after(opts().header_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) {
      if (ec == http::error::body_limit) {
        // Beast checks Content-Length against the body limit while parsing the header.
        RequestHeader dummy;
        return WriteAndClose(MakeProblem(
            http::status::payload_too_large, dummy,
            "body larger than the limit of " + std::to_string(opts().max_body_bytes) + " bytes"));
      }
      if (ec == http::error::header_limit) {
        RequestHeader dummy;
        return WriteAndClose(MakeProblem(http::status::request_header_fields_too_large, dummy,
                                         "request header too large"));
      }
      auto received = static_cast<const char*>(buffer_.data().data());
      if (ec == http::error::bad_version &&
          NamesOtherHttpVersion(std::string_view(received, buffer_.size()))) {
        RequestHeader dummy;
        return WriteAndClose(MakeProblem(http::status::http_version_not_supported, dummy,
                                         "only HTTP/1.0 and HTTP/1.1 are served"));
      }
      if (ec != http::error::end_of_stream && ec != net::error::eof &&
          ec != beast::error::timeout && ec != net::error::operation_aborted) {
        RequestHeader dummy;
        return WriteAndClose(MakeProblem(http::status::bad_request, dummy, "malformed request"));
      }
      return Close();
    }
    const RequestHeader& header = parser_->get().base();
    // Only "chunked" is understood, and it must be the final coding (RFC 9112 §6.3): Beast reads
    // "Transfer-Encoding: gzip, chunked, identity" as a request without a body, which would make
    // the chunked bytes that follow a second request (a smuggling vector behind a proxy).
    if (header.count(http::field::transfer_encoding) > 0 && !parser_->chunked()) {
      return WriteAndClose(
          MakeProblem(http::status::bad_request, header, "unsupported Transfer-Encoding"));
    }
    bool has_body =
        parser_->chunked() || (parser_->content_length() && *parser_->content_length() > 0);
    if (parser_->content_length() && *parser_->content_length() > opts().max_body_bytes) {
      return WriteAndClose(MakeProblem(
          http::status::payload_too_large, header,
          "body larger than the limit of " + std::to_string(opts().max_body_bytes) + " bytes"));
    }
    keep_alive_ = WantsKeepAlive(header);
    Decision d = server_->handler_->OnRequest(header, peer_);
    if (d.response) {
      if (has_body) keep_alive_ = false;  // The body was not read: the connection cannot be reused.
      if (d.body_reader) {
        return WriteStreamed(std::move(*d.response), d.body_size, std::move(d.body_reader));
      }
      return Write(std::move(*d.response));
    }
    if (d.deferred) {
      if (has_body) keep_alive_ = false;
      Lowest().expires_never();
      d.deferred(MakeRespond());
      return;
    }
    sink_ = std::move(d.sink);
    if (!sink_)
      return WriteAndClose(MakeProblem(http::status::internal_server_error, header, "no handler"));
    Lowest().expires_after(opts().body_timeout);  // One deadline for the whole body (slow bodies).
    if (beast::iequals(header[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      net::async_write(stream_, net::buffer(*cont),
                       [self = shared_from_this(), cont](beast::error_code wec, std::size_t) {
                         if (wec) return self->AbortBody();
                         self->ReadBody();
                       });
      return;
    }
    if (!has_body) return FinishBody();
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return FinishBody();
    parser_->get().body().data = chunk_.data();
    parser_->get().body().size = chunk_.size();
    parser_->get().body().more = true;
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnBody(ec); });
  }

  void OnBody(beast::error_code ec) {
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      const RequestHeader& header = parser_->get().base();
      AbortBody();
      if (ec == http::error::body_limit) {
        return WriteAndClose(
            MakeProblem(http::status::payload_too_large, header, "body larger than the limit"));
      }
      // A malformed body (a bad chunk header, an overflowing chunk size) is answered; a client
      // that went away or ran out of time is not.
      if (ec.category() == beast::http::make_error_code(http::error::bad_chunk).category() &&
          ec != http::error::partial_message && ec != http::error::end_of_stream) {
        return WriteAndClose(MakeProblem(http::status::bad_request, header, "malformed body"));
      }
      return Close();
    }
    std::size_t got = chunk_.size() - parser_->get().body().size;
    if (got > 0) {
      Status s = sink_->Append(ByteSpan(chunk_.data(), got));
      if (!s.ok()) {
        const RequestHeader& header = parser_->get().base();
        http::status code = sink_->ErrorStatus(s);
        AbortBody();
        return WriteAndClose(MakeProblem(code, header, s.message()));
      }
    }
    if (parser_->is_done()) return FinishBody();
    ReadBody();
  }

  void FinishBody() {
    Lowest().expires_never();
    std::unique_ptr<BodySink> sink = std::move(sink_);
    BodySink* raw = sink.get();
    // The sink stays alive until it has answered.
    std::shared_ptr<BodySink> owned(std::move(sink));
    Respond respond = MakeRespond();
    raw->Finish([owned, respond](HttpResponse res) mutable { respond(std::move(res)); });
  }

  void AbortBody() {
    if (sink_) {
      sink_->Abort();
      sink_.reset();
    }
  }

  Respond MakeRespond() {
    return [self = shared_from_this()](HttpResponse res) {
      auto shared = std::make_shared<HttpResponse>(std::move(res));
      net::post(self->stream_.get_executor(), [self, shared] { self->Write(std::move(*shared)); });
    };
  }

  void WriteAndClose(HttpResponse res) {
    keep_alive_ = false;
    Write(std::move(res));
  }

  void Write(HttpResponse res) {
    if (server_->stopped_) keep_alive_ = false;
    res.keep_alive(keep_alive_ && res.keep_alive());
    res.set(http::field::server, opts().server_name);
    res.prepare_payload();
    response_ = std::make_shared<HttpResponse>(std::move(res));
    Lowest().expires_after(opts().write_timeout);
    http::async_write(
        stream_, *response_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnWrite(ec); });
  }

  // The header, then the body piece by piece as the reader yields it (one piece in memory).
  void WriteStreamed(HttpResponse res, std::uint64_t size, BodyReader reader) {
    if (server_->stopped_) keep_alive_ = false;
    auto out = std::make_shared<Streamed>();
    out->head = http::response<http::empty_body>(std::move(res.base()));
    out->head.keep_alive(keep_alive_ && res.keep_alive());
    out->head.set(http::field::server, opts().server_name);
    out->head.content_length(size);
    out->remaining = size;
    out->reader = std::move(reader);
    out->serializer.emplace(out->head);
    Lowest().expires_after(opts().write_timeout);
    http::async_write_header(stream_, *out->serializer,
                             [self = shared_from_this(), out](beast::error_code ec, std::size_t) {
                               if (ec) return self->Close();
                               self->WriteBodyPiece(out);
                             });
  }

  struct Streamed {
    http::response<http::empty_body> head;
    std::optional<http::response_serializer<http::empty_body>> serializer;
    BodyReader reader;
    std::uint64_t remaining = 0;
    std::vector<std::uint8_t> buffer = std::vector<std::uint8_t>(256 << 10);
  };

  void WriteBodyPiece(const std::shared_ptr<Streamed>& out) {
    if (out->remaining == 0) {
      if (!out->head.keep_alive()) return Close();
      return ReadHeader();
    }
    std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(out->buffer.size(), out->remaining));
    Result<std::size_t> n = out->reader(std::span<std::uint8_t>(out->buffer.data(), want));
    if (!n.ok() || *n == 0) return Close();  // the client sees fewer bytes than announced
    out->remaining -= *n;
    Lowest().expires_after(opts().write_timeout);
    net::async_write(stream_, net::buffer(out->buffer.data(), *n),
                     [self = shared_from_this(), out](beast::error_code ec, std::size_t) {
                       if (ec) return self->Close();
                       self->WriteBodyPiece(out);
                     });
  }

  void OnWrite(beast::error_code ec) {
    bool again = !ec && response_->keep_alive();
    response_.reset();
    if (!again) return Close();
    ReadHeader();
  }

  void Close() {
    if constexpr (kTls) {
      // close_notify, so the client can tell the end of the reply from a truncation; bounded,
      // since a client may never answer it.
      Lowest().expires_after(std::chrono::seconds(1));
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->Drain(); });
    } else {
      CloseSocket();
    }
  }

  // After an early answer (413 before the body) the client may still be sending: closing with
  // unread bytes makes the kernel send a reset, which can destroy the answer before the client
  // reads it. So the send side is shut and what still arrives is read and dropped, for a bounded
  // time, before the close. (TLS only: its shutdown fails as soon as application data follows.)
  void Drain() {
    beast::error_code ec;
    Socket().shutdown(tcp::socket::shutdown_send, ec);
    Lowest().expires_after(std::chrono::seconds(2));
    DrainSome();
  }

  void DrainSome() {
    Lowest().async_read_some(net::buffer(chunk_),
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                               if (ec) return self->CloseSocket();
                               self->DrainSome();
                             });
  }

  void CloseSocket() {
    beast::error_code ec;
    Socket().shutdown(tcp::socket::shutdown_send, ec);
    Socket().close(ec);
  }

  std::shared_ptr<net::ssl::context> context_;  // declared before stream_, which uses it
  Stream stream_;
  HttpServer* server_;
  Peer peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::buffer_body>> parser_;
  std::array<std::uint8_t, 64 * 1024> chunk_{};
  std::unique_ptr<BodySink> sink_;
  std::shared_ptr<HttpResponse> response_;
  bool keep_alive_ = true;
};

HttpServer::HttpServer(HttpServerOptions options, HttpHandler* handler)
    : options_(std::move(options)), handler_(handler), acceptor_(io_) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  if (!options_.tls.certificate_file.empty()) {
    QSEAL_ASSIGN_OR_RETURN(auto context, MakeServerTlsContext(options_.tls));
    MutexLock lock(tls_mu_);
    tls_context_ = std::move(context);
  }
  beast::error_code ec;
  auto address = net::ip::make_address(options_.host, ec);
  if (ec)
    return InvalidArgumentError("bad listen address \"" + options_.host + "\": " + ec.message());
  tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return UnavailableError("cannot listen on " + options_.host + ":" +
                            std::to_string(options_.port) + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  Accept();
  for (std::uint32_t i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this] { io_.run(); });
  }
  return Status::Ok();
}

void HttpServer::Accept() {
  acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (stopped_) return;
    if (!ec) {
      beast::error_code ep_ec;
      auto ep = socket.remote_endpoint(ep_ec);
      const std::string source = ep_ec ? std::string() : ep.address().to_string();
      if (connections_.load() >= options_.max_connections || !AdmitSource(source)) {
        beast::error_code ignored;
        socket.close(ignored);  // Over the limit: refuse rather than queue without bound.
      } else {
        connections_++;
        // Replies go out as several writes (header, body, TLS records): without TCP_NODELAY a
        // kept-alive client's delayed ACK holds each one back for up to 40 ms.
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        if (std::shared_ptr<net::ssl::context> tls = TlsContext()) {
          std::make_shared<Connection<TlsStream>>(this, std::move(socket), std::move(tls))->Start();
        } else {
          std::make_shared<Connection<beast::tcp_stream>>(this, std::move(socket), nullptr)
              ->Start();
        }
      }
    }
    Accept();
  });
}

bool HttpServer::AdmitSource(const std::string& source) {
  if (options_.max_connections_per_source == 0) return true;
  MutexLock lock(sources_mu_);
  std::uint32_t& open = open_per_source_[source];
  if (open >= options_.max_connections_per_source) {
    if (open == 0) open_per_source_.erase(source);
    return false;
  }
  ++open;
  return true;
}

void HttpServer::ReleaseSource(const std::string& source) {
  if (options_.max_connections_per_source == 0) return;
  MutexLock lock(sources_mu_);
  auto it = open_per_source_.find(source);
  if (it == open_per_source_.end()) return;
  if (--it->second == 0) open_per_source_.erase(it);
}

std::shared_ptr<net::ssl::context> HttpServer::TlsContext() const {
  MutexLock lock(tls_mu_);
  return tls_context_;
}

Status HttpServer::ReloadTls() {
  if (options_.tls.certificate_file.empty()) {
    return FailedPreconditionError("the API listener has no TLS certificate to reload");
  }
  QSEAL_ASSIGN_OR_RETURN(auto context, MakeServerTlsContext(options_.tls));
  MutexLock lock(tls_mu_);
  tls_context_ = std::move(context);
  return Status::Ok();
}

void HttpServer::Stop() {
  if (stopped_.exchange(true)) return;
  net::post(io_, [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  io_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace qseal::ingest::detail
