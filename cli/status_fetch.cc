// qsealctl status, fetch and health: one request each.
#include <chrono>
#include <string>

#include "cli/commands.h"
#include "cli/detail/replies.h"
#include "cli/http_client.h"
#include "common/exit_codes.h"

namespace qseal::cli {

using detail::Describe;
using detail::ExitForHttp;
using detail::ExitForTransport;
using detail::UrlEncode;

int RunStatus(const Endpoint& endpoint, const std::string& id, std::ostream& out,
              std::ostream& err) {
  HttpClient client(endpoint.server, endpoint.token, std::chrono::milliseconds(30'000),
                    endpoint.tls);
  auto r = client.Request("GET", "/v1/documents/" + UrlEncode(id));
  if (!r.ok()) {
    err << "qsealctl: " << r.status().message() << "\n";
    return ExitForTransport(r.status());
  }
  if (r->status != 200) {
    err << "qsealctl: status " << id << ": " << Describe(*r) << "\n";
    return ExitForHttp(r->status);
  }
  out << r->body;
  if (!r->body.empty() && r->body.back() != '\n') out << "\n";
  return kExitOk;
}

int RunFetch(const Endpoint& endpoint, const std::string& id, const std::string& out_file,
             std::ostream& out, std::ostream& err) {
  HttpClient client(endpoint.server, endpoint.token, std::chrono::milliseconds(120'000),
                    endpoint.tls);
  std::string target = "/v1/documents/" + UrlEncode(id) + "/seal";
  Result<HttpReply> r =
      out_file.empty() ? client.Request("GET", target) : client.Download(target, out_file);
  if (!r.ok()) {
    err << "qsealctl: " << r.status().message() << "\n";
    return ExitForTransport(r.status());
  }
  if (r->status != 200) {
    std::string what = r->status == 409 ? "not sealed yet" : Describe(*r);
    err << "qsealctl: fetch " << id << ": " << what << "\n";
    return ExitForHttp(r->status);
  }
  if (out_file.empty()) {
    out.write(r->body.data(), static_cast<std::streamsize>(r->body.size()));
    out.flush();
    if (!out) {
      err << "qsealctl: cannot write the seal to stdout\n";
      return kExitIoErr;
    }
  }
  return kExitOk;
}

int RunHealth(const Endpoint& endpoint, std::ostream& out, std::ostream& err) {
  HttpClient client(endpoint.server, "", std::chrono::milliseconds(10'000), endpoint.tls);
  auto reply = client.Request("GET", "/readyz");
  if (!reply.ok()) {
    err << "qsealctl: " << reply.status().message() << "\n";
    return kExitUnavailable;
  }
  out << reply->body;
  if (!reply->body.empty() && reply->body.back() != '\n') out << "\n";
  return reply->status == 200 ? kExitOk : kExitUnavailable;
}

}  // namespace qseal::cli
