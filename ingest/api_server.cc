#include "ingest/api_server.h"

#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>
#include <openssl/sha.h>

#include "common/clock.h"
#include "common/crash_point.h"
#include "common/log.h"
#include "common/mutex.h"
#include "ingest/detail/http_server.h"
#include "ingest/detail/multipart.h"
#include "ingest/detail/names.h"
#include "metrics/metrics.h"

namespace qseal::ingest {

using detail::BodySink;
using detail::Decision;
using detail::HttpResponse;
using detail::MakeProblem;
using detail::MakeResponse;
using detail::RequestHeader;
using detail::Respond;
namespace http = detail::http;

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string UrlDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 && HexDigit(s[i + 2]) >= 0) {
      out += static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    std::size_t eq = part.find('=');
    std::string key = UrlDecode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : UrlDecode(part.substr(eq + 1));
    if (!key.empty()) out[key] = value;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::string_view ApiState(queue::State s) {
  switch (s) {
    case queue::State::kQueued:
      return "queued";
    case queue::State::kLeased:
      return "sealing";
    case queue::State::kSealed:
      return "sealed";
    case queue::State::kFailed:
      return "failed";
  }
  return "queued";
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool IsFinal(queue::State s) { return s == queue::State::kSealed || s == queue::State::kFailed; }

nlohmann::ordered_json StatusJson(const queue::Record& r) {
  nlohmann::ordered_json j;
  j["id"] = r.id.ToString();
  j["status"] = std::string(ApiState(r.state));
  j["profile"] = r.profile;
  j["sha256"] = r.sha256_hex;
  j["size"] = r.size;
  if (!r.name.empty()) j["name"] = r.name;
  j["created_at"] = FormatUtc(r.created_at);
  if (r.state == queue::State::kSealed) j["sealed_at"] = FormatUtc(r.sealed_at);
  if (!r.error_code.empty()) {
    j[r.state == queue::State::kFailed ? "error" : "last_error"] = {{"code", r.error_code},
                                                                    {"message", r.error_message}};
  }
  j["attempts"] = r.attempts;
  return j;
}

nlohmann::ordered_json ProblemJson(http::status status, std::string_view detail) {
  nlohmann::ordered_json j;
  j["status"] = static_cast<int>(status);
  j["title"] = std::string(http::obsolete_reason(status));
  j["detail"] = std::string(detail);
  return j;
}

std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace

class ApiServer::Impl : public detail::HttpHandler {
 public:
  Impl(ApiServerOptions options, queue::Queue* queue, ReadinessCheck readiness)
      : options_(std::move(options)),
        queue_(queue),
        readiness_(std::move(readiness)),
        pool_(options_.commit_threads),
        server_(ToHttpOptions(options_), this) {}

  ~Impl() { Stop(); }

  Status Start() {
    QSEAL_RETURN_IF_ERROR(server_.Start());
    waiter_thread_ = std::thread([this] { WaiterLoop(); });
    return Status::Ok();
  }

  void Stop() {
    {
      MutexLock lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      waiter_cv_.SignalAll();
    }
    if (waiter_thread_.joinable()) waiter_thread_.join();
    ExpireWaiters(/*all=*/true);
    pool_.join();  // Commits already accepted finish and answer.
    server_.Stop();
  }

  std::uint16_t port() const { return server_.port(); }

  void Notify(const queue::DocumentId& id) {
    std::vector<Waiter> ready;
    {
      MutexLock lock(mu_);
      auto range = waiters_.equal_range(id);
      for (auto it = range.first; it != range.second; ++it) ready.push_back(std::move(it->second));
      waiters_.erase(range.first, range.second);
    }
    for (auto& w : ready) AnswerWaiter(w);
    std::vector<std::shared_ptr<GroupWaiter>> groups;
    {
      MutexLock lock(mu_);
      auto range = group_index_.equal_range(id);
      for (auto it = range.first; it != range.second; ++it) groups.push_back(it->second);
    }
    for (auto& g : groups) Settle(g, id);
  }

  // Routes the request and counts it (route template, method, status, duration; refusals).
  Decision OnRequest(const RequestHeader& req, const std::string& remote) override {
    if (options_.metrics == nullptr) return Route(req, remote);
    auto start = std::chrono::steady_clock::now();
    std::string route(RouteTemplate(req));
    std::string method(req.method_string().data(), req.method_string().size());
    metrics::Metrics* m = options_.metrics;
    auto count = [m, route, method, start](const HttpResponse& res) {
      int status = static_cast<int>(res.result_int());
      m->HttpRequest(route, method, status, std::chrono::steady_clock::now() - start);
      if (route == "/v1/documents" && status >= 400)
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
    for (std::string_view fixed : {"/livez", "/readyz", "/v1/documents", "/v1/profiles",
                                   "/v1/batches", "/v1/batches/status"}) {
      if (path == fixed) return fixed;
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

  Decision Route(const RequestHeader& req, const std::string& /*remote*/) {
    Decision d;
    std::string_view target(req.target().data(), req.target().size());
    std::size_t qmark = target.find('?');
    std::string_view path = target.substr(0, qmark);
    auto query = ParseQuery(qmark == std::string_view::npos ? "" : target.substr(qmark + 1));

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
    if (path.rfind("/v1/", 0) != 0)
      return Answer(MakeProblem(http::status::not_found, req, "no such resource"));

    // Everything under /v1 needs a valid token, checked before any body is read.
    const ApiClient* client = Authenticate(req);
    if (client == nullptr) {
      LogWarn("request refused: no valid credentials", {{"path", std::string(path)}});
      Refused("auth_denied", "", "", "no valid bearer token");
      HttpResponse res =
          MakeProblem(http::status::unauthorized, req, "a valid bearer token is required");
      res.set(http::field::www_authenticate, "Bearer realm=\"qseal\"");
      return Answer(std::move(res));
    }
    if (queue_ == nullptr) {
      return Answer(MakeProblem(http::status::service_unavailable, req, "the queue is not open"));
    }

    if (path == "/v1/documents") {
      if (req.method() != http::verb::post) return Answer(MethodNotAllowed(req));
      return Submit(req, *client, query);
    }
    if (path == "/v1/batches") {
      if (req.method() != http::verb::post) return Answer(MethodNotAllowed(req));
      return SubmitBatch(req, *client, query);
    }
    if (path == "/v1/batches/status") {
      if (req.method() != http::verb::post) return Answer(MethodNotAllowed(req));
      return BatchStatus(req, *client, query);
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
      return Answer(Document(req, *client, rest, seal));
    }
    return Answer(MakeProblem(http::status::not_found, req, "no such resource"));
  }

  struct Waiter {
    queue::DocumentId id;
    std::shared_ptr<RequestHeader> req;
    Respond respond;
    std::chrono::steady_clock::time_point deadline;
    std::string client;
  };

  class SubmitSink : public BodySink {
   public:
    SubmitSink(Impl* api, std::unique_ptr<queue::PendingDocument> pending, RequestHeader req,
               std::chrono::milliseconds wait, std::string client)
        : api_(api),
          pending_(std::move(pending)),
          req_(std::make_shared<RequestHeader>(std::move(req))),
          wait_(wait),
          client_(std::move(client)) {}

    Status Append(ByteSpan chunk) override { return pending_->Append(chunk); }

    void Finish(Respond respond) override {
      // The synced commit blocks: run it on the commit pool, where concurrent submissions share
      // one fsync (group commit), never on an Asio thread.
      auto pending = std::make_shared<std::unique_ptr<queue::PendingDocument>>(std::move(pending_));
      boost::asio::post(api_->pool_, [api = api_, pending, req = req_, wait = wait_,
                                      client = client_, respond = std::move(respond)]() mutable {
        api->CommitSubmission(std::move(*pending), req, wait, client, std::move(respond));
      });
    }

    void Abort() override { pending_.reset(); }

   private:
    Impl* api_;
    std::unique_ptr<queue::PendingDocument> pending_;
    std::shared_ptr<RequestHeader> req_;
    std::chrono::milliseconds wait_;
    std::string client_;
  };

  static Decision Answer(HttpResponse res) {
    Decision d;
    d.response = std::move(res);
    return d;
  }
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

  void Refused(std::string_view kind, std::string_view client, std::string_view profile,
               std::string_view reason) const {
    if (options_.on_refusal) options_.on_refusal(kind, client, profile, reason);
  }

  const ApiClient* Authenticate(const RequestHeader& req) const {
    // Authorization is a singleton field: with two, which one counts would depend on who reads.
    if (req.count(http::field::authorization) != 1) return nullptr;
    auto auth = req[http::field::authorization];
    std::string_view value(auth.data(), auth.size());
    // The scheme name is case-insensitive (RFC 9110 §11.1); the token is compared exactly.
    constexpr std::string_view kBearer = "Bearer ";
    if (value.size() <= kBearer.size() ||
        !boost::beast::iequals(auth.substr(0, kBearer.size()), "Bearer "))
      return nullptr;
    std::string_view token = value.substr(kBearer.size());
    std::uint8_t hash[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), hash);
    const ApiClient* found = nullptr;
    // Compare against every client so the time does not tell which one matched.
    for (const auto& c : options_.clients) {
      if (ConstantTimeEquals(ByteSpan(hash, sizeof(hash)), c.token_sha256)) found = &c;
    }
    return found;
  }

  static bool Allowed(const ApiClient& client, const std::string& profile) {
    for (const auto& p : client.profiles) {
      if (p == "*" || p == profile) return true;
    }
    return false;
  }

  const ApiProfile* FindProfile(const std::string& name) const {
    for (const auto& p : options_.profiles) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }

  HttpResponse Unavailable(const RequestHeader& req, http::status code, std::string_view detail) {
    HttpResponse res = MakeProblem(code, req, detail);
    res.set(http::field::retry_after, std::to_string(options_.retry_after_seconds));
    return res;
  }

  // The refusal for a profile the client may not use or that does not exist, if any (audited).
  std::optional<HttpResponse> ProfileRefusal(const RequestHeader& req, const ApiClient& client,
                                             const std::string& profile) {
    if (!Allowed(client, profile)) {
      LogWarn("request refused: profile not granted",
              {{"client", client.name}, {"profile", profile}});
      Refused("auth_denied", client.name, profile, "profile not granted");
      return MakeProblem(http::status::forbidden, req,
                         "profile \"" + profile + "\" is not granted to this client");
    }
    if (FindProfile(profile) == nullptr) {
      Refused("rejected", client.name, profile, "unknown profile");
      return MakeProblem(http::status::not_found, req, "unknown profile \"" + profile + "\"");
    }
    return std::nullopt;
  }

  // ?wait=SECONDS, capped at max_wait; 0 without it. nullopt when malformed.
  std::optional<std::chrono::milliseconds> ParseWait(
      const std::map<std::string, std::string>& query) const {
    std::chrono::milliseconds wait{0};
    if (auto w = query.find("wait"); w != query.end()) {
      char* end = nullptr;
      double secs = std::strtod(w->second.c_str(), &end);
      if (end == w->second.c_str() || *end != '\0' || !(secs >= 0)) return std::nullopt;
      wait = secs * 1000 >= static_cast<double>(options_.max_wait.count())
                 ? options_.max_wait
                 : std::chrono::milliseconds(static_cast<std::int64_t>(secs * 1000));
    }
    return wait;
  }

  bool Stopped() {
    MutexLock lock(mu_);
    return stopped_;
  }

  Decision Submit(const RequestHeader& req, const ApiClient& client,
                  const std::map<std::string, std::string>& query) {
    auto it = query.find("profile");
    std::string profile = it == query.end() ? "default" : it->second;
    if (auto refusal = ProfileRefusal(req, client, profile)) return Answer(std::move(*refusal));
    std::optional<std::chrono::milliseconds> parsed_wait = ParseWait(query);
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
    d.sink = std::make_unique<SubmitSink>(this, std::move(*pending), req, wait, client.name);
    return d;
  }

  // ---- Batches: POST /v1/batches (multipart/mixed) and POST /v1/batches/status. ----

  // One part of a batch: its document being streamed in, or why it was refused.
  struct BatchPart {
    std::string name;
    std::unique_ptr<queue::PendingDocument> pending;
    std::uint64_t size = 0;
    http::status error_status = http::status::ok;  // ok: no error (yet)
    std::string error;
    std::optional<queue::EnqueueResult> result;

    void Reject(http::status status, std::string why) {
      pending.reset();
      if (error_status == http::status::ok) {
        error_status = status;
        error = std::move(why);
      }
    }
  };
  using BatchParts = std::vector<BatchPart>;

  Decision SubmitBatch(const RequestHeader& req, const ApiClient& client,
                       const std::map<std::string, std::string>& query) {
    auto it = query.find("profile");
    std::string profile = it == query.end() ? "default" : it->second;
    if (auto refusal = ProfileRefusal(req, client, profile)) return Answer(std::move(*refusal));
    std::optional<std::chrono::milliseconds> wait = ParseWait(query);
    if (!wait) {
      return Answer(
          MakeProblem(http::status::bad_request, req, "wait must be a number of seconds"));
    }
    auto ctype = req[http::field::content_type];
    Result<std::string> boundary =
        detail::MultipartBoundary(std::string_view(ctype.data(), ctype.size()));
    if (!boundary.ok()) {
      return Answer(
          MakeProblem(http::status::unsupported_media_type, req, boundary.status().message()));
    }
    auto length = req[http::field::content_length];
    if (!length.empty()) {
      char* end = nullptr;
      std::string text(length.data(), length.size());
      unsigned long long n = std::strtoull(text.c_str(), &end, 10);
      if (end != text.c_str() && n > options_.max_batch_bytes) {
        return Answer(MakeProblem(http::status::payload_too_large, req,
                                  "batch larger than the limit of " +
                                      std::to_string(options_.max_batch_bytes) + " bytes"));
      }
    }
    if (Stopped()) {
      return Answer(Unavailable(req, http::status::service_unavailable, "shutting down"));
    }
    // Refuse a whole batch up front when the queue is saturated, rather than part by part.
    if (Status admit = queue_->Admit(); !admit.ok()) {
      return Answer(Unavailable(req, http::status::service_unavailable,
                                admit.code() == StatusCode::kResourceExhausted
                                    ? "the queue is full; retry later"
                                    : admit.message()));
    }
    Decision d;
    d.sink =
        std::make_unique<BatchSink>(this, std::move(*boundary), req, *wait, client.name, profile);
    return d;
  }

  class BatchSink : public BodySink, public detail::MultipartHandler {
   public:
    BatchSink(Impl* api, std::string boundary, RequestHeader req, std::chrono::milliseconds wait,
              std::string client, std::string profile)
        : api_(api),
          parser_(std::move(boundary), Limits(api->options_), this),
          req_(std::make_shared<RequestHeader>(std::move(req))),
          wait_(wait),
          client_(std::move(client)),
          profile_(std::move(profile)),
          parts_(std::make_shared<BatchParts>()) {}

    Status Append(ByteSpan chunk) override {
      received_ += chunk.size();
      if (received_ > api_->options_.max_batch_bytes) {
        error_status_ = http::status::payload_too_large;
        return ResourceExhaustedError("batch larger than the limit of " +
                                      std::to_string(api_->options_.max_batch_bytes) + " bytes");
      }
      Status s = parser_.Feed(chunk);
      if (!s.ok()) {
        error_status_ = s.code() == StatusCode::kResourceExhausted ? http::status::payload_too_large
                                                                   : http::status::bad_request;
      }
      return s;
    }

    http::status ErrorStatus(const Status&) const override { return error_status_; }

    Status OnPartBegin(const detail::PartHeader& header) override {
      BatchPart& part = parts_->emplace_back();
      std::string_view filename = header.Get("X-Filename");
      part.name = detail::SanitizeClientName(filename);
      std::string_view key = header.Get("Idempotency-Key");
      std::string_view cte = header.Get("Content-Transfer-Encoding");
      if (header.Count("Idempotency-Key") > 1 || key.size() > 200) {
        part.Reject(http::status::bad_request,
                    "Idempotency-Key must appear at most once, up to 200 characters");
        return Status::Ok();
      }
      if (!cte.empty() && !EqualsIgnoreCase(cte, "binary") && !EqualsIgnoreCase(cte, "8bit") &&
          !EqualsIgnoreCase(cte, "7bit")) {
        part.Reject(http::status::unsupported_media_type,
                    "Content-Transfer-Encoding is not supported: a part is sealed as sent");
        return Status::Ok();
      }
      queue::NewDocument doc;
      doc.profile = profile_;
      doc.source = queue::Source::kApi;
      doc.client = client_;
      doc.name = part.name;
      std::string_view media = header.Get("Content-Type");
      doc.media_type = std::string(media.substr(0, std::min<std::size_t>(media.size(), 200)));
      doc.idempotency_key = std::string(key);
      Result<std::unique_ptr<queue::PendingDocument>> pending = api_->queue_->Begin(doc);
      if (!pending.ok()) {
        part.Reject(pending.status().code() == StatusCode::kInvalidArgument
                        ? http::status::bad_request
                        : http::status::service_unavailable,
                    pending.status().code() == StatusCode::kResourceExhausted
                        ? "the queue is full; retry later"
                        : pending.status().message());
        return Status::Ok();
      }
      part.pending = std::move(*pending);
      return Status::Ok();
    }

    Status OnPartData(ByteSpan data) override {
      BatchPart& part = parts_->back();
      part.size += data.size();
      if (!part.pending) return Status::Ok();  // refused: its bytes are skipped
      if (part.size > api_->options_.max_batch_part_bytes) {
        part.Reject(http::status::payload_too_large,
                    "part larger than the limit of " +
                        std::to_string(api_->options_.max_batch_part_bytes) + " bytes");
        return Status::Ok();
      }
      if (Status s = part.pending->Append(data); !s.ok()) {
        part.Reject(http::status::service_unavailable, s.message());
      }
      return Status::Ok();
    }

    Status OnPartEnd() override { return Status::Ok(); }

    void Finish(Respond respond) override {
      if (Status s = parser_.Finish(); !s.ok()) {
        parts_->clear();
        return respond(MakeProblem(http::status::bad_request, *req_, s.message()));
      }
      if (parts_->empty()) {
        return respond(
            MakeProblem(http::status::bad_request, *req_, "a batch needs at least one part"));
      }
      // As for one document: the synced commit runs on the commit pool, never on an Asio thread.
      boost::asio::post(api_->pool_,
                        [api = api_, parts = parts_, req = req_, wait = wait_, client = client_,
                         profile = profile_, respond = std::move(respond)]() mutable {
                          api->CommitBatch(*parts, req, wait, client, profile, std::move(respond));
                        });
    }

    void Abort() override { parts_->clear(); }

   private:
    static detail::MultipartLimits Limits(const ApiServerOptions& o) {
      detail::MultipartLimits l;
      l.max_parts = o.max_batch_parts;
      return l;
    }

    Impl* api_;
    detail::MultipartParser parser_;
    std::shared_ptr<RequestHeader> req_;
    std::chrono::milliseconds wait_;
    std::string client_;
    std::string profile_;
    std::shared_ptr<BatchParts> parts_;
    std::uint64_t received_ = 0;
    http::status error_status_ = http::status::bad_request;
  };

  void CommitBatch(BatchParts& parts, const std::shared_ptr<RequestHeader>& req,
                   std::chrono::milliseconds wait, const std::string& client,
                   const std::string& profile, Respond respond) {
    std::vector<std::unique_ptr<queue::PendingDocument>> pending;
    std::vector<std::size_t> index;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (parts[i].pending) {
        pending.push_back(std::move(parts[i].pending));
        index.push_back(i);
      }
    }
    std::vector<Result<queue::EnqueueResult>> results = queue_->CommitMany(std::move(pending));
    for (std::size_t k = 0; k < results.size(); ++k) {
      BatchPart& part = parts[index[k]];
      if (results[k].ok()) {
        part.result = *results[k];
        if (options_.metrics != nullptr && !results[k]->duplicate) {
          options_.metrics->DocumentAccepted("api", profile, results[k]->size);
        }
        continue;
      }
      const Status& s = results[k].status();
      if (s.code() == StatusCode::kFailedPrecondition) {
        Refused("rejected", client, profile, "Idempotency-Key reused for another document");
        part.Reject(http::status::unprocessable_entity,
                    "Idempotency-Key was used before for a different document");
      } else {
        LogError("batch part not accepted", {{"error", s.ToString()}});
        part.Reject(http::status::service_unavailable, s.message());
      }
    }
    std::size_t accepted = 0;
    bool only_unavailable = true;
    for (const BatchPart& part : parts) {
      if (part.result) {
        ++accepted;
      } else {
        if (part.error_status != http::status::service_unavailable) only_unavailable = false;
        if (options_.metrics != nullptr) {
          options_.metrics->DocumentRejected("api",
                                             std::to_string(static_cast<int>(part.error_status)));
        }
      }
    }
    if (accepted == 0 && only_unavailable) {
      return respond(
          Unavailable(*req, http::status::service_unavailable,
                      parts.front().error.empty() ? "not accepted" : parts.front().error));
    }
    auto shared = std::make_shared<BatchParts>(std::move(parts));
    auto answer = [this, shared, req, client, respond = std::move(respond)](bool waited) {
      respond(BatchResponse(*shared, *req, client, waited));
    };
    if (wait.count() > 0 && accepted > 0) {
      std::vector<queue::DocumentId> ids;
      for (const BatchPart& part : *shared) {
        if (part.result) ids.push_back(part.result->id);
      }
      return WaitForAll(std::move(ids), client, wait, [answer] { answer(true); });
    }
    answer(false);
    QSEAL_CRASH_POINT("api.acked");
  }

  // The answer to a batch: each part's outcome; after a wait, accepted parts carry their status.
  HttpResponse BatchResponse(const BatchParts& parts, const RequestHeader& req,
                             const std::string& client, bool waited) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    std::size_t accepted = 0;
    bool all_final = true;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const BatchPart& part = parts[i];
      nlohmann::ordered_json j;
      if (part.result) {
        ++accepted;
        Result<queue::Record> rec(NotFoundError(""));
        if (waited) rec = queue_->Get(part.result->id);
        if (rec.ok() && rec->client == client) {
          j = StatusJson(*rec);
          all_final = all_final && IsFinal(rec->state);
        } else {
          all_final = false;
          j["id"] = part.result->id.ToString();
          j["status"] = "queued";
          j["sha256"] = part.result->sha256_hex;
          j["size"] = part.result->size;
        }
        if (part.result->duplicate) j["duplicate"] = true;
      } else {
        j["status"] = "rejected";
        j["error"] = ProblemJson(part.error_status, part.error);
      }
      j["index"] = i;
      if (!part.name.empty()) j["name"] = part.name;
      list.push_back(std::move(j));
    }
    nlohmann::ordered_json body;
    body["accepted"] = accepted;
    body["rejected"] = parts.size() - accepted;
    body["documents"] = std::move(list);
    return MakeResponse(waited && all_final ? http::status::ok : http::status::accepted, req,
                        Dump(body), "application/json");
  }

  // A body read into memory, up to a limit (small JSON requests).
  class BufferSink : public BodySink {
   public:
    BufferSink(std::uint64_t limit, std::function<void(std::string, Respond)> done)
        : limit_(limit), done_(std::move(done)) {}
    Status Append(ByteSpan chunk) override {
      if (body_.size() + chunk.size() > limit_) {
        return ResourceExhaustedError("request body larger than the limit of " +
                                      std::to_string(limit_) + " bytes");
      }
      body_.append(AsChars(chunk));
      return Status::Ok();
    }
    void Finish(Respond respond) override { done_(std::move(body_), std::move(respond)); }
    void Abort() override { body_.clear(); }
    http::status ErrorStatus(const Status&) const override {
      return http::status::payload_too_large;
    }

   private:
    std::uint64_t limit_;
    std::function<void(std::string, Respond)> done_;
    std::string body_;
  };

  Decision BatchStatus(const RequestHeader& req, const ApiClient& client,
                       const std::map<std::string, std::string>& query) {
    std::optional<std::chrono::milliseconds> wait = ParseWait(query);
    if (!wait) {
      return Answer(
          MakeProblem(http::status::bad_request, req, "wait must be a number of seconds"));
    }
    auto shared_req = std::make_shared<RequestHeader>(req);
    std::uint64_t limit = std::uint64_t{options_.max_status_ids} * 32 + 1024;
    Decision d;
    d.sink = std::make_unique<BufferSink>(limit, [this, shared_req, client = client.name,
                                                  wait = *wait](std::string body, Respond respond) {
      boost::asio::post(pool_, [this, shared_req, client, wait, body = std::move(body),
                                respond = std::move(respond)]() mutable {
        StatusOfMany(body, shared_req, client, wait, std::move(respond));
      });
    });
    return d;
  }

  void StatusOfMany(const std::string& body, const std::shared_ptr<RequestHeader>& req,
                    const std::string& client, std::chrono::milliseconds wait, Respond respond) {
    std::vector<std::string> texts;
    try {
      nlohmann::json j = nlohmann::json::parse(body);
      const nlohmann::json& ids = j.at("ids");
      if (!ids.is_array()) throw std::invalid_argument("ids is not an array");
      for (const auto& id : ids) texts.push_back(id.get<std::string>());
    } catch (const std::exception&) {
      return respond(MakeProblem(http::status::bad_request, *req,
                                 "body must be {\"ids\": [\"<document id>\", ...]}"));
    }
    if (texts.size() > options_.max_status_ids) {
      return respond(MakeProblem(
          http::status::payload_too_large, *req,
          "more than " + std::to_string(options_.max_status_ids) + " ids in one request"));
    }
    auto answer = [this, texts, req, client, respond = std::move(respond)] {
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      bool done = true;
      for (const std::string& text : texts) {
        Result<queue::DocumentId> id = queue::DocumentId::Parse(text);
        Result<queue::Record> rec(NotFoundError(""));
        if (id.ok()) rec = queue_->Get(*id);
        // Another client's document is reported exactly like an unknown one.
        if (rec.ok() && rec->client == client) {
          done = done && IsFinal(rec->state);
          list.push_back(StatusJson(*rec));
        } else {
          nlohmann::ordered_json j;
          j["id"] = text;
          j["error"] = ProblemJson(http::status::not_found, "no such document");
          list.push_back(std::move(j));
        }
      }
      nlohmann::ordered_json out;
      out["done"] = done;
      out["documents"] = std::move(list);
      respond(MakeResponse(http::status::ok, *req, Dump(out), "application/json"));
    };
    if (wait.count() == 0) return answer();
    std::vector<queue::DocumentId> ids;
    for (const std::string& text : texts) {
      if (auto id = queue::DocumentId::Parse(text); id.ok()) ids.push_back(*id);
    }
    WaitForAll(std::move(ids), client, wait, std::move(answer));
  }

  // Long-poll for many documents: `answer` runs once (on the commit pool), when every id is
  // final (or unknown, or another client's) or when `wait` has passed.
  // `ids`, `deadline` and `answer` are fixed before it is registered; `outstanding` and
  // `answered` are guarded by Impl::mu_.
  struct GroupWaiter {
    std::vector<queue::DocumentId> ids;
    std::set<queue::DocumentId> outstanding;
    std::chrono::steady_clock::time_point deadline;
    std::function<void()> answer;
    bool answered = false;
  };

  void WaitForAll(std::vector<queue::DocumentId> ids, const std::string& client,
                  std::chrono::milliseconds wait, std::function<void()> answer) {
    auto g = std::make_shared<GroupWaiter>();
    g->ids = std::move(ids);
    g->outstanding.insert(g->ids.begin(), g->ids.end());
    g->deadline = std::chrono::steady_clock::now() + wait;
    g->answer = std::move(answer);
    bool answer_now = false;
    {
      MutexLock lock(mu_);
      if (stopped_) {
        g->answered = true;
        answer_now = true;
      } else {
        groups_.insert(g);
        for (const auto& id : g->outstanding) group_index_.emplace(id, g);
        waiter_cv_.SignalAll();
      }
    }
    if (answer_now) return g->answer();
    // Registered first, looked at second: a document that finished in between is not missed.
    for (const auto& id : g->ids) {
      Result<queue::Record> rec = queue_->Get(id);
      if (!rec.ok() || rec->client != client || IsFinal(rec->state)) Settle(g, id);
    }
  }

  // `id` of group `g` needs no more waiting; the last one answers the group.
  void Settle(const std::shared_ptr<GroupWaiter>& g, const queue::DocumentId& id) {
    {
      MutexLock lock(mu_);
      if (g->answered || g->outstanding.erase(id) == 0 || !g->outstanding.empty()) return;
      UnregisterLocked(g);
    }
    boost::asio::post(pool_, g->answer);
  }

  void UnregisterLocked(const std::shared_ptr<GroupWaiter>& g) QSEAL_REQUIRES(mu_) {
    g->answered = true;
    groups_.erase(g);
    for (const auto& id : g->ids) {
      auto range = group_index_.equal_range(id);
      for (auto it = range.first; it != range.second;) {
        it = it->second == g ? group_index_.erase(it) : std::next(it);
      }
    }
  }

  void CommitSubmission(std::unique_ptr<queue::PendingDocument> pending,
                        const std::shared_ptr<RequestHeader>& req, std::chrono::milliseconds wait,
                        const std::string& client, Respond respond) {
    Result<queue::EnqueueResult> r = queue_->Commit(std::move(pending));
    if (!r.ok()) {
      const Status& s = r.status();
      if (s.code() == StatusCode::kFailedPrecondition) {
        Refused("rejected", client, "", "Idempotency-Key reused for another document");
        return respond(MakeProblem(http::status::unprocessable_entity, *req,
                                   "Idempotency-Key was used before for a different document"));
      }
      LogError("submission not accepted", {{"error", s.ToString()}});
      return respond(Unavailable(*req, http::status::service_unavailable, s.message()));
    }
    if (options_.metrics != nullptr && !r->duplicate) {
      options_.metrics->DocumentAccepted("api", ProfileOf(*req), r->size);
    }
    if (wait.count() > 0) {
      Waiter w{r->id, req, std::move(respond), std::chrono::steady_clock::now() + wait, client};
      {
        MutexLock lock(mu_);
        if (!stopped_) {
          waiters_.emplace(r->id, std::move(w));
          waiter_cv_.SignalAll();
          w.respond = nullptr;
        }
      }
      // It may have finished before the waiter was registered: look once now.
      Result<queue::Record> rec = queue_->Get(r->id);
      if (w.respond) {
        AnswerWaiter(w);
      } else if (rec.ok() && IsFinal(rec->state)) {
        Notify(r->id);
      }
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
    auto query = ParseQuery(q == std::string_view::npos ? "" : target.substr(q + 1));
    auto it = query.find("profile");
    return it == query.end() ? "default" : it->second;
  }

  void AnswerWaiter(Waiter& w) {
    Result<queue::Record> rec = queue_->Get(w.id);
    if (!rec.ok()) {
      return w.respond(
          MakeProblem(http::status::internal_server_error, *w.req, rec.status().message()));
    }
    bool done = IsFinal(rec->state);
    HttpResponse res = MakeResponse(done ? http::status::ok : http::status::accepted, *w.req,
                                    Dump(StatusJson(*rec)), "application/json");
    res.set(http::field::location, "/v1/documents/" + w.id.ToString());
    w.respond(std::move(res));
  }

  void WaiterLoop() {
    MutexLock lock(mu_);
    while (!stopped_) {
      auto next = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      for (const auto& [id, w] : waiters_) next = std::min(next, w.deadline);
      for (const auto& g : groups_) next = std::min(next, g->deadline);
      waiter_cv_.WaitUntil(mu_, next);
      if (stopped_) break;
      mu_.Unlock();
      ExpireWaiters(false);
      mu_.Lock();
    }
  }

  void ExpireWaiters(bool all) {
    std::vector<Waiter> expired;
    std::vector<std::shared_ptr<GroupWaiter>> expired_groups;
    {
      MutexLock lock(mu_);
      auto now = std::chrono::steady_clock::now();
      for (auto it = groups_.begin(); it != groups_.end();) {
        auto g = *it++;
        if (all || g->deadline <= now) {
          UnregisterLocked(g);
          expired_groups.push_back(std::move(g));
        }
      }
      for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (all || it->second.deadline <= now) {
          expired.push_back(std::move(it->second));
          it = waiters_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& w : expired) AnswerWaiter(w);
    for (auto& g : expired_groups) boost::asio::post(pool_, g->answer);
  }

  HttpResponse Profiles(const RequestHeader& req, const ApiClient& client) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& p : options_.profiles) {
      if (!Allowed(client, p.name)) continue;
      list.push_back({{"name", p.name},
                      {"format", p.format},
                      {"digest", p.digest},
                      {"scheme", p.scheme},
                      {"certificate_chain", p.certificate_chain_pem}});
    }
    nlohmann::ordered_json j;
    j["profiles"] = list;
    return MakeResponse(http::status::ok, req, Dump(j), "application/json");
  }

  HttpResponse Document(const RequestHeader& req, const ApiClient& client, std::string_view id_text,
                        bool seal) {
    Result<queue::DocumentId> id = queue::DocumentId::Parse(id_text);
    if (!id.ok()) return MakeProblem(http::status::not_found, req, "no such document");
    Result<queue::Record> rec = queue_->Get(*id);
    // Another client's document is reported exactly like an unknown one.
    if (!rec.ok() || rec->client != client.name) {
      if (rec.ok() || rec.status().code() == StatusCode::kNotFound) {
        return MakeProblem(http::status::not_found, req, "no such document");
      }
      return MakeProblem(http::status::internal_server_error, req, rec.status().message());
    }
    if (!seal)
      return MakeResponse(http::status::ok, req, Dump(StatusJson(*rec)), "application/json");
    if (rec->state != queue::State::kSealed) {
      return MakeProblem(http::status::conflict, req,
                         "document is " + std::string(ApiState(rec->state)) + ", not sealed");
    }
    Result<Bytes> bytes = queue_->GetSeal(*id);
    if (!bytes.ok())
      return MakeProblem(http::status::internal_server_error, req, bytes.status().message());
    HttpResponse res = MakeResponse(
        http::status::ok, req, std::string(AsChars(*bytes)),
        rec->seal_media_type.empty() ? "application/octet-stream" : rec->seal_media_type);
    bool enveloping = rec->seal_media_type == "application/pkcs7-mime";
    std::string filename =
        (rec->name.empty() ? rec->id.ToString() : rec->name) + (enveloping ? ".p7m" : ".p7s");
    std::string safe;
    for (char c : filename) safe += (c == '"' || c == '\\') ? '_' : c;
    res.set(http::field::content_disposition, "attachment; filename=\"" + safe + "\"");
    return res;
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
    h.threads = o.threads;
    return h;
  }

  const ApiServerOptions options_;
  queue::Queue* const queue_;
  const ReadinessCheck readiness_;
  boost::asio::thread_pool pool_;
  detail::HttpServer server_;
  std::thread waiter_thread_;

  Mutex mu_;
  CondVar waiter_cv_;
  bool stopped_ QSEAL_GUARDED_BY(mu_) = false;
  std::multimap<queue::DocumentId, Waiter> waiters_ QSEAL_GUARDED_BY(mu_);
  std::set<std::shared_ptr<GroupWaiter>> groups_ QSEAL_GUARDED_BY(mu_);
  std::multimap<queue::DocumentId, std::shared_ptr<GroupWaiter>> group_index_ QSEAL_GUARDED_BY(mu_);
};

ApiServer::ApiServer(ApiServerOptions options, queue::Queue* queue, ReadinessCheck readiness)
    : impl_(std::make_unique<Impl>(std::move(options), queue, std::move(readiness))) {}
ApiServer::~ApiServer() { Stop(); }
Status ApiServer::Start() { return impl_->Start(); }
std::uint16_t ApiServer::port() const { return impl_->port(); }
void ApiServer::Stop() { impl_->Stop(); }
void ApiServer::Notify(const queue::DocumentId& id) { impl_->Notify(id); }

}  // namespace qseal::ingest
