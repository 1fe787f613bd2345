#include "ingest/api_server.h"

#include <optional>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "audit/refusal_limiter.h"
#include "common/crash_point.h"
#include "common/log.h"
#include "common/mutex.h"
#include "ingest/detail/access_control.h"
#include "ingest/detail/batch_handler.h"
#include "ingest/detail/csc_handler.h"
#include "ingest/detail/digest_request.h"
#include "ingest/detail/http_server.h"
#include "ingest/detail/json_bodies.h"
#include "ingest/detail/names.h"
#include "ingest/detail/tls_context.h"
#include "ingest/detail/waiters.h"
#include "metrics/metrics.h"

namespace qseal::ingest {

using detail::AccessControl;
using detail::Answer;
using detail::BodySink;
using detail::Decision;
using detail::Dump;
using detail::HttpResponse;
using detail::IsFinal;
using detail::MakeProblem;
using detail::MakeResponse;
using detail::Query;
using detail::RequestHeader;
using detail::Respond;
using detail::StatusJson;
namespace http = detail::http;

class ApiServer::Impl : public detail::HttpHandler {
 public:
  Impl(ApiServerOptions options, queue::Queue* queue, ReadinessCheck readiness)
      : options_(std::move(options)),
        queue_(queue),
        readiness_(std::move(readiness)),
        pool_(options_.commit_threads),
        waiters_(pool_),
        access_(options_.clients, options_.profiles, options_.on_refusal),
        batches_(options_, queue_, pool_, waiters_, access_, [this] { return Stopped(); }),
        csc_(options_, queue_, pool_, waiters_, access_, [this] { return Stopped(); }),
        server_(ToHttpOptions(options_), this) {}

  ~Impl() { Stop(); }

  Status Start() {
    QSEAL_RETURN_IF_ERROR(server_.Start());
    waiters_.Start();
    return Status::Ok();
  }

