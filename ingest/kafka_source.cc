#include "ingest/kafka_source.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <utility>

#include "common/log.h"
#include "common/mutex.h"
#include "ingest/detail/broker_source.h"

namespace qseal::ingest {
namespace {

using publish::KafkaError;

std::string Header(const rd_kafka_message_t* msg, const char* key) {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(msg, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return "";
  const void* value = nullptr;
  std::size_t size = 0;
  if (rd_kafka_header_get_last(headers, key, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      value == nullptr) {
    return "";
  }
  return std::string(static_cast<const char*>(value), size);
}

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

using TopicPartition = std::pair<std::string, std::int32_t>;

}  // namespace

class KafkaSource::Impl {
 public:
  Impl(const KafkaSourceOptions& options, queue::Queue* queue, publish::KafkaPublisher* results)
      : options_(options), queue_(queue), results_(results) {}

  ~Impl() { Stop(); }

  Status Start() {
    const std::string session_timeout = std::to_string(options_.session_timeout.count());
    // Kafka's advice: heartbeats at most a third of the session timeout.
    const std::string heartbeat =
        std::to_string(std::min<std::int64_t>(3000, options_.session_timeout.count() / 3));
    QSEAL_ASSIGN_OR_RETURN(
        publish::KafkaConfPtr conf,
        publish::MakeKafkaConf(options_.client, {{"group.id", options_.group},
                                                 {"enable.auto.commit", "false"},
                                                 {"enable.auto.offset.store", "false"},
                                                 {"auto.offset.reset", "earliest"},
                                                 {"enable.partition.eof", "false"},
                                                 {"session.timeout.ms", session_timeout},
                                                 {"heartbeat.interval.ms", heartbeat}}));
    char err[512] = {};
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof(err));
    if (rk == nullptr) return InvalidArgumentError(std::string("kafka consumer: ") + err);
    static_cast<void>(conf.release());  // rd_kafka_new took it
    consumer_.reset(rk);
    rd_kafka_poll_set_consumer(rk);
    PartitionList topics(
        rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size())));
    for (const std::string& t : options_.topics) {
      rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics.get());
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      consumer_.reset();
      return KafkaError("subscribing", e).WithContext("kafka " + options_.name);
    }
    LogInfo("kafka source consuming", {{"source", options_.name}, {"group", options_.group}});
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  void Stop() {
    {
      MutexLock lock(mu_);
      stop_ = true;
      cv_.SignalAll();
    }
    if (thread_.joinable()) thread_.join();
    if (consumer_ != nullptr) {
      // Leaves the group: its partitions go to the other nodes without waiting for a timeout.
      rd_kafka_consumer_close(consumer_.get());
      consumer_.reset();
    }
  }

  KafkaSourceStats Stats() const {
    KafkaSourceStats s;
    s.consumed = consumed_.load();
    s.enqueued = enqueued_.load();
    s.duplicates = duplicates_.load();
    s.rejected = rejected_.load();
    s.retried = retried_.load();
    s.errors = errors_.load();
    s.lag = lag_.load();
    s.in_flight = in_flight_.load();
    s.partitions = partitions_.load();
    s.paused = paused_.load();
    return s;
  }

 private:
  // One consumed record on its way into the queue.
  struct Item {
    MessagePtr msg;
    queue::NewDocument doc;
    std::unique_ptr<queue::PendingDocument> pending;
    bool done = false;  // enqueued (or refused for good, its failure result published)
  };

