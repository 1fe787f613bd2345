#include "publish/jetstream_publisher.h"

#include <string>
#include <vector>

#include "common/log.h"
#include "common/sha256.h"

namespace qseal::publish {
namespace {

// Header values are single lines: a reason with a newline must not end the header block.
std::string HeaderValue(std::string_view v) {
  std::string out(v);
  for (char& c : out) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return out;
}

}  // namespace

JetStreamPublisher::JetStreamPublisher(JetStreamPublisherOptions options,
                                       NatsConnection* connection)
    : options_(std::move(options)), connection_(connection) {}

std::string JetStreamPublisher::ResultSubject(std::string_view idempotency_key) const {
  return options_.subject_prefix + "." + Sha256Hex(AsBytes(idempotency_key));
}

JetStreamPublisherStats JetStreamPublisher::Stats() const {
  return {published_.load(), duplicates_.load(), errors_.load()};
}

Status JetStreamPublisher::EnsureStream() {
  MutexLock lock(stream_mu_);
  if (stream_ready_) return Status::Ok();
  jsStreamInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s =
      js_GetStreamInfo(&info, connection_->js(), options_.stream.c_str(), nullptr, &jerr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(info);
    stream_ready_ = true;
    return Status::Ok();
  }
  if (s != NATS_NOT_FOUND || !options_.create_stream) {
    return NatsError("result stream " + options_.stream, s, jerr);
  }
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const std::string subjects = options_.subject_prefix + ".>";
  const char* subject_list[] = {subjects.c_str()};
  cfg.Name = options_.stream.c_str();
  cfg.Subjects = subject_list;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Retention = js_LimitsPolicy;
  cfg.Duplicates =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options_.duplicate_window).count();
  s = js_AddStream(&info, connection_->js(), &cfg, nullptr, &jerr);
  // Another node may have created it meanwhile: that is the stream we want.
  if (s != NATS_OK && jerr != JSStreamNameExistErr) {
    return NatsError("creating result stream " + options_.stream, s, jerr);
  }
  if (info != nullptr) jsStreamInfo_Destroy(info);
  LogInfo("jetstream result stream ready", {{"stream", options_.stream}, {"subjects", subjects}});
  stream_ready_ = true;
  return Status::Ok();
}

Status JetStreamPublisher::PublishResult(const queue::Record& record, ByteSpan body,
                                         std::string_view content_type, const Status* error) {
  if (record.idempotency_key.empty()) {
    return InvalidArgumentError("broker record " + record.id.ToString() +
                                " has no idempotency key");
  }
  Status ready = EnsureStream();
  if (!ready.ok()) {
    ++errors_;
    return ready;
  }
  const std::string hex = Sha256Hex(AsBytes(record.idempotency_key));
  const std::string subject = options_.subject_prefix + "." + hex;
  natsMsg* raw = nullptr;
  natsStatus s =
      natsMsg_Create(&raw, subject.c_str(), nullptr, reinterpret_cast<const char*>(body.data()),
                     static_cast<int>(body.size()));
  if (s != NATS_OK) return NatsError("result message", s);
  NatsMsgPtr msg(raw);
  // A message refused before it reached the queue has no document id.
  const std::string id = record.id.IsZero() ? "" : record.id.ToString();
  std::vector<std::pair<const char*, std::string>> headers = {
      {"Qseal-Status", error == nullptr ? "sealed" : "failed"},
      {"Qseal-Document-Id", id},
      {"Qseal-Idempotency-Key", HeaderValue(record.idempotency_key)},
      {"Qseal-Source", HeaderValue(record.source_ref)},
      {"Qseal-Profile", HeaderValue(record.profile)},
      {"Qseal-Sha256", record.sha256_hex},
  };
  if (!record.name.empty()) headers.push_back({"Qseal-Filename", HeaderValue(record.name)});
  if (!content_type.empty()) headers.push_back({"Content-Type", std::string(content_type)});
  if (error != nullptr) {
    headers.push_back({"Qseal-Error-Code", std::string(StatusCodeName(error->code()))});
    headers.push_back({"Qseal-Error-Message", HeaderValue(error->message())});
  }
  for (const auto& [k, v] : headers) {
    if (v.empty()) continue;
    s = natsMsgHeader_Set(msg.get(), k, v.c_str());
    if (s != NATS_OK) return NatsError("result header", s);
  }
  const std::string msg_id = "qseal-" + hex;
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = msg_id.c_str();
  po.MaxWait = options_.publish_timeout.count();
  // The broker refuses a second result on this subject, however long after the first (the
  // de-duplication window alone would forget it).
  po.ExpectNoMessage = true;
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  s = js_PublishMsg(&ack, connection_->js(), msg.get(), &po, &jerr);
  if (s == NATS_OK) {
    const bool duplicate = ack->Duplicate;
    jsPubAck_Destroy(ack);
    ++(duplicate ? duplicates_ : published_);
    return Status::Ok();
  }
  if (jerr == JSStreamWrongLastSequenceErr) {
    // A result for this source message is already stored: an earlier attempt (this node before a
    // crash, or another node after a redelivery) published it. The first one stands.
    ++duplicates_;
    LogInfo("jetstream result already published",
            {{"id", id}, {"subject", subject}, {"key", record.idempotency_key}});
    return Status::Ok();
  }
  ++errors_;
  if (jerr == JSStreamNotFoundErr || s == NATS_NO_RESPONDERS) {
    MutexLock lock(stream_mu_);
    stream_ready_ = false;
  }
  Status st = NatsError("publishing result of " + id, s, jerr);
  // Every failure here is worth another try later: the engine requeues with back-off.
  return st.code() == StatusCode::kInvalidArgument ? st : UnavailableError(st.message());
}

Status JetStreamPublisher::Publish(const queue::Record& record, ByteSpan seal,
                                   std::string_view extension) {
  if (extension != "p7s" && extension != "p7m") {
    return InvalidArgumentError("unknown seal extension \"" + std::string(extension) + "\"");
  }
  return PublishResult(
      record, seal, extension == "p7m" ? "application/pkcs7-mime" : "application/pkcs7-signature",
      nullptr);
}

Status JetStreamPublisher::PublishFailure(const queue::Record& record, const Status& error) {
  return PublishResult(record, ByteSpan(), "", &error);
}

}  // namespace qseal::publish