  void Stop() {
    {
      MutexLock lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    waiters_.Stop();  // Pending ?wait requests are answered now.
    pool_.join();     // Commits already accepted finish and answer.
    server_.Stop();
  }

  std::uint16_t port() const { return server_.port(); }

  void Notify(const queue::DocumentId& id) { waiters_.Notify(id); }

  // Routes the request and counts it (route template, method, status, duration; refusals).
  Status ReloadTls() { return server_.ReloadTls(); }

  Decision OnRequest(const RequestHeader& req, const detail::Peer& remote) override {
    if (options_.metrics == nullptr) return Route(req, remote);
    auto start = std::chrono::steady_clock::now();
    std::string route(RouteTemplate(req));
    std::string method(req.method_string().data(), req.method_string().size());
    metrics::Metrics* m = options_.metrics;
    auto count = [m, route, method, start](const HttpResponse& res) {
      int status = static_cast<int>(res.result_int());
      m->HttpRequest(route, method, status, std::chrono::steady_clock::now() - start);
      if ((route == "/v1/documents" || route == "/v1/digests") && status >= 400)
        m->DocumentRejected("api", std::to_string(status));
    };
    Decision d = Route(req, remote);
    if (d.response) {
      count(*d.response);
    } else if (d.deferred) {
      d.deferred = [inner = std::move(d.deferred), count](Respond respond) {
        inner([respond = std::move(respond), count](HttpResponse res) {
          count(res);
          respond(std::move(res));
        });
      };
    } else if (d.sink) {
      d.sink = std::make_unique<CountingSink>(std::move(d.sink), count);
    }
    return d;
  }

 private:
  // Bounded route labels: ids never become label values.
  static std::string_view RouteTemplate(const RequestHeader& req) {
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    for (std::string_view fixed : {"/livez", "/readyz", "/v1/documents", "/v1/digests",
                                   "/v1/profiles", "/v1/batches", "/v1/batches/status"}) {
      if (path == fixed) return fixed;
    }
    if (path.rfind(detail::CscHandler::kPrefix, 0) == 0) {
      for (std::string_view csc :
           {"/csc/v2/info", "/csc/v2/credentials/list", "/csc/v2/credentials/info",
            "/csc/v2/signatures/signHash", "/csc/v2/signatures/signDoc"}) {
        if (path == csc) return csc;
      }
      return "other";
    }
    if (path.rfind("/v1/documents/", 0) == 0) {
      return path.size() > 5 && path.substr(path.size() - 5) == "/seal" ? "/v1/documents/{id}/seal"
                                                                        : "/v1/documents/{id}";
    }
    return "other";
  }

  // Forwards to the real sink and counts the response it finally gives.
  class CountingSink : public BodySink {
   public:
    CountingSink(std::unique_ptr<BodySink> inner, std::function<void(const HttpResponse&)> count)
        : inner_(std::move(inner)), count_(std::move(count)) {}
    Status Append(ByteSpan chunk) override { return inner_->Append(chunk); }
    void Finish(Respond respond) override {
      inner_->Finish([respond = std::move(respond), count = count_](HttpResponse res) {
        count(res);
        respond(std::move(res));
      });
    }
    void Abort() override { inner_->Abort(); }
    http::status ErrorStatus(const Status& s) const override { return inner_->ErrorStatus(s); }

   private:
    std::unique_ptr<BodySink> inner_;
    std::function<void(const HttpResponse&)> count_;
  };

  Decision Route(const RequestHeader& req, const detail::Peer& peer) {
    Decision d;
    std::string_view target(req.target().data(), req.target().size());
    std::size_t qmark = target.find('?');
    std::string_view path = target.substr(0, qmark);
    Query query =
        detail::ParseQuery(qmark == std::string_view::npos ? "" : target.substr(qmark + 1));

    if (path == "/livez") {
      d.response = IsGet(req) ? MakeResponse(http::status::ok, req, "{\"status\":\"alive\"}\n",
                                             "application/json")
                              : MethodNotAllowed(req);
      return d;
    }
    if (path == "/readyz") {
      if (!IsGet(req)) return Answer(MethodNotAllowed(req));
      Status ready = Ready();
      nlohmann::ordered_json j;
      j["status"] = ready.ok() ? "ready" : "not ready";
      if (!ready.ok()) j["reason"] = ready.message();
      return Answer(MakeResponse(ready.ok() ? http::status::ok : http::status::service_unavailable,
                                 req, Dump(j), "application/json"));
    }
    const bool csc = path.rfind(detail::CscHandler::kPrefix, 0) == 0 && csc_.enabled();
    if (csc && path == "/csc/v2/info") return csc_.Info(req);
    if (path.rfind("/v1/", 0) != 0 && !csc)
      return Answer(MakeProblem(http::status::not_found, req, "no such resource"));

    // Everything under /v1 (and the CSC methods) needs a valid credential, checked before any
    // body is read.
    const ApiClient* client = access_.Authenticate(req, peer.certificate);
    if (client == nullptr) {
      // A flood of bad credentials must not flood the log: one line per second (burst 10), the
      // next one saying how many were not logged. The audit trail and the metrics see them all.
      std::uint64_t unlogged = 0;
      if (failed_login_log_.Admit(&unlogged)) {
        LogWarn("request refused: no valid credentials",
                {{"path", std::string(path)},
                 {"source", peer.address},
                 {"not_logged_before", static_cast<std::int64_t>(unlogged)}});
      }
      access_.Refused("auth_denied", "", "", "no valid credentials", peer.address);
      constexpr std::string_view kWhy = "a valid bearer token or client certificate is required";
      HttpResponse res =
          csc ? detail::MakeCscError(http::status::unauthorized, req, "invalid_token", kWhy)
              : MakeProblem(http::status::unauthorized, req, kWhy);
      res.set(http::field::www_authenticate, "Bearer realm=\"qseal\"");
      return Answer(std::move(res));
    }
    if (!AdmitClientRequest(*client)) {
      return Answer(detail::MakeRetryLater(http::status::too_many_requests, req,
                                           "request rate of this client over its limit", 1));
    }
    if (queue_ == nullptr) {
      return Answer(MakeProblem(http::status::service_unavailable, req, "the queue is not open"));
    }

    if (csc) {
      return csc_.Route(req, path.substr(detail::CscHandler::kPrefix.size()), *client,
                        peer.address);
    }
    if (path == "/v1/documents") {
      if (req.method() != http::verb::post) return Answer(MethodNotAllowed(req));
      return Submit(req, *client, query, peer.address);
    }
    if (path == "/v1/digests") {
      if (req.method() != http::verb::post) return Answer(MethodNotAllowed(req));
      return SubmitDigest(req, *client, query, peer.address);
    }
    if (path == "/v1/batches") {
      if (req.method() != http::verb::post) return Answer(MethodNotAllowed(req));
      return batches_.SubmitBatch(req, *client, query, peer.address);
    }
    if (path == "/v1/batches/status") {
      if (req.method() != http::verb::post) return Answer(MethodNotAllowed(req));
      return batches_.BatchStatus(req, *client, query);
    }
    if (path == "/v1/profiles") {
      if (!IsGet(req)) return Answer(MethodNotAllowed(req));
      return Answer(Profiles(req, *client));
    }
    constexpr std::string_view kDocs = "/v1/documents/";
    if (path.rfind(kDocs, 0) == 0) {
      if (!IsGet(req)) return Answer(MethodNotAllowed(req));
      std::string_view rest = path.substr(kDocs.size());
      bool seal = false;
      constexpr std::string_view kSeal = "/seal";
      if (rest.size() > kSeal.size() && rest.substr(rest.size() - kSeal.size()) == kSeal) {
        seal = true;
        rest.remove_suffix(kSeal.size());
      }
      return Document(req, *client, rest, seal);
    }
    return Answer(MakeProblem(http::status::not_found, req, "no such resource"));
  }

  class SubmitSink : public BodySink {
   public:
    SubmitSink(Impl* api, std::unique_ptr<queue::PendingDocument> pending, RequestHeader req,
               std::chrono::milliseconds wait, std::string client, std::string source)
        : api_(api),
          pending_(std::move(pending)),
          req_(std::make_shared<RequestHeader>(std::move(req))),
          wait_(wait),
          client_(std::move(client)),
          source_(std::move(source)) {}

    Status Append(ByteSpan chunk) override { return pending_->Append(chunk); }

    void Finish(Respond respond) override {
      // The synced commit blocks: run it on the commit pool, where concurrent submissions share
      // one fsync (group commit), never on an Asio thread.
      auto pending = std::make_shared<std::unique_ptr<queue::PendingDocument>>(std::move(pending_));
      boost::asio::post(api_->pool_, [api = api_, pending, req = req_, wait = wait_,
                                      client = client_, source = source_,
                                      respond = std::move(respond)]() mutable {
        api->CommitSubmission(std::move(*pending), req, wait, client, source, std::move(respond));
      });
    }

    void Abort() override { pending_.reset(); }

   private:
    Impl* api_;
    std::unique_ptr<queue::PendingDocument> pending_;
    std::shared_ptr<RequestHeader> req_;
    std::chrono::milliseconds wait_;
    std::string client_;
    std::string source_;  // the caller's IP address, for the audit of a refusal
  };

  static bool IsGet(const RequestHeader& req) {
    return req.method() == http::verb::get || req.method() == http::verb::head;
  }
  static HttpResponse MethodNotAllowed(const RequestHeader& req) {
    return MakeProblem(http::status::method_not_allowed, req, "method not allowed");
  }

  Status Ready() {
    {
      MutexLock lock(mu_);
      if (stopped_) return UnavailableError("shutting down");
    }
    if (queue_ != nullptr) QSEAL_RETURN_IF_ERROR(queue_->Health());
    return readiness_ ? readiness_() : Status::Ok();
  }

  HttpResponse Unavailable(const RequestHeader& req, http::status code, std::string_view detail) {
    return detail::MakeRetryLater(code, req, detail, options_.retry_after_seconds);
  }

  // One token bucket per configured client (built in the constructor, never changed after).
  bool AdmitClientRequest(const ApiClient& client) {
    auto it = client_rates_.find(client.name);
    if (it == client_rates_.end()) return true;
    std::uint64_t over = 0;
    return it->second->Admit(&over);
  }

  static std::map<std::string, std::unique_ptr<audit::RefusalLimiter>> ClientRates(
      const ApiServerOptions& o) {
    std::map<std::string, std::unique_ptr<audit::RefusalLimiter>> rates;
    if (o.client_requests_per_second <= 0) return rates;
    const double burst =
        o.client_burst >= 1 ? o.client_burst : std::max(1.0, 2 * o.client_requests_per_second);
    for (const auto& c : o.clients) {
      rates[c.name] = std::make_unique<audit::RefusalLimiter>(o.client_requests_per_second, burst);
    }
    return rates;
  }

  bool Stopped() {
    MutexLock lock(mu_);
    return stopped_;
  }

  Decision Submit(const RequestHeader& req, const ApiClient& client, const Query& query,
                  std::string_view source) {
    std::string profile = detail::RequestedProfile(query);
    if (auto refusal = access_.ProfileRefusal(req, client, profile, source)) {
      return Answer(std::move(*refusal));
    }
    std::optional<std::chrono::milliseconds> parsed_wait =
        detail::ParseWait(query, options_.max_wait);
    if (!parsed_wait) {
      return Answer(
          MakeProblem(http::status::bad_request, req, "wait must be a number of seconds"));
    }
    std::chrono::milliseconds wait = *parsed_wait;
    if (Stopped()) {
      return Answer(Unavailable(req, http::status::service_unavailable, "shutting down"));
    }
    queue::NewDocument doc;
    doc.profile = profile;
    doc.source = queue::Source::kApi;
    doc.client = client.name;
    doc.name = detail::SanitizeClientName(
        std::string_view(req["X-Filename"].data(), req["X-Filename"].size()));
    auto ctype = req[http::field::content_type];
    doc.media_type = std::string(ctype.data(), std::min<std::size_t>(ctype.size(), 200));
    auto key = req["Idempotency-Key"];
    if (key.size() > 200)
      return Answer(MakeProblem(http::status::bad_request, req,
                                "Idempotency-Key longer than 200 characters"));
    doc.idempotency_key = std::string(key.data(), key.size());

    Result<std::unique_ptr<queue::PendingDocument>> pending = queue_->Begin(doc);
    if (!pending.ok()) {
      const Status& s = pending.status();
      if (s.code() == StatusCode::kResourceExhausted) {
        return Answer(
            Unavailable(req, http::status::service_unavailable, "the queue is full; retry later"));
      }
      if (s.code() == StatusCode::kInvalidArgument)
        return Answer(MakeProblem(http::status::bad_request, req, s.message()));
      return Answer(Unavailable(req, http::status::service_unavailable, s.message()));
    }
    Decision d;
    d.sink = std::make_unique<SubmitSink>(this, std::move(*pending), req, wait, client.name,
                                          std::string(source));
    return d;
  }

  // POST /v1/digests: the checks that need no body first (as for documents), the body on the
  // commit pool, where its record is committed like a document's.
  Decision SubmitDigest(const RequestHeader& req, const ApiClient& client, const Query& query,
                        std::string_view source) {
    std::optional<std::chrono::milliseconds> wait = detail::ParseWait(query, options_.max_wait);
    if (!wait) {
      return Answer(
          MakeProblem(http::status::bad_request, req, "wait must be a number of seconds"));
    }
    if (Stopped()) {
      return Answer(Unavailable(req, http::status::service_unavailable, "shutting down"));
    }
    auto key = req["Idempotency-Key"];
    if (key.size() > 200) {
      return Answer(MakeProblem(http::status::bad_request, req,
                                "Idempotency-Key longer than 200 characters"));
    }
    auto shared_req = std::make_shared<RequestHeader>(req);
    Decision d;
    d.sink = std::make_unique<detail::BufferSink>(
        kMaxDigestBodyBytes,
        [this, shared_req, client = &client, query_profile = detail::RequestedProfile(query),
         source = std::string(source), wait = *wait,
         idempotency_key = std::string(key.data(), key.size())](std::string body,
                                                                Respond respond) mutable {
          boost::asio::post(
              pool_, [=, this, body = std::move(body), respond = std::move(respond)]() mutable {
                CommitDigest(body, shared_req, *client, query_profile, source, wait,
                             idempotency_key, std::move(respond));
              });
        });
    return d;
  }

  static constexpr std::size_t kMaxDigestBodyBytes = 16 << 10;

  void CommitDigest(const std::string& body, const std::shared_ptr<RequestHeader>& req,
                    const ApiClient& client, const std::string& query_profile,
                    const std::string& source, std::chrono::milliseconds wait,
                    const std::string& idempotency_key, Respond respond) {
    Result<detail::DigestRequest> parsed = detail::ParseDigestRequest(body);
    if (!parsed.ok()) {
      return respond(MakeProblem(parsed.status().code() == StatusCode::kInvalidArgument
                                     ? http::status::bad_request
                                     : http::status::unprocessable_entity,
                                 *req, parsed.status().message()));
    }
    const std::string profile = parsed->profile.value_or(query_profile);
    if (auto refusal = access_.ProfileRefusal(*req, client, profile, source)) {
      return respond(std::move(*refusal));
    }
    // The profile must be one that signs over the digest alone, with this algorithm; refused
    // here, before anything is queued (the engine checks again).
    const ApiProfile* p = access_.FindProfile(profile);
    if (p == nullptr) {
      return respond(MakeProblem(http::status::not_found, *req, "no such profile"));
    }
    if (p->format != "cades-detached") {
      return respond(MakeProblem(http::status::unprocessable_entity, *req,
                                 "profile \"" + profile + "\" is " + p->format +
                                     ", which embeds or parses the document: digest-only "
                                     "sealing needs a cades-detached profile"));
    }
    const std::string alg(DigestName(parsed->algorithm));
    if (p->digest != alg) {
      return respond(
          MakeProblem(http::status::unprocessable_entity, *req,
                      "profile \"" + profile + "\" seals " + p->digest + " digests, not " + alg));
    }
    queue::NewDocument doc;
    doc.profile = profile;
    doc.source = queue::Source::kApi;
    doc.client = client.name;
    doc.name = detail::SanitizeClientName(parsed->filename);
    doc.media_type = parsed->media_type;
    doc.idempotency_key = idempotency_key;
    doc.digest_algorithm = alg;
    Result<std::unique_ptr<queue::PendingDocument>> pending = queue_->Begin(doc);
    if (!pending.ok()) {
      const Status& s = pending.status();
      if (s.code() == StatusCode::kResourceExhausted) {
        return respond(
            Unavailable(*req, http::status::service_unavailable, "the queue is full; retry later"));
      }
      if (s.code() == StatusCode::kInvalidArgument)
        return respond(MakeProblem(http::status::bad_request, *req, s.message()));
      return respond(Unavailable(*req, http::status::service_unavailable, s.message()));
    }
    Status appended = (*pending)->Append(parsed->digest);
    if (!appended.ok()) {
      return respond(Unavailable(*req, http::status::service_unavailable, appended.message()));
    }
    CommitSubmission(std::move(*pending), req, wait, client.name, source, std::move(respond),
                     profile);
  }

  void CommitSubmission(std::unique_ptr<queue::PendingDocument> pending,
                        const std::shared_ptr<RequestHeader>& req, std::chrono::milliseconds wait,
                        const std::string& client, const std::string& source, Respond respond,
                        const std::string& profile = {}) {
    Result<queue::EnqueueResult> r = queue_->Commit(std::move(pending));
    if (!r.ok()) {
      const Status& s = r.status();
      if (s.code() == StatusCode::kFailedPrecondition) {
        access_.Refused("rejected", client, "", "Idempotency-Key reused for another document",
                        source);
        return respond(MakeProblem(http::status::unprocessable_entity, *req,
                                   "Idempotency-Key was used before for a different document"));
      }
      LogError("submission not accepted", {{"error", s.ToString()}});
      return respond(Unavailable(*req, http::status::service_unavailable, s.message()));
    }
    if (options_.metrics != nullptr && !r->duplicate) {
      options_.metrics->DocumentAccepted("api", profile.empty() ? ProfileOf(*req) : profile,
                                         r->size);
    }
    if (wait.count() > 0) {
      queue::DocumentId id = r->id;
      waiters_.WaitForOne(
          id, std::chrono::steady_clock::now() + wait,
          [this, id, req, respond = std::move(respond)] { AnswerWaiter(id, *req, respond); },
          [this](const queue::DocumentId& done) {
            Result<queue::Record> rec = queue_->Get(done);
            return rec.ok() && IsFinal(rec->state);
          });
      return;
    }
    nlohmann::ordered_json j;
    j["id"] = r->id.ToString();
    j["status"] = "queued";
    j["sha256"] = r->sha256_hex;
    j["size"] = r->size;
    if (r->duplicate) j["duplicate"] = true;
    HttpResponse res = MakeResponse(http::status::accepted, *req, Dump(j), "application/json");
    res.set(http::field::location, "/v1/documents/" + r->id.ToString());
    respond(std::move(res));
    QSEAL_CRASH_POINT("api.acked");
  }

  static std::string ProfileOf(const RequestHeader& req) {
    std::string_view target(req.target().data(), req.target().size());
    std::size_t q = target.find('?');
    return detail::RequestedProfile(
        detail::ParseQuery(q == std::string_view::npos ? "" : target.substr(q + 1)));
  }

  // The answer to POST /v1/documents?wait: the document's status, 200 once final.
  void AnswerWaiter(const queue::DocumentId& id, const RequestHeader& req, const Respond& respond) {
    Result<queue::Record> rec = queue_->Get(id);
    if (!rec.ok()) {
      return respond(MakeProblem(http::status::internal_server_error, req, rec.status().message()));
    }
    bool done = IsFinal(rec->state);
    HttpResponse res = MakeResponse(done ? http::status::ok : http::status::accepted, req,
                                    Dump(StatusJson(*rec)), "application/json");
    res.set(http::field::location, "/v1/documents/" + id.ToString());
    respond(std::move(res));
  }

  HttpResponse Profiles(const RequestHeader& req, const ApiClient& client) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& p : options_.profiles) {
      if (!AccessControl::Allowed(client, p.name)) continue;
      list.push_back({{"name", p.name},
                      {"format", p.format},
                      {"digest", p.digest},
                      {"scheme", p.scheme},
                      {"level", p.level},
                      {"certificate_chain", p.certificate_chain_pem}});
    }
    nlohmann::ordered_json j;
    j["profiles"] = list;
    return MakeResponse(http::status::ok, req, Dump(j), "application/json");
  }

