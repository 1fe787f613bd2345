// The CSC API v2 routes (Cloud Signature Consortium, "Architectures and protocols for remote
// signature applications" 2.0.0.2; docs/csc.md) on qseal's own queue and credentials:
//   info                  GET/POST, unauthenticated: what the service is and which methods it has
//   credentials/list      the credentials (one per configured key) the caller may use
//   credentials/info      a credential's key, certificate chain and algorithms
//   signatures/signHash   a batch of hashes signed with one credential: bare signature values
//   signatures/signDoc    documents or their digests sealed with the caller's profiles (CAdES,
//                         XAdES, PAdES; B-B, or CAdES B-T with a b-t profile)
// The caller was authenticated by the API server already (bearer token, mTLS; auth/login and SAD
// are not used: "implicit" authorisation). A credential is usable by a client granted "*" or any
// profile sealing with its key; any other is answered exactly like an unknown one. Every hash and
// document goes through the queue like an API submission (durable before it is signed, batched
// across sessions, audited as sealed for the client) and the answer waits for the signatures,
// up to the server's max_wait (503 + Retry-After when the queue is full or they are not ready).
// Errors use the CSC format {"error":"invalid_request","error_description":"..."}.
//
// CscHandler is thread-safe: its routes are called from the HTTP server's threads; the blocking
// part runs on the server's commit pool.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json_fwd.hpp>

#include "ingest/api_server.h"
#include "ingest/detail/http_server.h"
#include "queue/queue.h"

namespace qseal::ingest::detail {

class AccessControl;
class Waiters;

// A CSC error response: `status` with {"error": error, "error_description": description}.
HttpResponse MakeCscError(http::status status, const RequestHeader& req, std::string_view error,
                          std::string_view description);

class CscHandler {
 public:
  static constexpr std::string_view kPrefix = "/csc/v2/";

  // Keeps references to everything; all must outlive this object. `queue` may be null only while
  // no signing route is called. `stopped` tells whether the server is shutting down.
  CscHandler(const ApiServerOptions& options, queue::Queue* queue, boost::asio::thread_pool& pool,
             Waiters& waiters, const AccessControl& access, std::function<bool()> stopped);

  // Whether the CSC API is enabled (options.csc.enabled).
  bool enabled() const;
  // GET or POST /csc/v2/info; needs no credentials.
  Decision Info(const RequestHeader& req) const;
  // Every other /csc/v2/ route (`method` is the path after the prefix) for an authenticated
  // client calling from `source` (its IP address).
  Decision Route(const RequestHeader& req, std::string_view method, const ApiClient& client,
                 std::string_view source);

 private:
  struct Item;

  void Dispatch(const std::string& method, const std::string& body, const RequestHeader& req,
                const ApiClient& client, const std::string& source, Respond respond);
  HttpResponse CredentialsList(const nlohmann::json& body, const RequestHeader& req,
                               const ApiClient& client) const;
  HttpResponse CredentialsInfo(const nlohmann::json& body, const RequestHeader& req,
                               const ApiClient& client, const std::string& source) const;
  void SignHash(const nlohmann::json& body, const std::shared_ptr<RequestHeader>& req,
                const ApiClient& client, const std::string& source, Respond respond);
  void SignDoc(const nlohmann::json& body, const std::shared_ptr<RequestHeader>& req,
               const ApiClient& client, const std::string& source, Respond respond);
  // Enqueues `items` in one group commit, waits for all to be final, and answers with
  // `answer(seals)` (one per item, in order) or the error of the first failed one.
  void SealAll(std::vector<Item> items, const std::shared_ptr<RequestHeader>& req,
               const ApiClient& client,
               std::function<HttpResponse(std::vector<Bytes>& seals)> answer, Respond respond);
  HttpResponse AnswerSealed(const std::vector<queue::DocumentId>& ids, const RequestHeader& req,
                            const std::function<HttpResponse(std::vector<Bytes>&)>& answer) const;

  // The credential `id` when `client` may use it; else null, and a refusal is audited when it
  // exists but is not granted.
  const CscCredential* Usable(const std::string& id, const ApiClient& client,
                              const std::string& source) const;
  // Whether `client` sees `credential` (list, info, signDoc): "*", a profile on its key, or
  // a signHash grant.
  static bool Grants(const CscCredential& credential, const ApiClient& client);
  // Whether `client` may signHash with it: "csc:KEY" or "csc:*" in its profiles.
  static bool GrantsSignHash(const CscCredential& credential, const ApiClient& client);
  nlohmann::json CredentialInfo(const CscCredential& credential, std::string_view certificates,
                                bool cert_info, bool auth_info) const;

  const ApiServerOptions& options_;
  queue::Queue* const queue_;
  boost::asio::thread_pool& pool_;
  Waiters& waiters_;
  const AccessControl& access_;
  const std::function<bool()> stopped_;
};

}  // namespace qseal::ingest::detail
