#include "ingest/detail/csc_handler.h"

#include <algorithm>
#include <stdexcept>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "ingest/detail/access_control.h"
#include "ingest/detail/csc_request.h"
#include "ingest/detail/digest_request.h"
#include "ingest/detail/json_bodies.h"
#include "ingest/detail/waiters.h"
#include "metrics/metrics.h"

namespace qseal::ingest::detail {
namespace {

using json = nlohmann::json;

// A request the CSC API refuses with 400 invalid_request; the message is error_description.
class BadRequest : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

const json* Field(const json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::string OptString(const json& body, const char* key, std::string fallback = {}) {
  const json* v = Field(body, key);
  if (v == nullptr) return fallback;
  if (!v->is_string()) throw BadRequest(std::string("Invalid parameter ") + key);
  return v->get<std::string>();
}

std::string RequiredString(const json& body, const char* key) {
  if (Field(body, key) == nullptr) throw BadRequest(std::string("Missing parameter ") + key);
  std::string v = OptString(body, key);
  if (v.empty()) throw BadRequest(std::string("Missing parameter ") + key);
  return v;
}

bool OptBool(const json& body, const char* key, bool fallback) {
  const json* v = Field(body, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) throw BadRequest(std::string("Invalid parameter ") + key);
  return v->get<bool>();
}

const json& RequiredArray(const json& body, const char* key) {
  const json* v = Field(body, key);
  if (v == nullptr) throw BadRequest(std::string("Missing parameter ") + key);
  if (!v->is_array() || v->empty()) throw BadRequest(std::string("Invalid parameter ") + key);
  return *v;
}

// operationMode: only synchronous signing ("S", the default) is offered.
void CheckOperationMode(const json& body) {
  std::string mode = OptString(body, "operationMode", "S");
  if (mode != "S") {
    throw BadRequest(
        "Invalid parameter operationMode: only synchronous operation (S) is supported");
  }
}

// conformance_level: the profile level it asks for, AdES-B-B ("b-b", the default) or AdES-B-T
// ("b-t": a profile with a signature time-stamp); LT and LTA are not made.
std::string LevelOf(const json& entry) {
  std::string level = OptString(entry, "conformance_level", "Ades-B-B");
  std::string lower;
  for (char c : level) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "ades-b-b" || lower == "ades-b") return "b-b";
  if (lower == "ades-b-t" || lower == "ades-t") return "b-t";
  throw BadRequest("Invalid parameter conformance_level: AdES-B-B or AdES-B-T (by the profile)");
}

std::string CertificatesMode(const json& body) {
  std::string mode = OptString(body, "certificates", "single");
  if (mode != "none" && mode != "single" && mode != "chain") {
    throw BadRequest("Invalid parameter certificates: none, single or chain");
  }
  return mode;
}

// The hashes of a signHash or documentDigests entry, each checked against `digest`'s length.
std::vector<Bytes> DecodeHashes(const json& hashes, DigestAlgorithm digest, std::size_t max) {
  if (hashes.size() > max) {
    throw BadRequest("Invalid parameter hashes: more than " + std::to_string(max) +
                     " in one request");
  }
  std::vector<Bytes> out;
  out.reserve(hashes.size());
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    if (!hashes[i].is_string()) throw BadRequest("Invalid parameter hashes");
    std::optional<Bytes> h = Base64Decode(hashes[i].get<std::string>());
    if (!h)
      throw BadRequest("Invalid parameter hashes: hash " + std::to_string(i) + " is not base64");
    if (h->size() != DigestSize(digest)) {
      throw BadRequest("Invalid parameter hashes: hash " + std::to_string(i) + " has " +
                       std::to_string(h->size()) + " bytes, a " + std::string(DigestName(digest)) +
                       " hash has " + std::to_string(DigestSize(digest)));
    }
    out.push_back(std::move(*h));
  }
  return out;
}

CscSignAlgorithm SignAlgorithmOf(const json& entry, const CscCredential& credential) {
  Result<CscSignAlgorithm> algo =
      ResolveSignAlgorithm(RequiredString(entry, "signAlgo"), OptString(entry, "signAlgoParams"),
                           OptString(entry, "hashAlgorithmOID"), credential.key_type);
  if (!algo.ok()) throw BadRequest(algo.status().message());
  return *algo;
}

bool Embeds(std::string_view format) {
  return format == "cades-enveloping" || format == "xades-enveloped" || format == "pades";
}

// The seal format a signDoc document asks for (signature_format and signed_envelope_property).
std::string FormatFor(const std::string& signature_format, const std::string& envelope) {
  if (signature_format == "C") {
    if (envelope.empty() || envelope == "Attached") return "cades-enveloping";
    if (envelope == "Detached") return "cades-detached";
  } else if (signature_format == "X") {
    if (envelope.empty() || envelope == "Enveloped") return "xades-enveloped";
    if (envelope == "Detached") return "xades-detached";
  } else if (signature_format == "P") {
    // qseal's PAdES seals are approval signatures (no DocMDP): a certification is not made.
    if (envelope.empty() || envelope == "Revision") return "pades";
    if (envelope == "Certification") {
      throw BadRequest(
          "Invalid parameter signed_envelope_property: PAdES seals are approval signatures "
          "(Revision); certification signatures are not made");
    }
  } else {
    throw BadRequest("Invalid parameter signature_format: C, X or P");
  }
  throw BadRequest("Invalid parameter signed_envelope_property: " + envelope +
                   " is not made for signature_format " + signature_format);
}

std::string_view MediaTypeFor(std::string_view format) {
  if (format == "pades") return "application/pdf";
  if (format.rfind("xades", 0) == 0) return "application/xml";
  return "application/octet-stream";
}

HttpResponse Busy(const RequestHeader& req, std::string_view why, std::uint32_t retry_after) {
  HttpResponse res =
      MakeCscError(http::status::service_unavailable, req, "temporarily_unavailable", why);
  res.set(http::field::retry_after, std::to_string(retry_after));
  return res;
}

}  // namespace

