#include "tests/testing/kafka_mock.h"

#include <chrono>
#include <thread>

#include <librdkafka/rdkafka_mock.h>

namespace qseal::testing {
namespace {

using publish::KafkaConfPtr;
using publish::KafkaError;
using publish::KafkaHandlePtr;

Result<KafkaHandlePtr> NewHandle(rd_kafka_type_t type, KafkaConfPtr conf) {
  char err[512] = {};
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof(err));
  if (rk == nullptr) return InternalError(std::string("rd_kafka_new: ") + err);
  static_cast<void>(conf.release());
  return KafkaHandlePtr(rk);
}

Result<KafkaHandlePtr> NewClient(const std::string& bootstraps, rd_kafka_type_t type,
                                 const std::vector<std::pair<std::string, std::string>>& props) {
  publish::KafkaClientOptions o;
  o.brokers = {bootstraps};
  o.client_id = "qseal-test";
  QSEAL_ASSIGN_OR_RETURN(KafkaConfPtr conf, publish::MakeKafkaConf(o, props));
  return NewHandle(type, std::move(conf));
}

struct ListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using List = std::unique_ptr<rd_kafka_topic_partition_list_t, ListDeleter>;

struct DeliveryResult {
  bool done = false;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::int64_t offset = -1;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  auto* r = static_cast<DeliveryResult*>(msg->_private);
  r->done = true;
  r->err = msg->err;
  r->offset = msg->offset;
}

}  // namespace

Result<std::unique_ptr<KafkaMock>> KafkaMock::Start(int brokers) {
  std::unique_ptr<KafkaMock> m(new KafkaMock());
  m->brokers_ = brokers;
  KafkaConfPtr conf(rd_kafka_conf_new());
  // The host handle never connects anywhere (it only runs the cluster): no warning about it.
  rd_kafka_conf_set(conf.get(), "log_level", "3", nullptr, 0);
  QSEAL_ASSIGN_OR_RETURN(m->host_, NewHandle(RD_KAFKA_PRODUCER, std::move(conf)));
  m->cluster_ = rd_kafka_mock_cluster_new(m->host_.get(), brokers);
  if (m->cluster_ == nullptr) return InternalError("rd_kafka_mock_cluster_new failed");
  m->bootstraps_ = rd_kafka_mock_cluster_bootstraps(m->cluster_);
  publish::KafkaClientOptions o;
  o.brokers = {m->bootstraps_};
  o.client_id = "qseal-test-producer";
  QSEAL_ASSIGN_OR_RETURN(
      KafkaConfPtr pconf,
      publish::MakeKafkaConf(o, {{"enable.idempotence", "true"}, {"linger.ms", "0"}}));
  rd_kafka_conf_set_dr_msg_cb(pconf.get(), &OnDelivery);
  QSEAL_ASSIGN_OR_RETURN(m->producer_, NewHandle(RD_KAFKA_PRODUCER, std::move(pconf)));
  return m;
}

KafkaMock::~KafkaMock() {
  if (producer_ != nullptr) rd_kafka_flush(producer_.get(), 2000);
  producer_.reset();
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
}

std::string KafkaMock::bootstraps() const { return bootstraps_; }

Status KafkaMock::CreateTopic(const std::string& topic, int partitions) {
  rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("creating " + topic, e);
  return Status::Ok();
}

void KafkaMock::SetBrokersUp(bool up) {
  for (int id = 1; id <= brokers_; ++id) {
    if (up) {
      rd_kafka_mock_broker_set_up(cluster_, id);
    } else {
      rd_kafka_mock_broker_set_down(cluster_, id);
    }
  }
}

