// The /metrics listener: a small Boost.Beast server, not prometheus-cpp's Exposer, because the
// Exposer adds exposer_* families of its own and DESIGN.md §5 wants every exported name to start
// with qseal_. Scrapes are rare (seconds apart) and cheap, so one Asio thread serves them; every
// read and write has a timeout so a stuck client cannot hold the listener.
#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "common/log.h"
#include "common/mutex.h"
#include "metrics/metrics.h"

namespace qseal::metrics {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::chrono::seconds kIoTimeout{30};

// One scrape connection over `Stream`: beast::tcp_stream (HTTP) or an ssl_stream over it.
template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  // `tls`: the context the stream was made from, kept alive as long as the connection (a reload
  // replaces the server's; null for HTTP).
  Session(Stream stream, const Metrics* metrics, std::shared_ptr<asio::ssl::context> tls = nullptr)
      : tls_(std::move(tls)), stream_(std::move(stream)), metrics_(metrics) {}

  void Run() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(kIoTimeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->Close();
                                self->Read();
                              });
    } else {
      Read();
    }
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(4 * 1024);
    beast::get_lowest_layer(stream_).expires_after(kIoTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) {
      Close();
      return;
    }
    const auto& req = parser_->get();
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(req.version());
    res->keep_alive(req.keep_alive());
    res->set(http::field::server, "qseald");
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (path != "/metrics") {
      res->result(http::status::not_found);
      res->set(http::field::content_type, "text/plain; charset=utf-8");
      res->body() = "not found: the metrics are at /metrics\n";
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res->result(http::status::method_not_allowed);
      res->set(http::field::allow, "GET, HEAD");
      res->set(http::field::content_type, "text/plain; charset=utf-8");
      res->body() = "method not allowed\n";
    } else {
      res->result(http::status::ok);
      res->set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res->body() = metrics_->Serialize();
    }
    res->prepare_payload();
    if (req.method() == http::verb::head) res->body().clear();
    beast::get_lowest_layer(stream_).expires_after(kIoTimeout);
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res](beast::error_code wec, std::size_t) {
                        if (wec || !res->keep_alive()) {
                          self->Close();
                          return;
                        }
                        self->Read();
                      });
  }

  void Close() {
    // TLS: no close_notify exchange (a scraper that closes first is not waited for).
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
    beast::get_lowest_layer(stream_).close();
  }

  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  const std::shared_ptr<asio::ssl::context> tls_;  // before stream_: destroyed after it
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const Metrics* metrics_;
};

}  // namespace

class MetricsServer::Impl {
 public:
  Impl(MetricsServerOptions options, Metrics* metrics)
      : options_(std::move(options)), metrics_(metrics), tls_(options_.tls) {}

  ~Impl() { Stop(); }

  Status Start() {
    MutexLock lock(mu_);
    if (started_) return FailedPreconditionError("metrics server already started");
    beast::error_code ec;
    const asio::ip::address address = asio::ip::make_address(options_.host, ec);
    if (ec)
      return InvalidArgumentError("metrics listen host \"" + options_.host + "\": " + ec.message());
    const tcp::endpoint endpoint(address, options_.port);
    const std::string where = options_.host + ":" + std::to_string(options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      beast::error_code ignored;
      acceptor_.close(ignored);
      return UnavailableError("metrics listener " + where + ": " + ec.message());
    }
    port_.store(acceptor_.local_endpoint().port());
    started_ = true;
    Accept();
    const int threads = options_.threads < 1 ? 1 : options_.threads;
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
    return Status::Ok();
  }

  std::uint16_t port() const { return port_.load(); }

  Status ReloadTls(std::shared_ptr<asio::ssl::context> tls) {
    if (!options_.tls || !tls) {
      return FailedPreconditionError("the metrics listener has no TLS certificate to reload");
    }
    MutexLock lock(tls_mu_);
    tls_ = std::move(tls);
    return Status::Ok();
  }

  void Stop() {
    MutexLock lock(mu_);
    if (!started_ || stopped_) return;
    stopped_ = true;
    ioc_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    beast::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      // A scrape's reply is several writes (TLS records): no Nagle wait on the peer's delayed ACK.
      beast::error_code ignored;
      if (!ec) s.set_option(tcp::no_delay(true), ignored);
      std::shared_ptr<asio::ssl::context> tls = Tls();
      if (!ec && tls) {
        using TlsStream = beast::ssl_stream<beast::tcp_stream>;
        std::make_shared<Session<TlsStream>>(TlsStream(beast::tcp_stream(std::move(s)), *tls),
                                             metrics_, tls)
            ->Run();
      } else if (!ec) {
        std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(s)), metrics_)
            ->Run();
      }
      Accept();
    });
  }

  std::shared_ptr<asio::ssl::context> Tls() {
    MutexLock lock(tls_mu_);
    return tls_;
  }

  const MetricsServerOptions options_;
  Metrics* const metrics_;
  Mutex tls_mu_;
  std::shared_ptr<asio::ssl::context> tls_ QSEAL_GUARDED_BY(tls_mu_);
  Mutex mu_;
  bool started_ QSEAL_GUARDED_BY(mu_) = false;
  bool stopped_ QSEAL_GUARDED_BY(mu_) = false;
  std::atomic<std::uint16_t> port_{0};
  // Declared before the acceptor and joined in Stop: handlers die with the io_context.
  asio::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  std::vector<std::thread> threads_;
};

MetricsServer::MetricsServer(MetricsServerOptions options, Metrics* metrics)
    : impl_(std::make_unique<Impl>(std::move(options), metrics)) {}
MetricsServer::~MetricsServer() = default;
Status MetricsServer::Start() { return impl_->Start(); }
std::uint16_t MetricsServer::port() const { return impl_->port(); }
void MetricsServer::Stop() { impl_->Stop(); }
Status MetricsServer::ReloadTls(std::shared_ptr<boost::asio::ssl::context> tls) {
  return impl_->ReloadTls(std::move(tls));
}

}  // namespace qseal::metrics