HttpResponse MakeCscError(http::status status, const RequestHeader& req, std::string_view error,
                          std::string_view description) {
  nlohmann::ordered_json j;
  j["error"] = error;
  j["error_description"] = description;
  return MakeResponse(status, req, Dump(j), "application/json");
}

// One hash or document to seal.
struct CscHandler::Item {
  std::string profile;
  Bytes bytes;
  std::string digest_algorithm;  // set: `bytes` is a digest (digest-only)
  std::string name;
  std::string media_type;
};

CscHandler::CscHandler(const ApiServerOptions& options, queue::Queue* queue,
                       boost::asio::thread_pool& pool, Waiters& waiters,
                       const AccessControl& access, std::function<bool()> stopped)
    : options_(options),
      queue_(queue),
      pool_(pool),
      waiters_(waiters),
      access_(access),
      stopped_(std::move(stopped)) {}

bool CscHandler::enabled() const { return options_.csc.enabled; }

Decision CscHandler::Info(const RequestHeader& req) const {
  if (req.method() != http::verb::get && req.method() != http::verb::post) {
    return Answer(MakeCscError(http::status::method_not_allowed, req, "invalid_request",
                               "info takes GET or POST"));
  }
  nlohmann::ordered_json j;
  j["specs"] = "2.0.0.2";
  j["name"] = options_.csc.name;
  j["logo"] = "";
  if (!options_.csc.region.empty()) j["region"] = options_.csc.region;
  j["lang"] = "en";
  j["description"] = "qseal: electronic seals made in an HSM";
  // Credentials come with the request (a bearer token issued out of band, a client certificate):
  // no auth/login, no OAuth 2.0.
  nlohmann::ordered_json auth = nlohmann::ordered_json::array({"external"});
  if (!options_.client_ca_file.empty()) auth.push_back("TLS");
  j["authType"] = auth;
  j["methods"] = {"info", "credentials/list", "credentials/info", "signatures/signHash",
                  "signatures/signDoc"};
  return Answer(MakeResponse(http::status::ok, req, Dump(j), "application/json"));
}

