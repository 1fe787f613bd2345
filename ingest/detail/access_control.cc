#include "ingest/detail/access_control.h"

#include <cstdint>

#include <openssl/sha.h>

#include "common/bytes.h"
#include "common/log.h"

namespace qseal::ingest::detail {

AccessControl::AccessControl(const std::vector<ApiClient>& clients,
                             const std::vector<ApiProfile>& profiles,
                             const RefusalListener& on_refusal)
    : clients_(clients), profiles_(profiles), on_refusal_(on_refusal) {}

namespace {

// The SHA-256 of the bearer token in the request's single Authorization field, or empty.
Bytes BearerTokenHash(const RequestHeader& req) {
  // Authorization is a singleton field: with two, which one counts would depend on who reads.
  if (req.count(http::field::authorization) != 1) return {};
  auto auth = req[http::field::authorization];
  std::string_view value(auth.data(), auth.size());
  // The scheme name is case-insensitive (RFC 9110 §11.1); the token is compared exactly.
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() <= kBearer.size() ||
      !boost::beast::iequals(auth.substr(0, kBearer.size()), "Bearer "))
    return {};
  std::string_view token = value.substr(kBearer.size());
  Bytes hash(SHA256_DIGEST_LENGTH);
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), hash.data());
  return hash;
}

}  // namespace

const ApiClient* AccessControl::Authenticate(const RequestHeader& req,
                                             const PeerCertificate& cert) const {
  const Bytes token = BearerTokenHash(req);
  const ApiClient* found = nullptr;
  int found_factors = 0;
  // Compare against every client so the time does not tell which one matched.
  for (const auto& c : clients_) {
    bool ok = true;
    int factors = 0;
    if (!c.token_sha256.empty()) {
      ++factors;
      ok &= !token.empty() && ConstantTimeEquals(token, c.token_sha256);
    }
    if (!c.certificate_subject.empty()) {
      ++factors;
      ok &= cert.present && cert.subject == c.certificate_subject;
    }
    if (!c.certificate_spki_sha256.empty()) {
      ++factors;
      ok &= cert.present && ConstantTimeEquals(cert.spki_sha256, c.certificate_spki_sha256);
    }
    if (ok && factors > found_factors) {
      found = &c;
      found_factors = factors;
    }
  }
  return found;
}

bool AccessControl::Allowed(const ApiClient& client, const std::string& profile) {
  for (const auto& p : client.profiles) {
    if (p == "*" || p == profile) return true;
  }
  return false;
}

const ApiProfile* AccessControl::FindProfile(const std::string& name) const {
  for (const auto& p : profiles_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::optional<HttpResponse> AccessControl::ProfileRefusal(const RequestHeader& req,
                                                          const ApiClient& client,
                                                          const std::string& profile,
                                                          std::string_view source) const {
  if (!Allowed(client, profile)) {
    LogWarn("request refused: profile not granted",
            {{"client", client.name}, {"profile", profile}, {"source", std::string(source)}});
    Refused("auth_denied", client.name, profile, "profile not granted", source);
    return MakeProblem(http::status::forbidden, req,
                       "profile \"" + profile + "\" is not granted to this client");
  }
  if (FindProfile(profile) == nullptr) {
    Refused("rejected", client.name, profile, "unknown profile", source);
    return MakeProblem(http::status::not_found, req, "unknown profile \"" + profile + "\"");
  }
  return std::nullopt;
}

void AccessControl::Refused(std::string_view kind, std::string_view client,
                            std::string_view profile, std::string_view reason,
                            std::string_view source) const {
  if (on_refusal_) on_refusal_(kind, client, profile, reason, source);
}

std::string RequestedProfile(const Query& query) {
  auto it = query.find("profile");
  return it == query.end() ? "default" : it->second;
}

}  // namespace qseal::ingest::detail
