#include "tests/testing/nats_server.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace qseal::testing {

NatsServer::NatsServer(std::string dir) : dir_(std::move(dir)) {}

NatsServer::~NatsServer() { Kill(); }

Status NatsServer::Start() {
  if (port_ == 0) port_ = FreeLoopbackPort();
  if (port_ == 0) return UnavailableError("no free port");
  std::filesystem::create_directories(dir_ + "/js");
  std::vector<std::string> argv = {"/usr/sbin/nats-server", "-js", "-a",        "127.0.0.1", "-p",
                                   std::to_string(port_),   "-sd", dir_ + "/js"};
  const std::string log = dir_ + "/nats-" + std::to_string(++starts_) + ".log";
  QSEAL_RETURN_IF_ERROR(process_.Start(argv, log));
  if (process_.WaitForLine("Server is ready", std::chrono::seconds(30)).empty()) {
    return UnavailableError("nats-server did not start: " + process_.Stderr());
  }
  return Status::Ok();
}

int NatsServer::Stop() {
  if (!process_.running()) return -1;
  // SIGINT is nats-server's clean shutdown (exit 0); SIGTERM ends it with exit status 1.
  process_.Signal(SIGINT);
  return process_.Wait(std::chrono::seconds(30));
}

void NatsServer::Kill() {
  if (!process_.running()) return;
  process_.Signal(SIGKILL);
  process_.Wait(std::chrono::seconds(30));
}

Result<std::unique_ptr<publish::NatsConnection>> ConnectNats(const std::string& url) {
  publish::NatsConnectOptions o;
  o.servers = {url};
  o.name = "qseal-test";
  return publish::NatsConnection::Connect(o);
}

Result<std::uint64_t> PublishJs(publish::NatsConnection& nc, const std::string& subject,
                                const std::string& data,
                                const std::map<std::string, std::string>& headers) {
  natsMsg* raw = nullptr;
  natsStatus s =
      natsMsg_Create(&raw, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) return publish::NatsError("natsMsg_Create", s);
  publish::NatsMsgPtr msg(raw);
  for (const auto& [k, v] : headers) natsMsgHeader_Set(msg.get(), k.c_str(), v.c_str());
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  s = js_PublishMsg(&ack, nc.js(), msg.get(), nullptr, &jerr);
  if (s != NATS_OK) return publish::NatsError("publish " + subject, s, jerr);
  const std::uint64_t seq = ack->Sequence;
  jsPubAck_Destroy(ack);
  return seq;
}

Status CreateWorkQueueStream(publish::NatsConnection& nc, const std::string& name,
                             const std::vector<std::string>& subjects) {
  std::vector<const char*> subj;
  for (const auto& s : subjects) subj.push_back(s.c_str());
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name.c_str();
  cfg.Subjects = subj.data();
  cfg.SubjectsLen = static_cast<int>(subj.size());
  cfg.Retention = js_WorkQueuePolicy;
  cfg.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&si, nc.js(), &cfg, nullptr, &jerr);
  if (si != nullptr) jsStreamInfo_Destroy(si);
  if (s != NATS_OK && jerr != JSStreamNameExistErr) {
    return publish::NatsError("add stream " + name, s, jerr);
  }
  return Status::Ok();
}

Result<std::vector<StreamMessage>> ReadStream(publish::NatsConnection& nc,
                                              const std::string& stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, nc.js(), stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return publish::NatsError("stream info " + stream, s, jerr);
  const std::uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  std::vector<StreamMessage> out;
  for (std::uint64_t seq = first; seq <= last && last > 0; ++seq) {
    natsMsg* raw = nullptr;
    s = js_GetMsg(&raw, nc.js(), stream.c_str(), seq, nullptr, &jerr);
    if (s == NATS_NOT_FOUND) continue;  // deleted
    if (s != NATS_OK) return publish::NatsError("get " + std::to_string(seq), s, jerr);
    publish::NatsMsgPtr msg(raw);
    StreamMessage m;
    m.sequence = seq;
    m.subject = natsMsg_GetSubject(msg.get());
    m.data.assign(natsMsg_GetData(msg.get()),
                  static_cast<std::size_t>(natsMsg_GetDataLength(msg.get())));
    const char** keys = nullptr;
    int count = 0;
    if (natsMsgHeader_Keys(msg.get(), &keys, &count) == NATS_OK) {
      for (int i = 0; i < count; ++i) {
        const char* v = nullptr;
        if (natsMsgHeader_Get(msg.get(), keys[i], &v) == NATS_OK && v != nullptr) {
          m.headers[keys[i]] = v;
        }
      }
      free(static_cast<void*>(keys));
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::uint64_t StreamMessages(publish::NatsConnection& nc, const std::string& stream) {
  jsStreamInfo* si = nullptr;
  if (js_GetStreamInfo(&si, nc.js(), stream.c_str(), nullptr, nullptr) != NATS_OK) return 0;
  std::uint64_t n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

std::int64_t ConsumerAckPending(publish::NatsConnection& nc, const std::string& stream,
                                const std::string& consumer) {
  jsConsumerInfo* ci = nullptr;
  if (js_GetConsumerInfo(&ci, nc.js(), stream.c_str(), consumer.c_str(), nullptr, nullptr) !=
      NATS_OK) {
    return -1;
  }
  std::int64_t n = ci->NumAckPending;
  jsConsumerInfo_Destroy(ci);
  return n;
}

}  // namespace qseal::testing