Decision CscHandler::Route(const RequestHeader& req, std::string_view method,
                           const ApiClient& client, std::string_view source) {
  static constexpr std::string_view kMethods[] = {"credentials/list", "credentials/info",
                                                  "signatures/signHash", "signatures/signDoc"};
  if (std::find(std::begin(kMethods), std::end(kMethods), method) == std::end(kMethods)) {
    return Answer(
        MakeCscError(http::status::not_found, req, "invalid_request", "no such CSC method"));
  }
  if (req.method() != http::verb::post) {
    return Answer(MakeCscError(http::status::method_not_allowed, req, "invalid_request",
                               "CSC methods take POST"));
  }
  if (queue_ == nullptr || stopped_()) {
    return Answer(Busy(req, "not taking requests", options_.retry_after_seconds));
  }
  auto shared_req = std::make_shared<RequestHeader>(req);
  Decision d;
  d.sink = std::make_unique<BufferSink>(
      options_.csc.max_request_bytes,
      [this, shared_req, client = &client, source = std::string(source),
       method = std::string(method)](std::string body, Respond respond) {
        boost::asio::post(
            pool_, [=, this, body = std::move(body), respond = std::move(respond)]() mutable {
              Dispatch(method, body, *shared_req, *client, source, std::move(respond));
            });
      });
  return d;
}

void CscHandler::Dispatch(const std::string& method, const std::string& body,
                          const RequestHeader& req, const ApiClient& client,
                          const std::string& source, Respond respond) {
  json j = json::object();
  if (!body.empty()) {
    j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return respond(MakeCscError(http::status::bad_request, req, "invalid_request",
                                  "the body must be a JSON object"));
    }
  }
  auto shared_req = std::make_shared<RequestHeader>(req);
  try {
    if (method == "credentials/list") return respond(CredentialsList(j, req, client));
    if (method == "credentials/info") return respond(CredentialsInfo(j, req, client, source));
    // The signing methods throw only before they hand `respond` on.
    if (method == "signatures/signHash") return SignHash(j, shared_req, client, source, respond);
    return SignDoc(j, shared_req, client, source, respond);
  } catch (const BadRequest& e) {
    respond(MakeCscError(http::status::bad_request, req, "invalid_request", e.what()));
  } catch (const json::exception&) {
    respond(MakeCscError(http::status::bad_request, req, "invalid_request",
                         "Invalid parameter: a field has the wrong type"));
  }
}

bool CscHandler::GrantsSignHash(const CscCredential& credential, const ApiClient& client) {
  for (const std::string& p : client.profiles) {
    const std::string prefix(kCscNamePrefix);
    if (p == prefix + "*" || p == prefix + credential.id) return true;
  }
  return false;
}

bool CscHandler::Grants(const CscCredential& credential, const ApiClient& client) {
  if (GrantsSignHash(credential, client)) return true;
  for (const std::string& p : client.profiles) {
    if (p == "*") return true;
    if (std::find(credential.profiles.begin(), credential.profiles.end(), p) !=
        credential.profiles.end()) {
      return true;
    }
  }
  return false;
}

const CscCredential* CscHandler::Usable(const std::string& id, const ApiClient& client,
                                        const std::string& source) const {
  for (const CscCredential& c : options_.csc.credentials) {
    if (c.id != id) continue;
    if (Grants(c, client)) return &c;
    access_.Refused("auth_denied", client.name, "", "CSC credential \"" + id + "\" not granted",
                    source);
    return nullptr;
  }
  return nullptr;
}