Result<std::int64_t> KafkaMock::Produce(const std::string& topic, const std::string& value,
                                        const std::map<std::string, std::string>& headers,
                                        std::int32_t partition) {
  rd_kafka_headers_t* h = rd_kafka_headers_new(headers.size() + 1);
  for (const auto& [k, v] : headers) {
    rd_kafka_header_add(h, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                        static_cast<ssize_t>(v.size()));
  }
  DeliveryResult result;
  rd_kafka_vu_t args[6] = {};
  args[0].vtype = RD_KAFKA_VTYPE_TOPIC;
  args[0].u.cstr = topic.c_str();
  args[1].vtype = RD_KAFKA_VTYPE_VALUE;
  args[1].u.mem = {const_cast<char*>(value.data()), value.size()};
  args[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  args[2].u.i = RD_KAFKA_MSG_F_COPY;
  args[3].vtype = RD_KAFKA_VTYPE_HEADERS;
  args[3].u.headers = h;
  args[4].vtype = RD_KAFKA_VTYPE_OPAQUE;
  args[4].u.ptr = &result;
  args[5].vtype = RD_KAFKA_VTYPE_PARTITION;
  args[5].u.i32 = partition < 0 ? RD_KAFKA_PARTITION_UA : partition;
  rd_kafka_error_t* error = rd_kafka_produceva(producer_.get(), args, 6);
  if (error != nullptr) {
    rd_kafka_resp_err_t e = rd_kafka_error_code(error);
    rd_kafka_error_destroy(error);
    rd_kafka_headers_destroy(h);
    return KafkaError("produce", e);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!result.done && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_poll(producer_.get(), 50);
  }
  if (!result.done) {
    // The report must not reach a dead stack frame: wait for it however long it takes.
    rd_kafka_flush(producer_.get(), -1);
  }
  if (result.err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("produce", result.err);
  return result.offset;
}

Result<int> KafkaMock::Partitions(const std::string& topic) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(producer_.get(), topic.c_str(), nullptr);
  rd_kafka_resp_err_t e = rd_kafka_metadata(producer_.get(), 0, rkt, &md, 10'000);
  rd_kafka_topic_destroy(rkt);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("metadata", e);
  int n = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
  rd_kafka_metadata_destroy(md);
  if (n == 0) return NotFoundError("topic " + topic);
  return n;
}

Result<std::vector<KafkaRecord>> KafkaMock::ReadTopic(const std::string& topic) {
  QSEAL_ASSIGN_OR_RETURN(int partitions, Partitions(topic));
  QSEAL_ASSIGN_OR_RETURN(KafkaHandlePtr c, NewClient(bootstraps_, RD_KAFKA_CONSUMER,
                                                     {{"group.id", "qseal-test-reader"},
                                                      {"enable.auto.commit", "false"}}));
  std::map<std::int32_t, std::int64_t> ends;
  List assign(rd_kafka_topic_partition_list_new(partitions));
  for (std::int32_t p = 0; p < partitions; ++p) {
    std::int64_t low = 0, high = 0;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(c.get(), topic.c_str(), p, &low, &high, 10'000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("watermarks", e);
    if (high > low) ends[p] = high;
    rd_kafka_topic_partition_list_add(assign.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  std::vector<KafkaRecord> out;
  if (ends.empty()) return out;
  rd_kafka_resp_err_t e = rd_kafka_assign(c.get(), assign.get());
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("assign", e);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!ends.empty() && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c.get(), 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      KafkaRecord r;
      r.partition = m->partition;
      r.offset = m->offset;
      if (m->key != nullptr) r.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* h = nullptr;
      if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* val = nullptr;
        std::size_t size = 0;
        for (std::size_t i = 0;
             rd_kafka_header_get_all(h, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
          r.headers[name] = val == nullptr ? "" : std::string(static_cast<const char*>(val), size);
        }
      }
      auto it = ends.find(m->partition);
      if (it != ends.end() && m->offset + 1 >= it->second) ends.erase(it);
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(c.get());
  if (!ends.empty()) return DeadlineExceededError("reading " + topic + " timed out");
  return out;
}

Result<std::int64_t> KafkaMock::Records(const std::string& topic) {
  QSEAL_ASSIGN_OR_RETURN(int partitions, Partitions(topic));
  std::int64_t total = 0;
  for (std::int32_t p = 0; p < partitions; ++p) {
    std::int64_t low = 0, high = 0;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(producer_.get(), topic.c_str(), p, &low, &high, 10'000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("watermarks", e);
    total += high - low;
  }
  return total;
}

Result<std::int64_t> KafkaMock::CommittedTotal(const std::string& group, const std::string& topic) {
  QSEAL_ASSIGN_OR_RETURN(int partitions, Partitions(topic));
  QSEAL_ASSIGN_OR_RETURN(KafkaHandlePtr c,
                         NewClient(bootstraps_, RD_KAFKA_CONSUMER,
                                   {{"group.id", group}, {"enable.auto.commit", "false"}}));
  List list(rd_kafka_topic_partition_list_new(partitions));
  for (std::int32_t p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  }
  rd_kafka_resp_err_t e = rd_kafka_committed(c.get(), list.get(), 10'000);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError("committed", e);
  std::int64_t total = 0;
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].offset > 0) total += list->elems[i].offset;
  }
  rd_kafka_consumer_close(c.get());
  return total;
}

}  // namespace qseal::testing
