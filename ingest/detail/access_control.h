// Who may call the HTTP API and with which profiles: bearer-token authentication (tokens known
// only by their SHA-256, compared in constant time), client-certificate authentication (the
// subject or SPKI pin of a certificate the TLS layer verified), and the per-client profile grants.
// Refusals
// are logged and reported to the server's RefusalListener for the audit trail.
//
// AccessControl is thread-safe (it only reads what it was given).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/api_server.h"
#include "ingest/detail/http_server.h"

namespace qseal::ingest::detail {

class AccessControl {
 public:
  // Keeps references: `clients`, `profiles` and `on_refusal` (which may be empty) must outlive
  // this object.
  AccessControl(const std::vector<ApiClient>& clients, const std::vector<ApiProfile>& profiles,
                const RefusalListener& on_refusal);

  // The client every configured credential of which the request presents: the token in its one
  // "Authorization: Bearer <token>" field (scheme case-insensitive, token exact) and/or the
  // connection's verified client certificate (subject and/or SPKI pin). When several clients
  // match, the one with the most credentials wins (token and certificate over either alone).
  // Null when none matches (no, two or a wrong Authorization field, no or an unknown
  // certificate). Takes the same time whichever client matches.
  const ApiClient* Authenticate(const RequestHeader& req, const PeerCertificate& cert) const;

  // Whether `client` is granted `profile` (by name or by "*"); says nothing about its existence.
  static bool Allowed(const ApiClient& client, const std::string& profile);

  // The configured profile of that name, or null.
  const ApiProfile* FindProfile(const std::string& name) const;

  // The answer refusing `profile` to `client` (calling from `source`, its IP address), or nullopt
  // when it may be used: 403 when not granted (audited "auth_denied"), 404 when granted but
  // unknown (audited "rejected").
  std::optional<HttpResponse> ProfileRefusal(const RequestHeader& req, const ApiClient& client,
                                             const std::string& profile,
                                             std::string_view source) const;

  // Reports a refusal to the listener, if any (see RefusalListener for `kind` and `source`).
  void Refused(std::string_view kind, std::string_view client, std::string_view profile,
               std::string_view reason, std::string_view source) const;

 private:
  const std::vector<ApiClient>& clients_;
  const std::vector<ApiProfile>& profiles_;
  const RefusalListener& on_refusal_;
};

// The profile a request names with ?profile=NAME; "default" without one.
std::string RequestedProfile(const Query& query);

}  // namespace qseal::ingest::detail