json CscHandler::CredentialInfo(const CscCredential& c, std::string_view certificates,
                                bool cert_info, bool auth_info) const {
  json info;
  info["description"] = "qseal key " + c.id;
  json key;
  key["status"] = "enabled";
  key["algo"] = KeyAlgorithmOids(c.key_type);
  key["len"] = c.key_bits;
  if (c.key_type == "ec" && !CurveOid(c.curve).empty()) key["curve"] = CurveOid(c.curve);
  info["key"] = key;
  json cert;
  Result<CertificateSummary> summary =
      c.certificate_chain_der.empty() ? Result<CertificateSummary>(NotFoundError("no certificate"))
                                      : SummarizeCertificate(c.certificate_chain_der.front());
  cert["status"] = summary.ok() && summary->valid_now ? "valid" : "expired";
  if (certificates != "none") {
    json list = json::array();
    for (std::size_t i = 0; i < c.certificate_chain_der.size(); ++i) {
      if (i > 0 && certificates == "single") break;
      list.push_back(Base64Encode(c.certificate_chain_der[i]));
    }
    cert["certificates"] = list;
  }
  if (cert_info && summary.ok()) {
    cert["issuerDN"] = summary->issuer_dn;
    cert["serialNumber"] = summary->serial_number;
    cert["subjectDN"] = summary->subject_dn;
    cert["validFrom"] = summary->valid_from;
    cert["validTo"] = summary->valid_to;
  }
  info["cert"] = cert;
  // The request's credentials authorise the signature: no SAD, no explicit authorisation.
  if (auth_info) info["auth"] = {{"mode", "implicit"}};
  info["SCAL"] = "1";
  info["multisign"] = options_.csc.max_hashes;
  info["lang"] = "en";
  return info;
}

HttpResponse CscHandler::CredentialsList(const json& body, const RequestHeader& req,
                                         const ApiClient& client) const {
  const std::string certificates = CertificatesMode(body);
  const bool cert_info = OptBool(body, "certInfo", false);
  const bool auth_info = OptBool(body, "authInfo", false);
  const bool with_info = OptBool(body, "credentialInfo", false);
  const bool only_valid = OptBool(body, "onlyValid", false);
  std::size_t max_results = options_.csc.credentials.size();
  if (const json* m = Field(body, "maxResults")) {
    if (!m->is_number_integer() || m->get<long long>() < 1) {
      throw BadRequest("Invalid parameter maxResults");
    }
    max_results = static_cast<std::size_t>(m->get<long long>());
  }
  std::size_t first = 0;
  if (std::string token = OptString(body, "pageToken"); !token.empty()) {
    if (token.find_first_not_of("0123456789") != std::string::npos || token.size() > 9) {
      throw BadRequest("Invalid parameter pageToken");
    }
    first = std::stoul(token);
  }
  std::vector<const CscCredential*> usable;
  for (const CscCredential& c : options_.csc.credentials) {
    if (!Grants(c, client)) continue;
    if (only_valid) {
      Result<CertificateSummary> s = c.certificate_chain_der.empty()
                                         ? Result<CertificateSummary>(NotFoundError(""))
                                         : SummarizeCertificate(c.certificate_chain_der.front());
      if (!s.ok() || !s->valid_now) continue;
    }
    usable.push_back(&c);
  }
  json ids = json::array();
  json infos = json::array();
  std::size_t i = first;
  for (; i < usable.size() && i < first + max_results; ++i) {
    ids.push_back(usable[i]->id);
    if (with_info) {
      json info = CredentialInfo(*usable[i], certificates, cert_info, auth_info);
      info["credentialID"] = usable[i]->id;
      infos.push_back(std::move(info));
    }
  }
  json out;
  out["credentialIDs"] = ids;
  if (with_info) out["credentialInfos"] = infos;
  if (i < usable.size()) out["nextPageToken"] = std::to_string(i);
  out["onlyValid"] = only_valid;
  return MakeResponse(http::status::ok, req, out.dump() + "\n", "application/json");
}

