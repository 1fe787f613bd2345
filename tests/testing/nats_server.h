// A real nats-server with JetStream for tests: started on a free loopback port with its store in
// a test directory, stopped (SIGTERM) or killed (SIGKILL) and restarted on the same port and store,
// plus the few client calls tests need (publish a document, read a whole stream).
//
// Test-only; thread-compatible.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "publish/nats_connection.h"
#include "tests/testing/testing.h"

namespace qseal::testing {

class NatsServer {
 public:
  // `dir` holds the JetStream store (dir/js) and the server's log (dir/nats.log).
  explicit NatsServer(std::string dir);
  ~NatsServer();  // Kills a server still running.

  // Starts /usr/sbin/nats-server -js on 127.0.0.1 (a free port the first time, the same one on
  // restarts) and waits until it is ready.
  Status Start();
  int Stop();   // SIGTERM and wait; the exit code.
  void Kill();  // SIGKILL and reap.
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

 private:
  std::string dir_;
  int port_ = 0;
  ChildProcess process_;
  int starts_ = 0;
};

// A connection to `url` for the test itself.
Result<std::unique_ptr<publish::NatsConnection>> ConnectNats(const std::string& url);

// Publishes one message with headers to JetStream and waits for its ack; returns its stream
// sequence.
Result<std::uint64_t> PublishJs(publish::NatsConnection& nc, const std::string& subject,
                                const std::string& data,
                                const std::map<std::string, std::string>& headers = {});

struct StreamMessage {
  std::uint64_t sequence = 0;
  std::string subject;
  std::map<std::string, std::string> headers;
  std::string data;
};

// Every message currently stored in `stream`, in order (reads them one by one by sequence).
Result<std::vector<StreamMessage>> ReadStream(publish::NatsConnection& nc,
                                              const std::string& stream);

// Creates the work-queue stream `name` on `subjects` (file storage) unless it exists.
Status CreateWorkQueueStream(publish::NatsConnection& nc, const std::string& name,
                             const std::vector<std::string>& subjects);

// Messages in `stream` now (0 when it does not exist), and the consumer's unacked count.
std::uint64_t StreamMessages(publish::NatsConnection& nc, const std::string& stream);
std::int64_t ConsumerAckPending(publish::NatsConnection& nc, const std::string& stream,
                                const std::string& consumer);

}  // namespace qseal::testing