  // A document's status, or its seal (streamed from the queue: a seal may be as large as its
  // document).
  Decision Document(const RequestHeader& req, const ApiClient& client, std::string_view id_text,
                    bool seal) {
    Result<queue::DocumentId> id = queue::DocumentId::Parse(id_text);
    if (!id.ok()) return Answer(MakeProblem(http::status::not_found, req, "no such document"));
    Result<queue::Record> rec = queue_->Get(*id);
    // Another client's document is reported exactly like an unknown one.
    if (!rec.ok() || rec->client != client.name) {
      if (rec.ok() || rec.status().code() == StatusCode::kNotFound) {
        return Answer(MakeProblem(http::status::not_found, req, "no such document"));
      }
      return Answer(MakeProblem(http::status::internal_server_error, req, rec.status().message()));
    }
    if (!seal)
      return Answer(
          MakeResponse(http::status::ok, req, Dump(StatusJson(*rec)), "application/json"));
    if (rec->state != queue::State::kSealed) {
      return Answer(
          MakeProblem(http::status::conflict, req,
                      "document is " + std::string(detail::ApiState(rec->state)) + ", not sealed"));
    }
    Result<std::unique_ptr<queue::PayloadReader>> opened = queue_->OpenSeal(*id);
    if (!opened.ok())
      return Answer(
          MakeProblem(http::status::internal_server_error, req, opened.status().message()));
    std::shared_ptr<queue::PayloadReader> reader = std::move(opened).value();
    HttpResponse res = MakeResponse(
        http::status::ok, req, "",
        rec->seal_media_type.empty() ? "application/octet-stream" : rec->seal_media_type);
    if (options_.seal_namer != nullptr) {
      Result<std::string> filename =
          options_.seal_namer->SealName(*rec, rec->name.empty() ? rec->id.ToString() : rec->name);
      if (filename.ok()) {  // else a profile no longer configured: no name to offer
        std::string safe;
        for (char c : *filename) safe += (c == '"' || c == '\\') ? '_' : c;
        res.set(http::field::content_disposition, "attachment; filename=\"" + safe + "\"");
      }
    }
    std::uint64_t size = reader->size();
    return detail::AnswerStreamed(
        std::move(res), size, [reader](std::span<std::uint8_t> buf) { return reader->Read(buf); });
  }

