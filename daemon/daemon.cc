#include "daemon/daemon.h"

#include "common/log.h"
#include "ingest/api_server.h"

namespace qseal::daemon {

class Daemon::Impl {
 public:
  explicit Impl(Config config) : config_(std::move(config)) {}

  Status Start() {
    ingest::ApiServerOptions api;
    QSEAL_RETURN_IF_ERROR(SplitHostPort(config_.server.listen, &api.host, &api.port));
    api.max_header_bytes = config_.server.max_header_bytes;
    api.max_body_bytes = config_.server.max_body_bytes;
    api.header_timeout = config_.server.header_timeout;
    api.body_timeout = config_.server.body_timeout;
    api.max_connections = config_.server.max_connections;
    api.threads = config_.server.threads;
    api_ = std::make_unique<ingest::ApiServer>(
        api, [] { return UnavailableError("the sealing pipeline is not running"); });
    QSEAL_RETURN_IF_ERROR(api_->Start());
    LogInfo("qseald started", {{"api", api.host + ":" + std::to_string(api_->port())},
                               {"config", config_.source_path}});
    return Status::Ok();
  }

  Status Stop() {
    if (api_) api_->Stop();
    return Status::Ok();
  }

 private:
  Config config_;
  std::unique_ptr<ingest::ApiServer> api_;
};

Daemon::Daemon(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Daemon::~Daemon() = default;
Status Daemon::Start() { return impl_->Start(); }
Status Daemon::Stop() { return impl_->Stop(); }

}  // namespace qseal::daemon
