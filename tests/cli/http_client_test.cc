// cli::HttpClient against qseald's own HTTP server (ingest/detail/http_server.h) on a loopback
// port: sequential requests share one kept-alive connection, and a connection the server closed
// while idle is replaced without failing the next request.
#include "cli/http_client.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "ingest/detail/http_server.h"

namespace qseal::cli {
namespace {

namespace detail = ingest::detail;

class EchoHandler : public detail::HttpHandler {
 public:
  detail::Decision OnRequest(const detail::RequestHeader& header,
                             const detail::Peer& peer) override {
    requests++;
    {
      std::lock_guard<std::mutex> lock(mu);
      remotes.insert(peer.remote);  // "ip:port": one per TCP connection
    }
    detail::Decision d;
    d.response = detail::MakeResponse(detail::http::status::ok, header,
                                      std::string(header.target()), "text/plain");
    return d;
  }
  std::atomic<int> requests{0};
  std::mutex mu;
  std::set<std::string> remotes;
};

bool WaitFor(const std::function<bool()>& pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

TEST(HttpClientTest, SequentialRequestsShareOneConnection) {
  EchoHandler handler;
  detail::HttpServerOptions options;
  detail::HttpServer server(options, &handler);
  ASSERT_TRUE(server.Start().ok());
  {
    HttpClient client("127.0.0.1:" + std::to_string(server.port()), "");
    for (int i = 0; i < 5; ++i) {
      auto reply = client.Request("GET", "/n/" + std::to_string(i));
      ASSERT_TRUE(reply.ok()) << reply.status();
      EXPECT_EQ(reply->status, 200);
      EXPECT_EQ(reply->body, "/n/" + std::to_string(i));
      EXPECT_EQ(server.connections(), 1u);
    }
  }
  // Before keep-alive, every request opened (and closed) a connection of its own.
  {
    std::lock_guard<std::mutex> lock(handler.mu);
    EXPECT_EQ(handler.remotes.size(), 1u);
  }
  // The client's destructor closes its connection; the server notices.
  EXPECT_TRUE(WaitFor([&] { return server.connections() == 0; }));
  EXPECT_EQ(handler.requests.load(), 5);
  server.Stop();
}

TEST(HttpClientTest, ConnectionClosedByTheServerWhileIdleIsReplaced) {
  EchoHandler handler;
  detail::HttpServerOptions options;
  options.header_timeout = std::chrono::milliseconds(100);  // closes idle connections quickly
  detail::HttpServer server(options, &handler);
  ASSERT_TRUE(server.Start().ok());
  HttpClient client("127.0.0.1:" + std::to_string(server.port()), "");
  ASSERT_TRUE(client.Request("GET", "/first").ok());
  ASSERT_TRUE(WaitFor([&] { return server.connections() == 0; }));
  auto reply = client.Request("POST", "/second", "body");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->body, "/second");
  EXPECT_EQ(handler.requests.load(), 2);  // sent once, not twice
  server.Stop();
}

// The timeout is a deadline for the whole exchange, also when the server accepts the connection
// and never answers (before, a blocking read waited for ever).
TEST(HttpClientTest, ServerThatNeverAnswersRunsIntoTheTimeout) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  HttpClient client("127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()), "",
                    std::chrono::milliseconds(200));
  // The kernel completes the handshake from the listen backlog; nobody ever reads.
  auto reply = client.Request("GET", "/never");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace qseal::cli