HttpResponse CscHandler::CredentialsInfo(const json& body, const RequestHeader& req,
                                         const ApiClient& client, const std::string& source) const {
  const std::string id = RequiredString(body, "credentialID");
  const std::string certificates = CertificatesMode(body);
  const bool cert_info = OptBool(body, "certInfo", false);
  const bool auth_info = OptBool(body, "authInfo", false);
  const CscCredential* c = Usable(id, client, source);
  if (c == nullptr) throw BadRequest("Invalid parameter credentialID");
  return MakeResponse(http::status::ok, req,
                      CredentialInfo(*c, certificates, cert_info, auth_info).dump() + "\n",
                      "application/json");
}

void CscHandler::SignHash(const json& body, const std::shared_ptr<RequestHeader>& req,
                          const ApiClient& client, const std::string& source, Respond respond) {
  const std::string id = RequiredString(body, "credentialID");
  CheckOperationMode(body);
  const json& hashes = RequiredArray(body, "hashes");
  const CscCredential* c = Usable(id, client, source);
  if (c == nullptr) throw BadRequest("Invalid parameter credentialID");
  // A bare signature over any hash is more than a seal of a document (it can stand for any
  // structure the key signs), so it needs its own grant; "*" does not give it.
  if (!GrantsSignHash(*c, client)) {
    access_.Refused("auth_denied", client.name, "",
                    "CSC signHash with \"" + id + "\" not granted (needs \"" +
                        std::string(kCscNamePrefix) + id + "\")",
                    source);
    return respond(MakeCscError(http::status::forbidden, *req, "access_denied",
                                "signHash with credential " + id +
                                    " is not granted to this "
                                    "client (its profiles need \"csc:" +
                                    id + "\")"));
  }
  CscSignAlgorithm algo = SignAlgorithmOf(body, *c);
  if (!algo.digest) throw BadRequest("Missing parameter hashAlgorithmOID");
  const std::string pair =
      std::string(DigestName(*algo.digest)) + "/" + std::string(SchemeName(algo.scheme));
  auto profile = c->hash_profiles.find(pair);
  if (profile == c->hash_profiles.end()) {
    throw BadRequest("Invalid parameter signAlgo: the credential does not sign " + pair);
  }
  std::vector<Bytes> digests = DecodeHashes(hashes, *algo.digest, options_.csc.max_hashes);
  std::vector<Item> items;
  items.reserve(digests.size());
  for (std::size_t i = 0; i < digests.size(); ++i) {
    Item& item = items.emplace_back();
    item.profile = profile->second;
    item.bytes = std::move(digests[i]);
    item.digest_algorithm = std::string(DigestName(*algo.digest));
    item.name = "hash-" + std::to_string(i);
  }
  SealAll(
      std::move(items), req, client,
      [req](std::vector<Bytes>& seals) {
        json out;
        out["signatures"] = json::array();
        for (const Bytes& s : seals) out["signatures"].push_back(Base64Encode(s));
        return MakeResponse(http::status::ok, *req, out.dump() + "\n", "application/json");
      },
      std::move(respond));
}

