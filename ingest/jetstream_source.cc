#include "ingest/jetstream_source.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "common/log.h"
#include "common/mutex.h"
#include "ingest/detail/broker_source.h"
#include "ingest/detail/object_store.h"

namespace qseal::ingest {
namespace {

using publish::NatsError;

constexpr jsErrCode kNoJsError = static_cast<jsErrCode>(0);

// How long the next chunk of a referenced object may take before the message is tried later.
constexpr std::chrono::seconds kChunkWait{5};

std::int64_t Nanos(std::chrono::milliseconds ms) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(ms).count();
}

std::string Header(natsMsg* msg, const char* key) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(msg, key, &v) != NATS_OK || v == nullptr) return "";
  return v;
}

struct MetaDeleter {
  void operator()(jsMsgMetaData* m) const { jsMsgMetaData_Destroy(m); }
};

}  // namespace

class JetStreamSource::Impl {
 public:
  Impl(const JetStreamSourceOptions& options, queue::Queue* queue,
       publish::NatsConnection* connection, publish::JetStreamPublisher* results)
      : options_(options), queue_(queue), connection_(connection), results_(results) {}

  ~Impl() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    {
      MutexLock lock(mu_);
      stop_ = true;
      cv_.SignalAll();
    }
    if (thread_.joinable()) thread_.join();
    if (sub_ != nullptr) {
      // Unsubscribing a durable pull subscription would delete the shared consumer; only drop the
      // local subscription.
      natsSubscription_Destroy(sub_);
      sub_ = nullptr;
    }
  }

  JetStreamSourceStats Stats() const {
    JetStreamSourceStats s;
    s.fetched = fetched_.load();
    s.enqueued = enqueued_.load();
    s.duplicates = duplicates_.load();
    s.redelivered = redelivered_.load();
    s.rejected = rejected_.load();
    s.naks = naks_.load();
    s.errors = errors_.load();
    s.lag = lag_.load();
    s.in_flight = in_flight_.load();
    s.paused = paused_.load();
    s.connected = connection_->connected();
    return s;
  }

 private:
  // One fetched message on its way into the queue.
  struct Item {
    natsMsg* msg = nullptr;
    queue::NewDocument doc;
    std::unique_ptr<queue::PendingDocument> pending;
  };

  void Run() {
    bool logged_error = false;
    while (!Stopping()) {
      if (sub_ == nullptr) {
        Status s = Setup();
        if (!s.ok()) {
          ++errors_;
          if (!logged_error)
            LogWarn("jetstream source not ready; retrying",
                    {{"source", options_.name}, {"error", s.ToString()}});
          logged_error = true;
          Pause(options_.retry_interval);
          continue;
        }
        logged_error = false;
        LogInfo("jetstream source consuming", {{"source", options_.name},
                                               {"stream", options_.stream},
                                               {"consumer", options_.consumer}});
      }
      // Backpressure reaches the broker: nothing is fetched while the local queue is above its
      // watermarks, so the backlog stays in the stream (where other nodes can take it).
      const int batch =
          detail::RoundSize(*queue_, options_.local_high_watermark, options_.fetch_batch);
      if (batch == 0 || !queue_->Admit().ok()) {
        paused_ = true;
        Pause(options_.retry_interval);
        continue;
      }
      paused_ = false;
      natsMsgList list = {nullptr, 0};
      jsFetchRequest req;
      jsFetchRequest_Init(&req);
      req.Batch = batch;
      req.Expires = Nanos(options_.fetch_wait);
      natsStatus s = natsSubscription_FetchRequest(&list, sub_, &req);
      if (list.Count > 0) {
        in_flight_ = static_cast<std::uint64_t>(list.Count);
        Handle(list);
        in_flight_ = 0;
        failures_in_a_row_ = 0;
      } else if (s != NATS_OK && s != NATS_TIMEOUT) {
        ++errors_;
        if (++failures_in_a_row_ == 1) {
          LogWarn("jetstream fetch failed; retrying",
                  {{"source", options_.name}, {"error", NatsError("fetch", s).ToString()}});
        }
        // A consumer deleted or a stream lost at the broker: set them up again after a while.
        if (failures_in_a_row_ >= 20) {
          natsSubscription_Destroy(sub_);
          sub_ = nullptr;
          failures_in_a_row_ = 0;
        }
        Pause(options_.retry_interval);
      }
      natsMsgList_Destroy(&list);
    }
  }

  bool Stopping() {
    MutexLock lock(mu_);
    return stop_;
  }

  void Pause(std::chrono::milliseconds d) {
    MutexLock lock(mu_);
    if (!stop_) cv_.WaitUntil(mu_, std::chrono::steady_clock::now() + d);
  }

  Status Setup() {
    jsCtx* js = connection_->js();
    jsErrCode jerr = kNoJsError;
    jsStreamInfo* si = nullptr;
    natsStatus s = js_GetStreamInfo(&si, js, options_.stream.c_str(), nullptr, &jerr);
    if (s == NATS_NOT_FOUND && options_.create) {
      std::vector<const char*> subjects;
      for (const auto& subj : options_.subjects) subjects.push_back(subj.c_str());
      jsStreamConfig cfg;
      jsStreamConfig_Init(&cfg);
      cfg.Name = options_.stream.c_str();
      cfg.Subjects = subjects.data();
      cfg.SubjectsLen = static_cast<int>(subjects.size());
      cfg.Retention = js_WorkQueuePolicy;
      cfg.Storage = js_FileStorage;
      s = js_AddStream(&si, js, &cfg, nullptr, &jerr);
      if (s != NATS_OK && jerr == JSStreamNameExistErr) s = NATS_OK;  // another node won
    }
    if (si != nullptr) jsStreamInfo_Destroy(si);
    if (s != NATS_OK) return NatsError("stream " + options_.stream, s, jerr);

    jsConsumerInfo* ci = nullptr;
    jerr = kNoJsError;
    s = js_GetConsumerInfo(&ci, js, options_.stream.c_str(), options_.consumer.c_str(), nullptr,
                           &jerr);
    if (s == NATS_NOT_FOUND && options_.create) {
      jsConsumerConfig cc;
      jsConsumerConfig_Init(&cc);
      cc.Durable = options_.consumer.c_str();
      cc.AckPolicy = js_AckExplicit;
      cc.AckWait = Nanos(options_.ack_wait);
      cc.MaxAckPending = options_.max_ack_pending;
      cc.MaxDeliver = -1;
      cc.DeliverPolicy = js_DeliverAll;
      s = js_AddConsumer(&ci, js, options_.stream.c_str(), &cc, nullptr, &jerr);
      if (s != NATS_OK && jerr == JSConsumerNameExistErr) s = NATS_OK;  // another node won
    }
    if (ci != nullptr) jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) return NatsError("consumer " + options_.consumer, s, jerr);

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = options_.stream.c_str();
    so.Consumer = options_.consumer.c_str();
    so.ManualAck = true;
    jerr = kNoJsError;
    s = js_PullSubscribe(&sub_, js, options_.subjects.empty() ? ">" : options_.subjects[0].c_str(),
                         options_.consumer.c_str(), nullptr, &so, &jerr);
    if (s != NATS_OK) {
      sub_ = nullptr;
      return NatsError("subscribing to " + options_.consumer, s, jerr);
    }
    return Status::Ok();
  }

  void Handle(const natsMsgList& list) {
    std::vector<Item> items;
    items.reserve(static_cast<std::size_t>(list.Count));
    const std::string client = "jetstream:" + options_.name;
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* msg = list.Msgs[i];
      ++fetched_;
      jsMsgMetaData* raw_meta = nullptr;
      if (natsMsg_GetMetaData(&raw_meta, msg) != NATS_OK) {
        // Not a JetStream message (cannot happen on a pull subscription): nothing to ack.
        ++errors_;
        continue;
      }
      std::unique_ptr<jsMsgMetaData, MetaDeleter> meta(raw_meta);
      if (meta->NumDelivered > 1) ++redelivered_;
      lag_ = meta->NumPending;
      const std::string seq = std::to_string(meta->Sequence.Stream);
      Item item;
      item.msg = msg;
      queue::NewDocument& doc = item.doc;
      doc.source = queue::Source::kBroker;
      doc.client = client;
      doc.source_ref = std::string(meta->Stream) + "/" + seq;
      doc.profile = Header(msg, "Qseal-Profile");
      if (doc.profile.empty()) doc.profile = options_.default_profile;
      // A document too large for a message comes as a reference into an object store.
      const std::string object = Header(msg, "Qseal-Object");
      Result<detail::ObjectRef> ref = object.empty()
                                          ? Result<detail::ObjectRef>(detail::ObjectRef{})
                                          : detail::ParseObjectRef(object);
      doc.name = Header(msg, "Qseal-Filename");
      if (doc.name.empty() && ref.ok() && !object.empty()) doc.name = ref->name;
      if (doc.name.empty()) doc.name = std::string(meta->Stream) + "-" + seq;
      doc.media_type = Header(msg, "Qseal-Media-Type");
      doc.idempotency_key = Header(msg, "Qseal-Idempotency-Key");
      if (doc.idempotency_key.empty()) doc.idempotency_key = Header(msg, "Nats-Msg-Id");
      if (doc.idempotency_key.empty()) doc.idempotency_key = doc.source_ref;
      if (!detail::ProfileAllowed(doc.profile, options_.default_profile, options_.profiles)) {
        Reject(item, InvalidArgumentError("profile \"" + doc.profile + "\" is not allowed for " +
                                          client));
        continue;
      }
      Result<std::unique_ptr<queue::PendingDocument>> pending = queue_->Begin(doc);
      if (!pending.ok()) {
        Refused(item, pending.status());
        continue;
      }
      const char* data = natsMsg_GetData(msg);
      const int len = natsMsg_GetDataLength(msg);
      Status appended = Status::Ok();
      if (object.empty()) {
        appended = (*pending)->Append(
            ByteSpan(reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(len)));
      } else if (!ref.ok()) {
        appended = ref.status();
      } else if (len != 0) {
        appended = InvalidArgumentError("a message with Qseal-Object must have an empty body");
      } else {
        appended = detail::ReadObject(connection_->js(), *ref, kChunkWait,
                                      [&](ByteSpan chunk) { return (*pending)->Append(chunk); });
      }
      if (!appended.ok()) {
        Refused(item, appended);
        continue;
      }
      item.pending = std::move(*pending);
      items.push_back(std::move(item));
    }
    if (items.empty()) return;
    // One synced group commit for the whole fetch; only then are the messages acked.
    std::vector<std::unique_ptr<queue::PendingDocument>> pendings;
    pendings.reserve(items.size());
    for (Item& item : items) pendings.push_back(std::move(item.pending));
    std::vector<Result<queue::EnqueueResult>> committed = queue_->CommitMany(std::move(pendings));
    for (std::size_t i = 0; i < items.size(); ++i) {
      Status st = i < committed.size() ? committed[i].status() : InternalError("commit lost");
      if (!st.ok()) {
        Refused(items[i], st);
        continue;
      }
      ++(committed[i]->duplicate ? duplicates_ : enqueued_);
      Ack(items[i].msg);
    }
  }

  // Acks are sent without waiting for the broker's confirmation: a lost ack only means a
  // redelivery, which the idempotency key turns into a duplicate that is acked again.
  void Ack(natsMsg* msg) {
    natsStatus s = natsMsg_Ack(msg, nullptr);
    if (s != NATS_OK) ++errors_;
  }

  // A Begin/Append/Commit that did not succeed: permanent refusals get a failure result; anything
  // else goes back to the broker for a later redelivery.
  void Refused(Item& item, const Status& st) {
    if (detail::FinalRefusal(st)) {
      Reject(item, st);
      return;
    }
    if (st.code() != StatusCode::kResourceExhausted) {
      ++errors_;
      LogWarn("jetstream message not enqueued; redelivered later",
              {{"source", options_.name}, {"ref", item.doc.source_ref}, {"error", st.ToString()}});
    }
    ++naks_;
    natsMsg_NakWithDelay(item.msg, static_cast<std::int64_t>(options_.retry_interval.count()) * 4,
                         nullptr);
  }

  // The message is refused for good: its failure result first, then the ack (a failed publish
  // leaves it unacked, so it comes back and is refused again).
  void Reject(Item& item, const Status& reason) {
    const queue::Record r = detail::RefusedRecord(item.doc);
    Status published = results_->PublishFailure(r, reason);
    if (!published.ok()) {
      ++errors_;
      LogWarn("refusal not published; redelivered later",
              {{"ref", r.source_ref}, {"error", published.ToString()}});
      return;
    }
    ++rejected_;
    LogWarn("jetstream message refused",
            {{"source", options_.name}, {"ref", r.source_ref}, {"reason", reason.ToString()}});
    Ack(item.msg);
  }

  const JetStreamSourceOptions options_;
  queue::Queue* const queue_;
  publish::NatsConnection* const connection_;
  publish::JetStreamPublisher* const results_;
  std::thread thread_;
  natsSubscription* sub_ = nullptr;  // owned by the fetching thread while it runs
  int failures_in_a_row_ = 0;
  Mutex mu_;
  CondVar cv_;
  bool stop_ QSEAL_GUARDED_BY(mu_) = false;
  std::atomic<std::uint64_t> fetched_{0}, enqueued_{0}, duplicates_{0}, redelivered_{0},
      rejected_{0}, naks_{0}, errors_{0}, lag_{0}, in_flight_{0};
  std::atomic<bool> paused_{false};
};

JetStreamSource::JetStreamSource(JetStreamSourceOptions options, queue::Queue* queue,
                                 publish::NatsConnection* connection,
                                 publish::JetStreamPublisher* results)
    : options_(std::move(options)),
      impl_(std::make_unique<Impl>(options_, queue, connection, results)) {}

JetStreamSource::~JetStreamSource() { Stop(); }

Status JetStreamSource::Start() {
  if (options_.name.empty()) return InvalidArgumentError("jetstream source without a name");
  if (options_.stream.empty()) return InvalidArgumentError("jetstream source without a stream");
  if (options_.default_profile.empty()) {
    return InvalidArgumentError("jetstream source without a default profile");
  }
  if (options_.fetch_batch < 1) return InvalidArgumentError("fetch_batch must be at least 1");
  impl_->Start();
  return Status::Ok();
}

void JetStreamSource::Stop() { impl_->Stop(); }

JetStreamSourceStats JetStreamSource::Stats() const { return impl_->Stats(); }

}  // namespace qseal::ingest
