#include "publish/kafka_publisher.h"

#include "common/log.h"
#include "publish/result_headers.h"

namespace qseal::publish {

// The delivery reports of one Publish/PublishBatch call. Each record in flight holds the batch
// through its Delivery, so a report that comes after the caller gave up waiting touches live state.
struct KafkaPublisher::Batch {
  KafkaPublisher* publisher = nullptr;
  Mutex mu;
  CondVar done;
  std::vector<Status> out QSEAL_GUARDED_BY(mu);
  std::size_t pending QSEAL_GUARDED_BY(mu) = 0;
};

namespace {

struct Delivery {
  std::shared_ptr<void> batch;  // a KafkaPublisher::Batch, type-erased (the struct is private)
  std::size_t index = 0;
};

}  // namespace

KafkaPublisher::KafkaPublisher(KafkaPublisherOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<KafkaPublisher>> KafkaPublisher::Create(KafkaPublisherOptions options) {
  if (options.topic.empty()) return InvalidArgumentError("kafka publisher without a topic");
  std::unique_ptr<KafkaPublisher> p(new KafkaPublisher(std::move(options)));
  QSEAL_RETURN_IF_ERROR(p->EnsureProducer());
  p->poller_ = std::thread([self = p.get()] {
    while (!self->stop_) {
      std::shared_ptr<rd_kafka_t> producer;
      {
        MutexLock lock(self->mu_);
        producer = self->producer_;
      }
      rd_kafka_poll(producer.get(), 100);  // serves the delivery reports
    }
  });
  return p;
}

KafkaPublisher::~KafkaPublisher() {
  std::shared_ptr<rd_kafka_t> producer;
  {
    MutexLock lock(mu_);
    producer = producer_;
  }
  rd_kafka_flush(producer.get(), static_cast<int>(options_.publish_timeout.count()));
  stop_ = true;
  if (poller_.joinable()) poller_.join();
}

KafkaPublisherStats KafkaPublisher::Stats() const { return {published_.load(), errors_.load()}; }

Status KafkaPublisher::EnsureProducer() {
  MutexLock lock(mu_);
  char reason[512] = {};
  if (producer_ != nullptr) {
    if (rd_kafka_fatal_error(producer_.get(), reason, sizeof(reason)) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::Ok();
    }
    LogWarn("kafka producer failed for good; replacing it",
            {{"topic", options_.topic}, {"error", reason}});
  }
  const std::string timeout = std::to_string(options_.publish_timeout.count());
  QSEAL_ASSIGN_OR_RETURN(KafkaConfPtr conf,
                         MakeKafkaConf(options_.client, {{"enable.idempotence", "true"},
                                                         {"acks", "all"},
                                                         {"delivery.timeout.ms", timeout},
                                                         {"linger.ms", "2"}}));
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaPublisher::OnDelivery);
  char err[512] = {};
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof(err));
  if (rk == nullptr) return InvalidArgumentError(std::string("kafka producer: ") + err);
  static_cast<void>(conf.release());  // rd_kafka_new took it
  producer_ = std::shared_ptr<rd_kafka_t>(rk, [](rd_kafka_t* h) { rd_kafka_destroy(h); });
  return Status::Ok();
}

void KafkaPublisher::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  std::unique_ptr<Delivery> d(static_cast<Delivery*>(msg->_private));
  if (d == nullptr) return;
  auto* batch = static_cast<Batch*>(d->batch.get());
  Status st = Status::Ok();
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++batch->publisher->errors_;
    st = KafkaError("publishing result to " + batch->publisher->options_.topic, msg->err);
  } else {
    ++batch->publisher->published_;
  }
  MutexLock lock(batch->mu);
  batch->out[d->index] = std::move(st);
  --batch->pending;
  batch->done.SignalAll();
}