void CscHandler::SignDoc(const json& body, const std::shared_ptr<RequestHeader>& req,
                         const ApiClient& client, const std::string& source, Respond respond) {
  if (Field(body, "credentialID") == nullptr && Field(body, "signatureQualifier") != nullptr) {
    throw BadRequest("Missing parameter credentialID: signatureQualifier alone is not supported");
  }
  const std::string id = RequiredString(body, "credentialID");
  CheckOperationMode(body);
  const json* digests = Field(body, "documentDigests");
  const json* documents = Field(body, "documents");
  if (digests == nullptr && documents == nullptr) {
    throw BadRequest("Missing parameter documentDigests or documents");
  }
  if ((digests != nullptr && !digests->is_array()) ||
      (documents != nullptr && !documents->is_array())) {
    throw BadRequest("Invalid parameter documentDigests or documents");
  }
  const CscCredential* c = Usable(id, client, source);
  if (c == nullptr) throw BadRequest("Invalid parameter credentialID");

  // The first of the caller's profiles that seals with this credential in `format` at `level`.
  auto profile_for = [&](const std::string& format, const CscSignAlgorithm& algo,
                         const std::string& level) {
    for (const ApiProfile& p : options_.profiles) {
      if (p.format != format || p.scheme != SchemeName(algo.scheme) || p.level != level) continue;
      if (algo.digest && p.digest != DigestName(*algo.digest)) continue;
      if (std::find(c->profiles.begin(), c->profiles.end(), p.name) == c->profiles.end()) continue;
      if (AccessControl::Allowed(client, p.name)) return p;
    }
    throw BadRequest("Invalid parameter signature_format: none of the caller's profiles makes " +
                     format + " " + level + " seals with this credential and signAlgo");
  };

  std::vector<Item> items;
  std::vector<bool> embeds;  // per item: DocumentWithSignature (true) or SignatureObject
  if (digests != nullptr) {
    for (const json& entry : *digests) {
      if (!entry.is_object()) throw BadRequest("Invalid parameter documentDigests");
      if (RequiredString(entry, "signature_format") != "C") {
        throw BadRequest(
            "Invalid parameter signature_format: documentDigests are sealed as CAdES (C); "
            "XAdES and PAdES need the document");
      }
      std::string envelope = OptString(entry, "signed_envelope_property", "Detached");
      if (envelope != "Detached") {
        throw BadRequest(
            "Invalid parameter signed_envelope_property: a seal over a digest is Detached");
      }
      const std::string level = LevelOf(entry);
      CscSignAlgorithm algo = SignAlgorithmOf(entry, *c);
      if (!algo.digest) throw BadRequest("Missing parameter hashAlgorithmOID");
      const ApiProfile p = profile_for("cades-detached", algo, level);
      for (Bytes& d :
           DecodeHashes(RequiredArray(entry, "hashes"), *algo.digest, options_.csc.max_hashes)) {
        Item& item = items.emplace_back();
        item.profile = p.name;
        item.bytes = std::move(d);
        item.digest_algorithm = p.digest;
        item.name = "digest-" + std::to_string(items.size() - 1);
        embeds.push_back(false);
      }
    }
  }
  if (documents != nullptr) {
    std::size_t n = 0;
    for (const json& entry : *documents) {
      if (!entry.is_object()) throw BadRequest("Invalid parameter documents");
      const std::string format = FormatFor(RequiredString(entry, "signature_format"),
                                           OptString(entry, "signed_envelope_property"));
      const std::string level = LevelOf(entry);
      CscSignAlgorithm algo = SignAlgorithmOf(entry, *c);
      const ApiProfile p = profile_for(format, algo, level);
      std::optional<Bytes> bytes = Base64Decode(RequiredString(entry, "document"));
      if (!bytes) throw BadRequest("Invalid parameter document: not base64");
      Item& item = items.emplace_back();
      item.profile = p.name;
      item.bytes = std::move(*bytes);
      item.name = "document-" + std::to_string(n++);
      item.media_type = std::string(MediaTypeFor(format));
      embeds.push_back(Embeds(format));
    }
  }
  if (items.empty()) throw BadRequest("Missing parameter documentDigests or documents");
  if (items.size() > options_.csc.max_hashes) {
    throw BadRequest("Invalid parameter documents: more than " +
                     std::to_string(options_.csc.max_hashes) + " in one request");
  }
  SealAll(
      std::move(items), req, client,
      [req, embeds](std::vector<Bytes>& seals) {
        json with_signature = json::array();
        json objects = json::array();
        for (std::size_t i = 0; i < seals.size(); ++i) {
          (embeds[i] ? with_signature : objects).push_back(Base64Encode(seals[i]));
        }
        json out = json::object();
        if (!with_signature.empty()) out["DocumentWithSignature"] = with_signature;
        if (!objects.empty()) out["SignatureObject"] = objects;
        return MakeResponse(http::status::ok, *req, out.dump() + "\n", "application/json");
      },
      std::move(respond));
}

