#include "ingest/api_server.h"

#include <nlohmann/json.hpp>

#include "ingest/detail/http_server.h"

namespace qseal::ingest {

using detail::Decision;
using detail::HttpResponse;
using detail::MakeProblem;
using detail::MakeResponse;
using detail::RequestHeader;
namespace http = detail::http;

class ApiServer::Impl : public detail::HttpHandler {
 public:
  Impl(ApiServerOptions options, ReadinessCheck readiness)
      : readiness_(std::move(readiness)), server_(ToHttpOptions(options), this) {}

  Status Start() { return server_.Start(); }
  void Stop() { server_.Stop(); }
  std::uint16_t port() const { return server_.port(); }

  Decision OnRequest(const RequestHeader& req, const std::string& /*remote*/) override {
    Decision d;
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    if (path == "/livez") {
      d.response =
          MethodIs(req, http::verb::get)
              ? MakeResponse(http::status::ok, req, "{\"status\":\"alive\"}\n", "application/json")
              : MethodNotAllowed(req);
      return d;
    }
    if (path == "/readyz") {
      if (!MethodIs(req, http::verb::get)) {
        d.response = MethodNotAllowed(req);
        return d;
      }
      Status ready = readiness_ ? readiness_() : UnavailableError("starting");
      nlohmann::json j;
      j["status"] = ready.ok() ? "ready" : "not ready";
      if (!ready.ok()) j["reason"] = ready.message();
      d.response = MakeResponse(ready.ok() ? http::status::ok : http::status::service_unavailable,
                                req, j.dump() + "\n", "application/json");
      return d;
    }
    d.response = MakeProblem(http::status::not_found, req, "no such resource");
    return d;
  }

 private:
  static bool MethodIs(const RequestHeader& req, http::verb v) {
    return req.method() == v || (v == http::verb::get && req.method() == http::verb::head);
  }
  static HttpResponse MethodNotAllowed(const RequestHeader& req) {
    return MakeProblem(http::status::method_not_allowed, req, "method not allowed");
  }
  static detail::HttpServerOptions ToHttpOptions(const ApiServerOptions& o) {
    detail::HttpServerOptions h;
    h.host = o.host;
    h.port = o.port;
    h.max_header_bytes = o.max_header_bytes;
    h.max_body_bytes = o.max_body_bytes;
    h.header_timeout = o.header_timeout;
    h.body_timeout = o.body_timeout;
    h.max_connections = o.max_connections;
    h.threads = o.threads;
    return h;
  }

  ReadinessCheck readiness_;
  detail::HttpServer server_;
};

ApiServer::ApiServer(ApiServerOptions options, ReadinessCheck readiness)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(readiness))) {}
ApiServer::~ApiServer() { Stop(); }
Status ApiServer::Start() { return impl_->Start(); }
std::uint16_t ApiServer::port() const { return impl_->port(); }
void ApiServer::Stop() { impl_->Stop(); }

}  // namespace qseal::ingest
