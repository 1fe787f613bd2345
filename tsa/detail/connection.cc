#include "tsa/detail/connection.h"

#include <optional>
#include <type_traits>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace qseal::tsa::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

template <typename Stream>
class ConnectionImpl final : public Connection,
                             public std::enable_shared_from_this<ConnectionImpl<Stream>> {
 public:
  ConnectionImpl(asio::io_context& io, Url url, asio::ssl::context* tls)
      : io_(io), url_(std::move(url)), tls_(tls), resolver_(io) {}

  void Send(Bytes body, std::chrono::milliseconds timeout, Done done) override {
    done_ = std::move(done);
    timeout_ = timeout;
    request_ = {};
    request_.method(http::verb::post);
    request_.target(url_.target);
    request_.version(11);
    request_.set(http::field::host, url_.host);
    request_.set(http::field::content_type, "application/timestamp-query");
    request_.set(http::field::accept, "application/timestamp-reply");
    request_.keep_alive(true);
    request_.body() = std::move(body);
    request_.prepare_payload();
    fresh_retry_done_ = false;
    if (stream_) {
      reused_ = true;
      Write();
    } else {
      Connect();
    }
  }

  void Close() override {
    closed_ = true;
    resolver_.cancel();
    if (stream_) {
      beast::error_code ec;
      beast::get_lowest_layer(*stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
      beast::get_lowest_layer(*stream_).close();
    }
  }

  bool is_open() const override {
    return stream_ && beast::get_lowest_layer(*stream_).socket().is_open();
  }

 private:
  void Connect() {
    reused_ = false;
    deadline_ = std::chrono::steady_clock::now() + timeout_;
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      stream_.emplace(io_, *tls_);
    } else {
      stream_.emplace(io_);
    }
    resolver_.async_resolve(
        url_.host, url_.port,
        [self = this->shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
          if (ec) return self->Fail("resolving " + self->url_.host, ec);
          auto& lowest = beast::get_lowest_layer(*self->stream_);
          lowest.expires_after(self->Remaining());
          lowest.async_connect(r, [self](beast::error_code ec2, const tcp::endpoint&) {
            if (ec2) return self->Fail("connecting to " + self->url_.host, ec2);
            // Requests are pipelined on kept-alive connections: no Nagle delay between them.
            beast::error_code ignored;
            beast::get_lowest_layer(*self->stream_)
                .socket()
                .set_option(tcp::no_delay(true), ignored);
            self->Handshake();
          });
        });
  }

  void Handshake() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      // SNI and host-name verification against the URL's host.
      // (SSL_set_tlsext_host_name is a macro with a C cast.)
      SSL_ctrl(stream_->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(url_.host.c_str()));
      stream_->set_verify_mode(asio::ssl::verify_peer);
      stream_->set_verify_callback(asio::ssl::host_name_verification(url_.host));
      stream_->async_handshake(asio::ssl::stream_base::client,
                               [self = this->shared_from_this()](beast::error_code ec) {
                                 if (ec) return self->Fail("TLS handshake", ec);
                                 self->Write();
                               });
    } else {
      Write();
    }
  }

  std::chrono::steady_clock::duration Remaining() const {
    auto left = deadline_ - std::chrono::steady_clock::now();
    return left > std::chrono::steady_clock::duration::zero() ? left : std::chrono::milliseconds(1);
  }

  void Write() {
    if (reused_) deadline_ = std::chrono::steady_clock::now() + timeout_;
    beast::get_lowest_layer(*stream_).expires_after(Remaining());
    http::async_write(*stream_, request_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) return self->Fail("sending the request", ec);
                        self->Read();
                      });
  }

  void Read() {
    response_.emplace();
    response_->body_limit(1 << 20);
    buffer_.clear();
    http::async_read(*stream_, buffer_, *response_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->Fail("reading the answer", ec);
                       self->Answered();
                     });
  }

  void Answered() {
    auto& res = response_->get();
    bool keep = res.keep_alive();
    Result<Bytes> out = Bytes{};
    if (res.result() != http::status::ok) {
      out = UnavailableError("HTTP " + std::to_string(res.result_int()) + " " +
                             std::string(res.reason()));
    } else if (res[http::field::content_type].find("application/timestamp-reply") ==
               std::string_view::npos) {
      out = UnavailableError("answer has content type '" +
                             std::string(res[http::field::content_type]) +
                             "', not application/timestamp-reply");
    } else {
      out = std::move(res.body());
    }
    if (!keep) Reset();
    Complete(std::move(out));
  }

  void Fail(const std::string& what, beast::error_code ec) {
    // A server may close an idle keep-alive connection just as we reuse it: that says nothing
    // about the TSA's health, so try once more on a fresh connection.
    bool stale = reused_ && !fresh_retry_done_ && !closed_ &&
                 (ec == http::error::end_of_stream || ec == asio::error::eof ||
                  ec == asio::error::connection_reset || ec == asio::error::broken_pipe);
    Reset();
    if (stale) {
      fresh_retry_done_ = true;
      Connect();
      return;
    }
    std::string reason = ec == beast::error::timeout ? "timed out" : ec.message();
    Complete(UnavailableError(what + ": " + reason));
  }

  void Reset() {
    if (!stream_) return;
    beast::error_code ignored;
    beast::get_lowest_layer(*stream_).socket().close(ignored);
    stream_.reset();
  }

  void Complete(Result<Bytes> out) {
    Done done = std::move(done_);
    done_ = nullptr;
    if (done) done(std::move(out));
  }

  asio::io_context& io_;
  const Url url_;
  asio::ssl::context* tls_;
  tcp::resolver resolver_;
  std::optional<Stream> stream_;
  beast::flat_buffer buffer_;
  http::request<http::vector_body<std::uint8_t>> request_;
  std::optional<http::response_parser<http::vector_body<std::uint8_t>>> response_;
  Done done_;
  std::chrono::milliseconds timeout_{0};
  std::chrono::steady_clock::time_point deadline_{};
  bool reused_ = false;
  bool fresh_retry_done_ = false;
  bool closed_ = false;
};

}  // namespace

Result<Url> ParseUrl(const std::string& url) {
  Url out;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    out.tls = true;
    rest = url.substr(8);
  } else {
    return InvalidArgumentError("TSA URL '" + url + "' is not http:// or https://");
  }
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  out.target = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']') == std::string::npos) {
    out.host = authority.substr(0, colon);
    out.port = authority.substr(colon + 1);
  } else {
    out.host = authority;
    out.port = out.tls ? "443" : "80";
  }
  if (out.host.empty() || out.port.empty() ||
      out.port.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgumentError("TSA URL '" + url + "' has no usable host:port");
  }
  return out;
}

std::shared_ptr<Connection> MakeConnection(boost::asio::io_context& io, const Url& url,
                                           boost::asio::ssl::context* tls) {
  if (url.tls) return std::make_shared<ConnectionImpl<TlsStream>>(io, url, tls);
  return std::make_shared<ConnectionImpl<PlainStream>>(io, url, tls);
}

}  // namespace qseal::tsa::detail