void CscHandler::SealAll(std::vector<Item> items, const std::shared_ptr<RequestHeader>& req,
                         const ApiClient& client,
                         std::function<HttpResponse(std::vector<Bytes>& seals)> answer,
                         Respond respond) {
  const std::uint32_t retry = options_.retry_after_seconds;
  if (stopped_()) return respond(Busy(*req, "shutting down", retry));
  // Every item is streamed into the queue first; nothing is committed unless all were accepted.
  std::vector<std::unique_ptr<queue::PendingDocument>> pending;
  pending.reserve(items.size());
  for (Item& item : items) {
    queue::NewDocument doc;
    doc.profile = item.profile;
    doc.source = queue::Source::kApi;
    doc.client = client.name;
    doc.name = item.name;
    doc.media_type = item.media_type;
    doc.digest_algorithm = item.digest_algorithm;
    Result<std::unique_ptr<queue::PendingDocument>> p = queue_->Begin(doc);
    if (!p.ok()) {
      return respond(Busy(*req,
                          p.status().code() == StatusCode::kResourceExhausted
                              ? "the queue is full; retry later"
                              : p.status().message(),
                          retry));
    }
    if (Status s = (*p)->Append(item.bytes); !s.ok())
      return respond(Busy(*req, s.message(), retry));
    pending.push_back(std::move(*p));
  }
  std::vector<Result<queue::EnqueueResult>> results = queue_->CommitMany(std::move(pending));
  std::vector<queue::DocumentId> ids;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok()) {
      // Those committed before it are sealed all the same and stay in the queue (status API).
      LogError("CSC request not accepted", {{"error", results[i].status().ToString()}});
      return respond(Busy(*req, results[i].status().message(), retry));
    }
    ids.push_back(results[i]->id);
    if (options_.metrics != nullptr) {
      options_.metrics->DocumentAccepted("api", items[i].profile, results[i]->size);
    }
  }
  auto shared_ids = std::make_shared<std::vector<queue::DocumentId>>(ids);
  waiters_.WaitForAll(
      std::move(ids), std::chrono::steady_clock::now() + options_.max_wait,
      [this, shared_ids, req, answer = std::move(answer), respond = std::move(respond)] {
        respond(AnswerSealed(*shared_ids, *req, answer));
      },
      [this](const queue::DocumentId& id) {
        Result<queue::Record> rec = queue_->Get(id);
        return !rec.ok() || IsFinal(rec->state);
      });
}

HttpResponse CscHandler::AnswerSealed(
    const std::vector<queue::DocumentId>& ids, const RequestHeader& req,
    const std::function<HttpResponse(std::vector<Bytes>&)>& answer) const {
  std::vector<Bytes> seals;
  seals.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    Result<queue::Record> rec = queue_->Get(ids[i]);
    if (!rec.ok()) {
      return MakeCscError(http::status::internal_server_error, req, "server_error",
                          "item " + std::to_string(i) + ": " + rec.status().message());
    }
    if (rec->state == queue::State::kFailed) {
      return MakeCscError(http::status::internal_server_error, req, "server_error",
                          "item " + std::to_string(i) + " (document " + ids[i].ToString() +
                              ") failed: " + rec->error_message);
    }
    if (rec->state != queue::State::kSealed) {
      return Busy(req,
                  "the signatures were not ready within " +
                      std::to_string(options_.max_wait.count() / 1000) +
                      " s; they are still being made (first pending: document " +
                      ids[i].ToString() + ")",
                  options_.retry_after_seconds);
    }
    Result<Bytes> seal = queue_->GetSeal(ids[i]);
    if (!seal.ok()) {
      return MakeCscError(http::status::internal_server_error, req, "server_error",
                          "item " + std::to_string(i) + ": " + seal.status().message());
    }
    seals.push_back(std::move(*seal));
  }
  return answer(seals);
}

}  // namespace qseal::ingest::detail
