#include "ingest/detail/batch_handler.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <stdexcept>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "common/crash_point.h"
#include "common/log.h"
#include "ingest/detail/access_control.h"
#include "ingest/detail/json_bodies.h"
#include "ingest/detail/multipart.h"
#include "ingest/detail/names.h"
#include "ingest/detail/waiters.h"
#include "metrics/metrics.h"

namespace qseal::ingest::detail {

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

// One part of a batch: its document being streamed in, or why it was refused.
struct BatchHandler::BatchPart {
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

BatchHandler::BatchHandler(const ApiServerOptions& options, queue::Queue* queue,
                           boost::asio::thread_pool& pool, Waiters& waiters,
                           const AccessControl& access, std::function<bool()> stopped)
    : options_(options),
      queue_(queue),
      pool_(pool),
      waiters_(waiters),
      access_(access),
      stopped_(std::move(stopped)) {}

HttpResponse BatchHandler::Unavailable(const RequestHeader& req, http::status code,
                                       std::string_view detail) const {
  return MakeRetryLater(code, req, detail, options_.retry_after_seconds);
}

class BatchHandler::BatchSink : public BodySink, public MultipartHandler {
 public:
  BatchSink(BatchHandler* handler, std::string boundary, RequestHeader req,
            std::chrono::milliseconds wait, std::string client, std::string profile,
            std::string source)
      : handler_(handler),
        parser_(std::move(boundary), Limits(handler->options_), this),
        req_(std::make_shared<RequestHeader>(std::move(req))),
        wait_(wait),
        client_(std::move(client)),
        profile_(std::move(profile)),
        source_(std::move(source)),
        parts_(std::make_shared<BatchParts>()) {}

  Status Append(ByteSpan chunk) override {
    received_ += chunk.size();
    if (received_ > handler_->options_.max_batch_bytes) {
      error_status_ = http::status::payload_too_large;
      return ResourceExhaustedError("batch larger than the limit of " +
                                    std::to_string(handler_->options_.max_batch_bytes) + " bytes");
    }
    Status s = parser_.Feed(chunk);
    if (!s.ok()) {
      error_status_ = s.code() == StatusCode::kResourceExhausted ? http::status::payload_too_large
                                                                 : http::status::bad_request;
    }
    return s;
  }

  http::status ErrorStatus(const Status&) const override { return error_status_; }

  Status OnPartBegin(const PartHeader& header) override {
    BatchPart& part = parts_->emplace_back();
    std::string_view filename = header.Get("X-Filename");
    part.name = SanitizeClientName(filename);
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
    Result<std::unique_ptr<queue::PendingDocument>> pending = handler_->queue_->Begin(doc);
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
    if (part.size > handler_->options_.max_batch_part_bytes) {
      part.Reject(http::status::payload_too_large,
                  "part larger than the limit of " +
                      std::to_string(handler_->options_.max_batch_part_bytes) + " bytes");
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
    boost::asio::post(handler_->pool_, [handler = handler_, parts = parts_, req = req_,
                                        wait = wait_, client = client_, profile = profile_,
                                        source = source_, respond = std::move(respond)]() mutable {
      handler->CommitBatch(*parts, req, wait, client, profile, source, std::move(respond));
    });
  }

  void Abort() override { parts_->clear(); }

 private:
  static MultipartLimits Limits(const ApiServerOptions& o) {
    MultipartLimits l;
    l.max_parts = o.max_batch_parts;
    return l;
  }

  BatchHandler* handler_;
  MultipartParser parser_;
  std::shared_ptr<RequestHeader> req_;
  std::chrono::milliseconds wait_;
  std::string client_;
  std::string profile_;
  std::string source_;  // the caller's IP address, for the audit of a refusal
  std::shared_ptr<BatchParts> parts_;
  std::uint64_t received_ = 0;
  http::status error_status_ = http::status::bad_request;
};

Decision BatchHandler::SubmitBatch(const RequestHeader& req, const ApiClient& client,
                                   const Query& query, std::string_view source) {
  std::string profile = RequestedProfile(query);
  if (auto refusal = access_.ProfileRefusal(req, client, profile, source)) {
    return Answer(std::move(*refusal));
  }
  std::optional<std::chrono::milliseconds> wait = ParseWait(query, options_.max_wait);
  if (!wait) {
    return Answer(MakeProblem(http::status::bad_request, req, "wait must be a number of seconds"));
  }
  auto ctype = req[http::field::content_type];
  Result<std::string> boundary = MultipartBoundary(std::string_view(ctype.data(), ctype.size()));
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
      return Answer(MakeProblem(
          http::status::payload_too_large, req,
          "batch larger than the limit of " + std::to_string(options_.max_batch_bytes) + " bytes"));
    }
  }
  if (stopped_()) {
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
  d.sink = std::make_unique<BatchSink>(this, std::move(*boundary), req, *wait, client.name, profile,
                                       std::string(source));
  return d;
}

void BatchHandler::CommitBatch(BatchParts& parts, const std::shared_ptr<RequestHeader>& req,
                               std::chrono::milliseconds wait, const std::string& client,
                               const std::string& profile, const std::string& source,
                               Respond respond) {
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
      access_.Refused("rejected", client, profile, "Idempotency-Key reused for another document",
                      source);
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
    return respond(Unavailable(*req, http::status::service_unavailable,
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
HttpResponse BatchHandler::BatchResponse(const BatchParts& parts, const RequestHeader& req,
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

Decision BatchHandler::BatchStatus(const RequestHeader& req, const ApiClient& client,
                                   const Query& query) {
  std::optional<std::chrono::milliseconds> wait = ParseWait(query, options_.max_wait);
  if (!wait) {
    return Answer(MakeProblem(http::status::bad_request, req, "wait must be a number of seconds"));
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

void BatchHandler::StatusOfMany(const std::string& body, const std::shared_ptr<RequestHeader>& req,
                                const std::string& client, std::chrono::milliseconds wait,
                                Respond respond) {
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

void BatchHandler::WaitForAll(std::vector<queue::DocumentId> ids, const std::string& client,
                              std::chrono::milliseconds wait, std::function<void()> answer) {
  waiters_.WaitForAll(std::move(ids), std::chrono::steady_clock::now() + wait, std::move(answer),
                      [this, &client](const queue::DocumentId& id) {
                        Result<queue::Record> rec = queue_->Get(id);
                        return !rec.ok() || rec->client != client || IsFinal(rec->state);
                      });
}

}  // namespace qseal::ingest::detail
