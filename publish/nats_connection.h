// NatsConnection: one connection to a NATS server (or cluster) with its JetStream context, shared
// by the broker source (ingest/jetstream_source.h) and the broker result sink
// (publish/jetstream_publisher.h), and the one place where NATS C client errors (natsStatus,
// jsErrCode) become a Status.
//
// The NATS C types appear in this header on purpose: the source and the sink are thin layers over
// the client, and wrapping every handle again would only hide what they call. Nothing outside
// ingest/jetstream_source.* and publish/jetstream_publisher.* includes it.
//
// Connecting never fails because the server is down: the client keeps retrying in the background
// (reconnects forever, every reconnect_wait), and calls made meanwhile fail with kUnavailable, so a
// broker restart looks like a short outage to the daemon, never like a fatal error.
//
// Thread-safety: NatsConnection is thread-safe (the NATS client locks internally; the handles may
// be used from any number of threads at once).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nats/nats.h>

#include "common/status.h"

namespace qseal::publish {

struct NatsConnectOptions {
  // Server URLs ("nats://127.0.0.1:4222"); the client picks one and fails over to the others.
  // Required.
  std::vector<std::string> servers;
  // Credentials by reference, never inline: a token ("file:/path" or "env:NAME"), or a NATS
  // credentials file (.creds: user JWT + NKey seed). Both empty: no authentication.
  // Default: "" / "".
  std::string token_source;
  std::string credentials_file;
  // The connection name shown by the server (monitoring). Default: "qseald".
  std::string name = "qseald";
  // Connect timeout and JetStream API request timeout. Default: 5 s.
  std::chrono::milliseconds timeout{5000};
  // Wait between reconnect attempts. Default: 250 ms.
  std::chrono::milliseconds reconnect_wait{250};
};

class NatsConnection {
 public:
  // Resolves the credentials (kInvalidArgument when a reference cannot be read) and starts
  // connecting. Returns once connected or, when no server answers yet, at once: the client keeps
  // trying in the background. kInvalidArgument for bad options.
  static Result<std::unique_ptr<NatsConnection>> Connect(const NatsConnectOptions& options);
  ~NatsConnection();  // Destroys the JetStream context, then closes the connection.
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  natsConnection* nc() const { return nc_; }
  jsCtx* js() const { return js_; }
  // True while the connection is up (not connecting, reconnecting or closed).
  bool connected() const;

 private:
  NatsConnection(natsConnection* nc, jsCtx* js) : nc_(nc), js_(js) {}
  natsConnection* nc_;
  jsCtx* js_;
};

// The Status of a failed NATS call: `what` (the call) + the client's text and the JetStream error
// code when there is one. Timeouts, lost connections and missing responders are kUnavailable
// (retry with back-off); bad arguments kInvalidArgument; a JetStream refusal kFailedPrecondition.
Status NatsError(std::string_view what, natsStatus status,
                 jsErrCode js_error = static_cast<jsErrCode>(0));

// RAII owners of the client's heap objects.
struct NatsMsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using NatsMsgPtr = std::unique_ptr<natsMsg, NatsMsgDeleter>;

}  // namespace qseal::publish