  void Run() {
    while (!Stopping()) {
      UpdateAssignment();
      const int batch =
          detail::RoundSize(*queue_, options_.local_high_watermark, options_.fetch_batch);
      // Backpressure reaches the brokers: paused partitions are not fetched, so the backlog stays
      // in the topic. Polling goes on meanwhile (the group would otherwise count this node dead).
      const bool admit = batch > 0 && queue_->Admit().ok();
      SetPaused(!admit);
      std::vector<Item> items;
      rd_kafka_message_t* m = rd_kafka_consumer_poll(
          consumer_.get(),
          static_cast<int>(admit ? options_.fetch_wait.count() : options_.retry_interval.count()));
      while (m != nullptr) {
        MessagePtr msg(m);
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          ++errors_;
          LogWarn(
              "kafka consumer error",
              {{"source", options_.name}, {"error", KafkaError("consuming", msg->err).ToString()}});
        } else {
          ++consumed_;
          Item item;
          item.msg = std::move(msg);
          items.push_back(std::move(item));
        }
        m = admit && static_cast<int>(items.size()) < batch
                ? rd_kafka_consumer_poll(consumer_.get(), 0)
                : nullptr;
      }
      if (!items.empty()) {
        in_flight_ = items.size();
        if (admit) {
          Handle(items);
        }
        Finish(items);
        in_flight_ = 0;
      }
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

  // Partitions assigned now and how far this node is behind their ends: the positions consumed
  // against the partitions' ends, asked of the brokers at most once a second (paused partitions
  // get no fetch responses, so the ends cached from those would go stale exactly when the
  // backlog grows).
  void UpdateAssignment() {
    rd_kafka_topic_partition_list_t* raw = nullptr;
    if (rd_kafka_assignment(consumer_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    PartitionList assigned(raw);
    partitions_ = static_cast<std::uint64_t>(assigned->cnt);
    const auto now = std::chrono::steady_clock::now();
    if (now < next_lag_query_) return;
    next_lag_query_ = now + std::chrono::seconds(1);
    rd_kafka_position(consumer_.get(), assigned.get());
    // A partition not consumed from yet has no position: it starts at the group's committed
    // offset, or (none committed) at its beginning.
    PartitionList committed(rd_kafka_topic_partition_list_copy(assigned.get()));
    const bool have_committed =
        rd_kafka_committed(consumer_.get(), committed.get(), 500) == RD_KAFKA_RESP_ERR_NO_ERROR;
    std::uint64_t lag = 0;
    for (int i = 0; i < assigned->cnt; ++i) {
      const rd_kafka_topic_partition_t& p = assigned->elems[i];
      std::int64_t low = 0, high = 0;
      if (rd_kafka_query_watermark_offsets(consumer_.get(), p.topic, p.partition, &low, &high,
                                           500) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        continue;  // unknown for now
      }
      std::int64_t at = p.offset;
      if (at < 0 && have_committed) at = committed->elems[i].offset;
      if (at < 0) at = low;
      if (high > at) lag += static_cast<std::uint64_t>(high - at);
    }
    lag_ = lag;
  }

  // Pausing is repeated every round while the queue does not admit: a partition assigned
  // meanwhile is paused too.
  void SetPaused(bool pause) {
    if (!pause && !paused_) return;
    rd_kafka_topic_partition_list_t* raw = nullptr;
    if (rd_kafka_assignment(consumer_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    PartitionList assigned(raw);
    rd_kafka_resp_err_t e = pause ? rd_kafka_pause_partitions(consumer_.get(), assigned.get())
                                  : rd_kafka_resume_partitions(consumer_.get(), assigned.get());
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) ++errors_;
    paused_ = pause;
  }

  // Begin + Append for every record, then one synced group commit; marks the items done.
  void Handle(std::vector<Item>& items) {
    const std::string client = "kafka:" + options_.name;
    std::vector<std::size_t> begun;
    std::vector<std::unique_ptr<queue::PendingDocument>> pendings;
    for (std::size_t i = 0; i < items.size(); ++i) {
      Item& item = items[i];
      const rd_kafka_message_t* msg = item.msg.get();
      const std::string topic = rd_kafka_topic_name(msg->rkt);
      const std::string ref =
          topic + "/" + std::to_string(msg->partition) + "/" + std::to_string(msg->offset);
      queue::NewDocument& doc = item.doc;
      doc.source = queue::Source::kBroker;
      doc.client = client;
      doc.source_ref = ref;
      doc.profile = Header(msg, "Qseal-Profile");
      if (doc.profile.empty()) doc.profile = options_.default_profile;
      doc.name = Header(msg, "Qseal-Filename");
      if (doc.name.empty()) {
        doc.name = topic + "-" + std::to_string(msg->partition) + "-" + std::to_string(msg->offset);
      }
      doc.media_type = Header(msg, "Qseal-Media-Type");
      doc.idempotency_key = Header(msg, "Qseal-Idempotency-Key");
      if (doc.idempotency_key.empty()) doc.idempotency_key = ref;
      if (!detail::ProfileAllowed(doc.profile, options_.default_profile, options_.profiles)) {
        Refused(item, InvalidArgumentError("profile \"" + doc.profile + "\" is not allowed for " +
                                           client));
        continue;
      }
      Result<std::unique_ptr<queue::PendingDocument>> pending = queue_->Begin(doc);
      if (!pending.ok()) {
        Refused(item, pending.status());
        continue;
      }
      Status appended =
          (*pending)->Append(ByteSpan(static_cast<const std::uint8_t*>(msg->payload), msg->len));
      if (!appended.ok()) {
        Refused(item, appended);
        continue;
      }
      begun.push_back(i);
      pendings.push_back(std::move(*pending));
    }
    if (begun.empty()) return;
    std::vector<Result<queue::EnqueueResult>> committed = queue_->CommitMany(std::move(pendings));
    for (std::size_t j = 0; j < begun.size(); ++j) {
      Item& item = items[begun[j]];
      Status st = j < committed.size() ? committed[j].status() : InternalError("commit lost");
      if (!st.ok()) {
        Refused(item, st);
        continue;
      }
      ++(committed[j]->duplicate ? duplicates_ : enqueued_);
      item.done = true;
    }
  }

  // A record that did not reach the queue: a permanent refusal gets its failure result (and is
  // then done); anything else stays in the topic for a later round.
  void Refused(Item& item, const Status& st) {
    if (!detail::FinalRefusal(st)) {
      if (st.code() != StatusCode::kResourceExhausted) {
        ++errors_;
        LogWarn(
            "kafka record not enqueued; consumed again later",
            {{"source", options_.name}, {"ref", item.doc.source_ref}, {"error", st.ToString()}});
      }
      return;
    }
    const queue::Record r = detail::RefusedRecord(item.doc);
    Status published = results_->PublishFailure(r, st);
    if (!published.ok()) {
      ++errors_;
      LogWarn("refusal not published; consumed again later",
              {{"ref", r.source_ref}, {"error", published.ToString()}});
      return;
    }
    ++rejected_;
    LogWarn("kafka record refused",
            {{"source", options_.name}, {"ref", r.source_ref}, {"reason", st.ToString()}});
    item.done = true;
  }

  // Commits, per partition, the offset after the last record of the unbroken run of done ones;
  // a partition with a record not done is sought back to it, so it is consumed again.
  void Finish(const std::vector<Item>& items) {
    std::map<TopicPartition, std::int64_t> commit, seek;
    for (const Item& item : items) {
      const rd_kafka_message_t* msg = item.msg.get();
      const TopicPartition tp{rd_kafka_topic_name(msg->rkt), msg->partition};
      if (!item.done) ++retried_;
      if (seek.count(tp) != 0) continue;  // behind a record not done: consumed again anyway
      if (item.done) {
        commit[tp] = msg->offset + 1;
      } else {
        seek[tp] = msg->offset;
      }
    }
    PartitionList to_commit(rd_kafka_topic_partition_list_new(static_cast<int>(commit.size())));
    for (const auto& [tp, offset] : commit) {
      rd_kafka_topic_partition_list_add(to_commit.get(), tp.first.c_str(), tp.second)->offset =
          offset;
    }
    if (to_commit->cnt > 0) {
      rd_kafka_resp_err_t e = rd_kafka_commit(consumer_.get(), to_commit.get(), 0);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        // The records are consumed again (here or, after a rebalance, by another node); the
        // idempotency key makes them duplicates here.
        ++errors_;
        LogWarn("kafka offset commit failed",
                {{"source", options_.name}, {"error", KafkaError("commit", e).ToString()}});
      }
    }
    if (seek.empty()) return;
    PartitionList to_seek(rd_kafka_topic_partition_list_new(static_cast<int>(seek.size())));
    for (const auto& [tp, offset] : seek) {
      rd_kafka_topic_partition_list_add(to_seek.get(), tp.first.c_str(), tp.second)->offset =
          offset;
    }
    rd_kafka_error_t* error = rd_kafka_seek_partitions(consumer_.get(), to_seek.get(), 5000);
    if (error != nullptr) {
      ++errors_;
      LogWarn("kafka seek failed",
              {{"source", options_.name}, {"error", std::string(rd_kafka_error_string(error))}});
      rd_kafka_error_destroy(error);
    }
    Pause(options_.retry_interval);
  }

  const KafkaSourceOptions options_;
  queue::Queue* const queue_;
  publish::KafkaPublisher* const results_;
  publish::KafkaHandlePtr consumer_;
  std::thread thread_;
  std::chrono::steady_clock::time_point next_lag_query_;  // the consuming thread's
  Mutex mu_;
  CondVar cv_;
  bool stop_ QSEAL_GUARDED_BY(mu_) = false;
  std::atomic<std::uint64_t> consumed_{0}, enqueued_{0}, duplicates_{0}, rejected_{0}, retried_{0},
      errors_{0}, lag_{0}, in_flight_{0}, partitions_{0};
  std::atomic<bool> paused_{false};
};

KafkaSource::KafkaSource(KafkaSourceOptions options, queue::Queue* queue,
                         publish::KafkaPublisher* results)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(options_, queue, results)) {}

KafkaSource::~KafkaSource() { Stop(); }

Status KafkaSource::Start() {
  if (options_.name.empty()) return InvalidArgumentError("kafka source without a name");
  if (options_.topics.empty()) return InvalidArgumentError("kafka source without topics");
  if (options_.default_profile.empty()) {
    return InvalidArgumentError("kafka source without a default profile");
  }
  if (options_.fetch_batch < 1) return InvalidArgumentError("fetch_batch must be at least 1");
  return impl_->Start();
}

void KafkaSource::Stop() { impl_->Stop(); }

KafkaSourceStats KafkaSource::Stats() const { return impl_->Stats(); }

}  // namespace qseal::ingest
