#include "publish/jetstream_publisher.h"

#include <map>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/sha256.h"
#include "publish/result_headers.h"

namespace qseal::publish {
namespace {

// A seal result says what it carries (the Content-Type header); the engine sets the record's
// seal media type from the format that made the seal before it publishes.
Status SealMediaType(const queue::Record& record) {
  if (record.seal_media_type.empty()) {
    return InvalidArgumentError("record " + record.id.ToString() + " has no seal media type");
  }
  return Status::Ok();
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

Result<NatsMsgPtr> JetStreamPublisher::BuildResult(const queue::Record& record, ByteSpan body,
                                                   std::string_view content_type,
                                                   const Status* error, std::string* msg_id) const {
  if (record.idempotency_key.empty()) {
    return InvalidArgumentError("broker record " + record.id.ToString() +
                                " has no idempotency key");
  }
  const std::string hex = Sha256Hex(AsBytes(record.idempotency_key));
  const std::string subject = options_.subject_prefix + "." + hex;
  natsMsg* raw = nullptr;
  natsStatus s =
      natsMsg_Create(&raw, subject.c_str(), nullptr, reinterpret_cast<const char*>(body.data()),
                     static_cast<int>(body.size()));
  if (s != NATS_OK) return NatsError("result message", s);
  NatsMsgPtr msg(raw);
  for (const auto& [k, v] : ResultHeaders(record, content_type, error)) {
    s = natsMsgHeader_Set(msg.get(), k.c_str(), v.c_str());
    if (s != NATS_OK) return NatsError("result header", s);
  }
  *msg_id = "qseal-" + hex;
  return msg;
}

void JetStreamPublisher::InitPubOptions(jsPubOptions* po, const std::string& msg_id) const {
  jsPubOptions_Init(po);
  po->MsgId = msg_id.c_str();
  po->MaxWait = options_.publish_timeout.count();
  // The broker refuses a second result on this subject, however long after the first (the
  // de-duplication window alone would forget it).
  po->ExpectNoMessage = true;
}

Status JetStreamPublisher::Outcome(natsStatus s, jsErrCode jerr, bool duplicate,
                                   const std::string& msg_id) {
  if (s == NATS_OK) {
    ++(duplicate ? duplicates_ : published_);
    return Status::Ok();
  }
  if (jerr == JSStreamWrongLastSequenceErr) {
    // A result for this source message is already stored: an earlier attempt (this node before a
    // crash, or another node after a redelivery) published it. The first one stands.
    ++duplicates_;
    LogInfo("jetstream result already published", {{"msg_id", msg_id}});
    return Status::Ok();
  }
  ++errors_;
  if (jerr == JSStreamNotFoundErr || s == NATS_NO_RESPONDERS) {
    MutexLock lock(stream_mu_);
    stream_ready_ = false;
  }
  Status st = NatsError("publishing result " + msg_id, s, jerr);
  // Every failure here is worth another try later: the engine requeues with back-off.
  return st.code() == StatusCode::kInvalidArgument ? st : UnavailableError(st.message());
}

Status JetStreamPublisher::PublishResult(const queue::Record& record, ByteSpan body,
                                         std::string_view content_type, const Status* error) {
  Status ready = EnsureStream();
  if (!ready.ok()) {
    ++errors_;
    return ready;
  }
  std::string msg_id;
  QSEAL_ASSIGN_OR_RETURN(NatsMsgPtr msg, BuildResult(record, body, content_type, error, &msg_id));
  jsPubOptions po;
  InitPubOptions(&po, msg_id);
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_PublishMsg(&ack, connection_->js(), msg.get(), &po, &jerr);
  const bool duplicate = ack != nullptr && ack->Duplicate;
  if (ack != nullptr) jsPubAck_Destroy(ack);
  return Outcome(s, jerr, duplicate, msg_id);
}

// The acks of one PublishBatch call. Shared with the client's reply thread, which calls OnAck;
// `handled` counts the calls so the batch knows when no callback can still touch it.
struct JetStreamPublisher::BatchAcks {
  JetStreamPublisher* publisher = nullptr;
  Mutex mu;
  CondVar done;
  std::map<std::string, std::size_t> index QSEAL_GUARDED_BY(mu);  // msg id -> item
  std::vector<Status> out QSEAL_GUARDED_BY(mu);
  std::size_t handled QSEAL_GUARDED_BY(mu) = 0;

  static void OnAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<BatchAcks*>(closure);
    const char* id = nullptr;
    natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
    const std::string msg_id = id != nullptr ? id : "";
    Status st = pa != nullptr ? self->publisher->Outcome(NATS_OK, static_cast<jsErrCode>(0),
                                                         pa->Duplicate, msg_id)
                : pae != nullptr
                    ? self->publisher->Outcome(pae->Err, pae->ErrCode, false, msg_id)
                    : self->publisher->Outcome(NATS_ERR, static_cast<jsErrCode>(0), false, msg_id);
    natsMsg_Destroy(msg);
    MutexLock lock(self->mu);
    auto it = self->index.find(msg_id);
    if (it != self->index.end()) self->out[it->second] = std::move(st);
    ++self->handled;
    self->done.SignalAll();
  }
};

std::vector<Status> JetStreamPublisher::PublishBatch(std::span<const PublishItem> items) {
  Status ready = EnsureStream();
  if (!ready.ok()) {
    ++errors_;
    return std::vector<Status>(items.size(), ready);
  }
  // One JetStream context per call, whose ack callback knows this batch: every result of the
  // batch is in flight at once and the call waits once for all acks (instead of one round trip
  // per result).
  auto acks = std::make_unique<BatchAcks>();
  acks->publisher = this;
  {
    MutexLock lock(acks->mu);
    acks->out.assign(items.size(), UnavailableError("no publish ack in time"));
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options_.publish_timeout.count();
  jo.PublishAsync.MaxPending = static_cast<std::int64_t>(items.size()) + 1;
  jo.PublishAsync.AckHandler = &BatchAcks::OnAck;
  jo.PublishAsync.AckHandlerClosure = acks.get();
  jsCtx* js = nullptr;
  natsStatus s = natsConnection_JetStream(&js, connection_->nc(), &jo);
  if (s != NATS_OK) {
    ++errors_;
    return std::vector<Status>(items.size(), NatsError("JetStream context", s));
  }
  std::size_t sent = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const PublishItem& item = items[i];
    std::string msg_id;
    // A spooled (large) seal is read whole: a result message carries the seal in one piece.
    Result<Bytes> spooled = item.seal_file != nullptr ? SealBytes(item) : Result<Bytes>(Bytes());
    ByteSpan seal = item.seal_file != nullptr && spooled.ok() ? ByteSpan(*spooled) : item.seal;
    Result<NatsMsgPtr> msg =
        !spooled.ok() ? Result<NatsMsgPtr>(spooled.status())
        : SealMediaType(*item.record).ok()
            ? BuildResult(*item.record, seal, item.record->seal_media_type, nullptr, &msg_id)
            : Result<NatsMsgPtr>(SealMediaType(*item.record));
    if (!msg.ok()) {
      MutexLock lock(acks->mu);
      acks->out[i] = msg.status();
      continue;
    }
    {
      MutexLock lock(acks->mu);
      acks->index[msg_id] = i;
    }
    jsPubOptions po;
    InitPubOptions(&po, msg_id);
    natsMsg* raw = msg->release();
    s = js_PublishMsgAsync(js, &raw, &po);
    natsMsg_Destroy(raw);  // null when the library took it
    if (s != NATS_OK) {
      Status st = Outcome(s, static_cast<jsErrCode>(0), false, msg_id);
      MutexLock lock(acks->mu);
      acks->out[i] = st;
      continue;
    }
    ++sent;
  }
  jsPubOptions wait;
  jsPubOptions_Init(&wait);
  wait.MaxWait = options_.publish_timeout.count();
  js_PublishAsyncComplete(js, &wait);
  // Results still unacked are taken back from the library (no callback will come for them) and
  // stay "no publish ack in time": the engine retries them, and a late ack is harmless (the retry
  // is then refused as a repeat).
  natsMsgList pending = {nullptr, 0};
  std::size_t reclaimed = 0;
  if (js_PublishAsyncGetPendingList(&pending, js) == NATS_OK) {
    reclaimed = static_cast<std::size_t>(pending.Count);
    errors_ += reclaimed;
    natsMsgList_Destroy(&pending);
  }
  std::vector<Status> out;
  {
    MutexLock lock(acks->mu);
    const auto deadline = std::chrono::steady_clock::now() + options_.publish_timeout;
    while (acks->handled + reclaimed < sent && std::chrono::steady_clock::now() < deadline) {
      acks->done.WaitUntil(acks->mu, deadline);
    }
    out = acks->out;
    if (acks->handled + reclaimed < sent) {
      // A callback may still come: leave it a live closure (a few bytes, only in this odd case).
      LogWarn("jetstream acks still outstanding after the batch", {});
      static_cast<void>(acks.release());
    }
  }
  jsCtx_Destroy(js);
  return out;
}

Status JetStreamPublisher::Publish(const queue::Record& record, ByteSpan seal) {
  QSEAL_RETURN_IF_ERROR(SealMediaType(record));
  return PublishResult(record, seal, record.seal_media_type, nullptr);
}

Status JetStreamPublisher::PublishFailure(const queue::Record& record, const Status& error) {
  return PublishResult(record, ByteSpan(), "", &error);
}

}  // namespace qseal::publish
