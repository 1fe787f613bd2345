#include "cli/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace qseal::cli {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

HttpClient::HttpClient(std::string server, std::string token, std::chrono::milliseconds timeout)
    : token_(std::move(token)), timeout_(timeout) {
  std::size_t colon = server.rfind(':');
  host_ = colon == std::string::npos ? server : server.substr(0, colon);
  port_ = colon == std::string::npos ? "8440" : server.substr(colon + 1);
}

Result<HttpReply> HttpClient::Request(const std::string& method, const std::string& target,
                                      const std::string& body,
                                      const std::map<std::string, std::string>& headers) {
  try {
    net::io_context io;
    net::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(timeout_);
    stream.connect(resolver.resolve(host_, port_));
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, host_);
    req.set(http::field::user_agent, "qsealctl");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::uint64_t{4} << 30);
    http::read(stream, buffer, parser);
    auto& res = parser.get();
    HttpReply reply;
    reply.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      reply.headers[name] = std::string(f.value());
    }
    reply.body = std::move(res.body());
    beast::error_code ec;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    return reply;
  } catch (const std::exception& e) {
    return UnavailableError("cannot reach qseald at " + host_ + ":" + port_ + ": " + e.what());
  }
}

}  // namespace qseal::cli
