#include "cli/http_client.h"

#include <cctype>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
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

HttpClient::HttpClient(std::string server, std::string token, std::chrono::milliseconds timeout)
    : token_(std::move(token)), timeout_(timeout) {
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

// One exchange: connect, write `req`, read the header, then let `on_header` read the body.
template <typename RequestBody, typename OnHeader>
Result<HttpReply> Exchange(const std::string& host, const std::string& port,
                           std::chrono::milliseconds timeout, http::request<RequestBody>& req,
                           OnHeader on_header) {
  try {
    net::io_context io;
    net::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    stream.connect(resolver.resolve(host, port));
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> header_parser;
    header_parser.body_limit(std::uint64_t{1} << 40);
    http::read_header(stream, buffer, header_parser);
    Result<HttpReply> reply = on_header(stream, buffer, header_parser);
    beast::error_code ec;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    return reply;
  } catch (const std::exception& e) {
    return UnavailableError("cannot reach qseald at " + host + ":" + port + ": " + e.what());
  }
}

// Reads the rest of the reply into memory.
Result<HttpReply> ReadStringBody(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                 http::response_parser<http::empty_body>& header_parser) {
  http::response_parser<http::string_body> parser(std::move(header_parser));
  parser.body_limit(std::uint64_t{64} << 20);
  http::read(stream, buffer, parser);
  auto& res = parser.get();
  HttpReply reply = ToReply(res);
  reply.body = std::move(res.body());
  return reply;
}

}  // namespace

Result<HttpReply> HttpClient::Request(const std::string& method, const std::string& target,
                                      const std::string& body,
                                      const std::map<std::string, std::string>& headers) {
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "qsealctl");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  return Exchange(host_, port_, timeout_, req, ReadStringBody);
}

Result<HttpReply> HttpClient::UploadFile(const std::string& method, const std::string& target,
                                         const std::string& path,
                                         const std::map<std::string, std::string>& headers) {
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
  return Exchange(host_, port_, timeout_, req, ReadStringBody);
}

Result<HttpReply> HttpClient::Download(const std::string& target, const std::string& path) {
  http::request<http::empty_body> req(http::verb::get, target, 11);
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "qsealctl");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  req.prepare_payload();
  return Exchange(host_, port_, timeout_, req,
                  [&](beast::tcp_stream& stream, beast::flat_buffer& buffer,
                      http::response_parser<http::empty_body>& header_parser) -> Result<HttpReply> {
                    if (header_parser.get().result_int() != 200) {
                      return ReadStringBody(stream, buffer, header_parser);
                    }
                    http::response_parser<http::file_body> parser(std::move(header_parser));
                    parser.body_limit(std::uint64_t{1} << 40);
                    beast::error_code ec;
                    parser.get().body().open(path.c_str(), beast::file_mode::write, ec);
                    if (ec) return LocalFileError(path, ec);
                    http::read(stream, buffer, parser);
                    return ToReply(parser.get());
                  });
}

}  // namespace qseal::cli
