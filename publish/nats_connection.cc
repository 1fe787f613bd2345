#include "publish/nats_connection.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/log.h"

namespace qseal::publish {
namespace {

// A token given by reference: "file:/path" (one line; a trailing newline is not part of it) or
// "env:NAME".
Result<std::string> ResolveToken(const std::string& ref) {
  if (ref.rfind("file:", 0) == 0) {
    std::ifstream in(ref.substr(5), std::ios::binary);
    if (!in) return InvalidArgumentError("token_source: cannot read " + ref.substr(5));
    std::string line;
    std::getline(in, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  if (ref.rfind("env:", 0) == 0) {
    const char* v = std::getenv(ref.c_str() + 4);
    if (v == nullptr) return InvalidArgumentError("token_source: " + ref.substr(4) + " is unset");
    return std::string(v);
  }
  return InvalidArgumentError("token_source must be \"file:/path\" or \"env:NAME\"");
}

struct OptionsDeleter {
  void operator()(natsOptions* o) const { natsOptions_Destroy(o); }
};

// The client calls these from its own threads; they only log, so an operator sees broker outages.
void OnDisconnected(natsConnection*, void*) { LogWarn("nats: disconnected, reconnecting", {}); }
void OnReconnected(natsConnection* nc, void*) {
  char url[256] = {};
  natsConnection_GetConnectedUrl(nc, url, sizeof(url));
  LogInfo("nats: reconnected", {{"server", std::string(url)}});
}

}  // namespace

Status NatsError(std::string_view what, natsStatus status, jsErrCode js_error) {
  std::string m = std::string(what) + ": " + natsStatus_GetText(status);
  if (js_error != 0) m += " (JetStream error " + std::to_string(static_cast<int>(js_error)) + ")";
  const char* last = nats_GetLastError(nullptr);
  if (last != nullptr && *last != '\0' && m.find(last) == std::string::npos)
    m += ": " + std::string(last);
  switch (status) {
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_SUBSCRIPTION:
    case NATS_MAX_PAYLOAD:
      return InvalidArgumentError(std::move(m));
    case NATS_ERR:
      if (js_error != 0) return FailedPreconditionError(std::move(m));
      return UnavailableError(std::move(m));
    default:
      return UnavailableError(std::move(m));
  }
}

Result<std::unique_ptr<NatsConnection>> NatsConnection::Connect(const NatsConnectOptions& options) {
  if (options.servers.empty()) return InvalidArgumentError("nats: no servers");
  natsOptions* raw = nullptr;
  if (natsOptions_Create(&raw) != NATS_OK) return InternalError("natsOptions_Create failed");
  std::unique_ptr<natsOptions, OptionsDeleter> opts(raw);
  std::vector<const char*> urls;
  for (const std::string& s : options.servers) urls.push_back(s.c_str());
  natsStatus s = natsOptions_SetServers(opts.get(), urls.data(), static_cast<int>(urls.size()));
  if (s != NATS_OK) return NatsError("nats: servers", s);
  if (!options.token_source.empty()) {
    QSEAL_ASSIGN_OR_RETURN(std::string token, ResolveToken(options.token_source));
    s = natsOptions_SetToken(opts.get(), token.c_str());
    if (s != NATS_OK) return NatsError("nats: token", s);
  }
  if (!options.credentials_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(opts.get(), options.credentials_file.c_str(),
                                                nullptr);
    if (s != NATS_OK) return NatsError("nats: credentials_file", s);
  }
  natsOptions_SetName(opts.get(), options.name.c_str());
  natsOptions_SetTimeout(opts.get(), options.timeout.count());
  natsOptions_SetAllowReconnect(opts.get(), true);
  natsOptions_SetMaxReconnect(opts.get(), -1);
  natsOptions_SetReconnectWait(opts.get(), options.reconnect_wait.count());
  natsOptions_SetDisconnectedCB(opts.get(), OnDisconnected, nullptr);
  natsOptions_SetReconnectedCB(opts.get(), OnReconnected, nullptr);
  // A broker that is down when qseald starts is an outage, not a configuration error. With a
  // callback the retries run in the background (without one the client would retry inside
  // natsConnection_Connect, forever).
  natsOptions_SetRetryOnFailedConnect(opts.get(), true, OnReconnected, nullptr);

  natsConnection* nc = nullptr;
  s = natsConnection_Connect(&nc, opts.get());
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) return NatsError("nats: connect", s);
  if (s == NATS_NOT_YET_CONNECTED) LogWarn("nats: no server answers yet; retrying", {});
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options.timeout.count();
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, nc, &jo);
  if (s != NATS_OK) {
    natsConnection_Destroy(nc);
    return NatsError("nats: JetStream context", s);
  }
  return std::unique_ptr<NatsConnection>(new NatsConnection(nc, js));
}

NatsConnection::~NatsConnection() {
  jsCtx_Destroy(js_);
  natsConnection_Close(nc_);
  natsConnection_Destroy(nc_);
}

bool NatsConnection::connected() const {
  return natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

}  // namespace qseal::publish