Status KafkaPublisher::Produce(const queue::Record& record, ByteSpan body,
                               std::string_view content_type, const Status* error,
                               const std::shared_ptr<Batch>& batch, std::size_t index) {
  if (record.idempotency_key.empty()) {
    return InvalidArgumentError("broker record " + record.id.ToString() +
                                " has no idempotency key");
  }
  std::shared_ptr<rd_kafka_t> producer;
  {
    MutexLock lock(mu_);
    producer = producer_;
  }
  rd_kafka_headers_t* headers = rd_kafka_headers_new(12);
  for (const auto& [k, v] : ResultHeaders(record, content_type, error)) {
    rd_kafka_header_add(headers, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                        static_cast<ssize_t>(v.size()));
  }
  auto delivery = std::make_unique<Delivery>();
  delivery->batch = batch;
  delivery->index = index;
  {
    MutexLock lock(batch->mu);
    ++batch->pending;
  }
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  // A full local queue drains as the brokers ack: wait a little for room, then give up.
  for (int attempt = 0; attempt < 50; ++attempt) {
    rd_kafka_vu_t args[6] = {};
    args[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    args[0].u.cstr = options_.topic.c_str();
    args[1].vtype = RD_KAFKA_VTYPE_KEY;
    args[1].u.mem = {const_cast<char*>(record.idempotency_key.data()),
                     record.idempotency_key.size()};
    args[2].vtype = RD_KAFKA_VTYPE_VALUE;
    args[2].u.mem = {const_cast<std::uint8_t*>(body.data()), body.size()};
    args[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    args[3].u.i = RD_KAFKA_MSG_F_COPY;
    args[4].vtype = RD_KAFKA_VTYPE_HEADERS;
    args[4].u.headers = headers;
    args[5].vtype = RD_KAFKA_VTYPE_OPAQUE;
    args[5].u.ptr = delivery.get();
    rd_kafka_error_t* produced = rd_kafka_produceva(producer.get(), args, 6);
    err = produced == nullptr ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_error_code(produced);
    if (produced != nullptr) rd_kafka_error_destroy(produced);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);  // still ours: producev failed
    ++errors_;
    MutexLock lock(batch->mu);
    --batch->pending;
    return KafkaError("producing result to " + options_.topic, err);
  }
  static_cast<void>(delivery.release());  // OnDelivery owns it now
  return Status::Ok();
}

std::vector<Status> KafkaPublisher::Wait(const std::shared_ptr<Batch>& batch) {
  // librdkafka reports every record by delivery.timeout.ms (an error then); the margin only
  // covers the report's way to the poller.
  const auto deadline =
      std::chrono::steady_clock::now() + options_.publish_timeout + std::chrono::seconds(2);
  MutexLock lock(batch->mu);
  while (batch->pending > 0 && std::chrono::steady_clock::now() < deadline) {
    batch->done.WaitUntil(batch->mu, deadline);
  }
  return batch->out;
}

std::vector<Status> KafkaPublisher::PublishBatch(std::span<const PublishItem> items) {
  Status ready = EnsureProducer();
  if (!ready.ok()) return std::vector<Status>(items.size(), ready);
  auto batch = std::make_shared<Batch>();
  batch->publisher = this;
  {
    MutexLock lock(batch->mu);
    batch->out.assign(items.size(), UnavailableError("no ack from the brokers in time"));
  }
  std::vector<Status> refused(items.size(), Status::Ok());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const queue::Record& record = *items[i].record;
    if (record.seal_media_type.empty()) {
      refused[i] =
          InvalidArgumentError("record " + record.id.ToString() + " has no seal media type");
      continue;
    }
    // A spooled (large) seal is read whole: a result record carries the seal in one piece.
    Result<Bytes> spooled =
        items[i].seal_file != nullptr ? SealBytes(items[i]) : Result<Bytes>(Bytes());
    if (!spooled.ok()) {
      refused[i] = spooled.status();
      continue;
    }
    ByteSpan seal = items[i].seal_file != nullptr ? ByteSpan(*spooled) : items[i].seal;
    refused[i] = Produce(record, seal, record.seal_media_type, nullptr, batch, i);
  }
  std::vector<Status> out = Wait(batch);
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!refused[i].ok()) out[i] = refused[i];
  }
  return out;
}

Status KafkaPublisher::Publish(const queue::Record& record, ByteSpan seal) {
  PublishItem item;
  item.record = &record;
  item.seal = seal;
  return PublishBatch(std::span<const PublishItem>(&item, 1))[0];
}

Status KafkaPublisher::PublishFailure(const queue::Record& record, const Status& error) {
  QSEAL_RETURN_IF_ERROR(EnsureProducer());
  auto batch = std::make_shared<Batch>();
  batch->publisher = this;
  {
    MutexLock lock(batch->mu);
    batch->out.assign(1, UnavailableError("no ack from the brokers in time"));
  }
  QSEAL_RETURN_IF_ERROR(Produce(record, ByteSpan(), "", &error, batch, 0));
  return Wait(batch)[0];
}

}  // namespace qseal::publish
