// qsealctl submit/status/fetch against a small scripted HTTP server on a loopback port (port 0):
// the client side of the API contract (Retry-After on 503, ?wait, --out naming by Content-Type,
// exit codes for 4xx). The real API server is exercised by the daemon's e2e tests.
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "cli/commands.h"
#include "common/exit_codes.h"
#include "ingest/detail/multipart.h"
#include "tests/testing/testing.h"

namespace qseal::cli {
namespace {

namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using qseal::testing::ReadFile;
using qseal::testing::TempDir;
using qseal::testing::WriteFile;

// One request per connection, served in order on one thread.
class ScriptedServer {
 public:
  ScriptedServer() : acceptor_(io_, {net::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    beast::error_code ec;
    net::ip::tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  std::string address() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }

  std::mutex mu;         // guards the fields below (the test reads them once the client is done)
  int busy_answers = 1;  // 503s before the first accepted POST
  std::map<std::string, std::string> bodies;  // id -> uploaded body
  std::map<std::string, std::string> names;   // id -> X-Filename
  std::vector<std::string> targets;
  std::string bad_auth;

 private:
  void Serve() {
    while (true) {
      net::ip::tcp::socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (stop_) return;
      if (ec) continue;
      beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(socket, buffer, req, ec);
      if (ec) continue;
      http::response<http::string_body> res;
      {
        std::lock_guard<std::mutex> lock(mu);
        res = Handle(req);
      }
      res.prepare_payload();
      http::write(socket, res, ec);
      socket.shutdown(net::ip::tcp::socket::shutdown_both, ec);
    }
  }

  http::response<http::string_body> Handle(const http::request<http::string_body>& req) {
    std::string target(req.target());
    targets.push_back(std::string(req.method_string()) + " " + target);
    http::response<http::string_body> res(http::status::ok, 11);
    res.set(http::field::content_type, "application/json");
    if (req[http::field::authorization] != "Bearer secret") {
      bad_auth = std::string(req[http::field::authorization]);
      res.result(http::status::unauthorized);
      res.body() = R"({"title":"Unauthorized","detail":"bad token"})";
      return res;
    }
    if (req.method() == http::verb::post && target.rfind("/v1/batches/status", 0) == 0) {
      // Every known id is sealed; others are unknown.
      std::string docs;
      std::regex quoted("\"([^\"]+)\"");
      for (std::sregex_iterator it(req.body().begin(), req.body().end(), quoted), end; it != end;
           ++it) {
        std::string id = (*it)[1];
        if (id == "ids") continue;
        if (!docs.empty()) docs += ",";
        docs += bodies.count(id) > 0 ? R"({"id":")" + id + R"(","status":"sealed"})"
                                     : R"({"id":")" + id + R"(","error":{"status":404}})";
      }
      res.body() = R"({"done":true,"documents":[)" + docs + "]}";
      return res;
    }
    if (req.method() == http::verb::post) {
      if (target.find("profile=forbidden") != std::string::npos) {
        res.result(http::status::forbidden);
        res.body() = R"({"title":"Forbidden","detail":"profile not granted"})";
        return res;
      }
      if (busy_answers > 0) {
        --busy_answers;
        res.result(http::status::service_unavailable);
        res.set(http::field::retry_after, "1");
        res.body() = R"({"title":"Service Unavailable"})";
        return res;
      }
      if (target.rfind("/v1/batches?", 0) == 0) return Batch(req);
      std::string id = "ID" + std::to_string(bodies.size());
      bodies[id] = req.body();
      names[id] = std::string(req["X-Filename"]);
      res.result(http::status::accepted);
      res.body() = R"({"id":")" + id + R"(","status":"queued","sha256":"00"})";
      return res;
    }
    // GET /v1/documents/{id}[/seal]
    std::string rest = target.substr(std::string("/v1/documents/").size());
    bool seal = rest.size() > 5 && rest.substr(rest.size() - 5) == "/seal";
    std::string id = seal ? rest.substr(0, rest.size() - 5) : rest;
    if (bodies.count(id) == 0) {
      res.result(http::status::not_found);
      res.body() = R"({"title":"Not Found"})";
      return res;
    }
    if (seal) {
      bool enveloping = names[id].size() > 4 && names[id].substr(names[id].size() - 4) == ".xml";
      res.set(http::field::content_type,
              enveloping ? "application/pkcs7-mime" : "application/pkcs7-signature");
      res.body() = "SEAL OF " + bodies[id];
      return res;
    }
    res.body() = R"({"id":")" + id + R"(","status":"sealed","profile":"default"})";
    return res;
  }

  // POST /v1/batches: each multipart/mixed part becomes a document.
  http::response<http::string_body> Batch(const http::request<http::string_body>& req) {
    http::response<http::string_body> res(http::status::accepted, 11);
    res.set(http::field::content_type, "application/json");
    struct Parts : ingest::detail::MultipartHandler {
      std::vector<std::pair<std::string, std::string>> got;  // name, bytes
      Status OnPartBegin(const ingest::detail::PartHeader& h) override {
        got.emplace_back(std::string(h.Get("X-Filename")), "");
        return Status::Ok();
      }
      Status OnPartData(ByteSpan d) override {
        got.back().second.append(AsChars(d));
        return Status::Ok();
      }
      Status OnPartEnd() override { return Status::Ok(); }
    } parts;
    auto boundary = ingest::detail::MultipartBoundary(std::string(req[http::field::content_type]));
    if (!boundary.ok()) {
      res.result(http::status::unsupported_media_type);
      return res;
    }
    ingest::detail::MultipartParser parser(*boundary, {}, &parts);
    if (!parser.Feed(AsBytes(req.body())).ok() || !parser.Finish().ok()) {
      res.result(http::status::bad_request);
      return res;
    }
    ++batches;
    std::string docs;
    for (const auto& [name, bytes] : parts.got) {
      std::string id = "ID" + std::to_string(bodies.size());
      bodies[id] = bytes;
      names[id] = name;
      if (!docs.empty()) docs += ",";
      docs += R"({"id":")" + id + R"(","status":"queued"})";
    }
    res.body() = R"({"documents":[)" + docs + "]}";
    return res;
  }

 public:
  int batches = 0;  // POST /v1/batches accepted

 private:
  net::io_context io_;
  net::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(QsealctlSubmitTest, RetriesAfter503WaitsAndWritesSealsNamedByContentType) {
  TempDir tmp;
  fs::create_directories(tmp.Sub("docs/sub"));
  WriteFile(tmp.Sub("docs/a.pdf"), "document a");
  WriteFile(tmp.Sub("docs/sub/b.xml"), "<b/>");
  ScriptedServer server;
  Endpoint endpoint{.server = server.address(),
                    .token = "secret",
                    .token_source = "test",
                    .var_dir = tmp.Sub("var"),
                    .tls = {}};
  SubmitOptions options;
  options.paths = {tmp.Sub("docs")};
  options.out_dir = tmp.Sub("out");
  options.concurrency = 2;
  std::ostringstream out, err;
  int rc = RunSubmit(endpoint, options, out, err);
  EXPECT_EQ(rc, kExitOk) << out.str() << err.str();
  std::unique_lock<std::mutex> lock(server.mu);
  EXPECT_EQ(ReadFile(tmp.Sub("out/a.pdf.p7s")), "SEAL OF document a");
  EXPECT_EQ(ReadFile(tmp.Sub("out/b.xml.p7m")), "SEAL OF <b/>");
  EXPECT_EQ(server.bodies.size(), 2u);
  EXPECT_EQ(server.busy_answers, 0);
  std::string lines = out.str();
  EXPECT_NE(lines.find("a.pdf\tID"), std::string::npos) << lines;
  EXPECT_NE(lines.find("b.xml\tID"), std::string::npos) << lines;
  EXPECT_NE(lines.find("\tsealed\t"), std::string::npos) << lines;
  // Two files go as one batch (after one 503), their outcomes come from one long-poll.
  EXPECT_EQ(server.batches, 1);
  std::vector<std::string> posts;
  for (const auto& t : server.targets) {
    if (t.rfind("POST", 0) == 0) posts.push_back(t);
  }
  EXPECT_EQ(posts, (std::vector<std::string>{"POST /v1/batches?profile=default",
                                             "POST /v1/batches?profile=default",
                                             "POST /v1/batches/status?wait=30"}));

  lock.unlock();
  std::ostringstream status_out, status_err;
  EXPECT_EQ(RunStatus(endpoint, "ID0", status_out, status_err), kExitOk);
  EXPECT_NE(status_out.str().find("\"sealed\""), std::string::npos);
  EXPECT_EQ(RunStatus(endpoint, "NOPE", status_out, status_err), kExitDataErr);

  std::ostringstream fetch_out, fetch_err;
  EXPECT_EQ(RunFetch(endpoint, "ID1", tmp.Sub("fetched"), fetch_out, fetch_err), kExitOk);
  EXPECT_NE(ReadFile(tmp.Sub("fetched")).find("SEAL OF "), std::string::npos);
  EXPECT_EQ(RunFetch(endpoint, "ID1", "", fetch_out, fetch_err), kExitOk);
  EXPECT_EQ(fetch_out.str(), ReadFile(tmp.Sub("fetched")));
}

TEST(QsealctlSubmitTest, ClientErrorsExit65) {
  TempDir tmp;
  WriteFile(tmp.Sub("doc.txt"), "x");
  ScriptedServer server;
  server.busy_answers = 0;
  SubmitOptions options;
  options.paths = {tmp.Sub("doc.txt")};
  options.profile = "forbidden";
  std::ostringstream out, err;
  Endpoint endpoint{.server = server.address(),
                    .token = "secret",
                    .token_source = "test",
                    .var_dir = "",
                    .tls = {}};
  EXPECT_EQ(RunSubmit(endpoint, options, out, err), kExitDataErr);
  EXPECT_NE(out.str().find("403 Forbidden: profile not granted"), std::string::npos) << out.str();

  endpoint.token = "wrong";
  options.profile = "default";
  std::ostringstream out2, err2;
  EXPECT_EQ(RunSubmit(endpoint, options, out2, err2), kExitDataErr);
  EXPECT_NE(out2.str().find("401"), std::string::npos) << out2.str();
  std::lock_guard<std::mutex> lock(server.mu);
  EXPECT_EQ(server.bad_auth, "Bearer wrong");
  for (const auto& t : server.targets) {
    EXPECT_NE(t.find("/v1/documents?profile="), std::string::npos) << "a lone file goes alone";
  }
}

}  // namespace
}  // namespace qseal::cli