  static detail::HttpServerOptions ToHttpOptions(const ApiServerOptions& o) {
    detail::HttpServerOptions h;
    h.host = o.host;
    h.port = o.port;
    h.max_header_bytes = o.max_header_bytes;
    h.max_body_bytes = o.max_body_bytes;
    h.header_timeout = o.header_timeout;
    h.body_timeout = o.body_timeout;
    h.max_connections = o.max_connections;
    h.max_connections_per_source = o.max_connections_per_source;
    h.threads = o.threads;
    h.tls.certificate_file = o.tls_certificate_file;
    h.tls.key_file = o.tls_key_file;
    h.tls.client_ca_file = o.client_ca_file;
    h.tls.require_client_certificate = o.require_client_certificate;
    return h;
  }

  const ApiServerOptions options_;
  queue::Queue* const queue_;
  const ReadinessCheck readiness_;
  boost::asio::thread_pool pool_;
  detail::Waiters waiters_;  // Has its own mutex, never locked while mu_ is held.
  const AccessControl access_;
  detail::BatchHandler batches_;
  detail::CscHandler csc_;
  detail::HttpServer server_;

  audit::RefusalLimiter failed_login_log_{1, 10};
  const std::map<std::string, std::unique_ptr<audit::RefusalLimiter>> client_rates_ =
      ClientRates(options_);

  Mutex mu_;
  bool stopped_ QSEAL_GUARDED_BY(mu_) = false;
};

ApiServer::ApiServer(ApiServerOptions options, queue::Queue* queue, ReadinessCheck readiness)
    : impl_(std::make_unique<Impl>(std::move(options), queue, std::move(readiness))) {}
ApiServer::~ApiServer() { Stop(); }
Status ApiServer::Start() { return impl_->Start(); }
std::uint16_t ApiServer::port() const { return impl_->port(); }
void ApiServer::Stop() { impl_->Stop(); }
Status ApiServer::ReloadTls() { return impl_->ReloadTls(); }
void ApiServer::Notify(const queue::DocumentId& id) { impl_->Notify(id); }

Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const std::string& certificate_file, const std::string& key_file,
    const std::string& client_ca_file, bool require_client_certificate) {
  detail::TlsServerFiles files;
  files.certificate_file = certificate_file;
  files.key_file = key_file;
  files.client_ca_file = client_ca_file;
  files.require_client_certificate = require_client_certificate;
  return detail::MakeServerTlsContext(files);
}

}  // namespace qseal::ingest
