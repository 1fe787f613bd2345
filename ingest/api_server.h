// The HTTP API of qseald (DESIGN.md §5): liveness and readiness now; document submission,
// status, seal download and profiles as the pipeline lands.
//
// ApiServer is thread-safe; Start and Stop are called by the daemon's main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace qseal::ingest {

struct ApiServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8440;                         // 0 picks a free port (tests). Default: 8440
  std::uint64_t max_header_bytes = 16 << 10;         // Default: 16 KiB
  std::uint64_t max_body_bytes = 256ull << 20;       // Default: 256 MiB
  std::chrono::milliseconds header_timeout{10'000};  // Default: 10 s
  std::chrono::milliseconds body_timeout{300'000};   // Default: 5 min
  std::uint32_t max_connections = 1024;              // Default: 1024
  std::uint32_t threads = 2;                         // Default: 2
};

// Returns OK when the daemon is ready to seal (queue open and writable, at least one HSM partition
// passed its self-test); otherwise the reason, shown on /readyz.
using ReadinessCheck = std::function<Status()>;

class ApiServer {
 public:
  ApiServer(ApiServerOptions options, ReadinessCheck readiness);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds and serves. kUnavailable when the address cannot be bound.
  Status Start();
  // The bound port; valid after Start.
  std::uint16_t port() const;
  // Stops accepting and joins the server threads. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qseal::ingest
