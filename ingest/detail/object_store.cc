#include "ingest/detail/object_store.h"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "common/sha256.h"
#include "publish/nats_connection.h"

namespace qseal::ingest::detail {
namespace {

using publish::NatsError;

constexpr jsErrCode kNoJsError = static_cast<jsErrCode>(0);

bool RestrictedTerm(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

// The object's info, as the store keeps it.
struct ObjectInfo {
  std::string nuid;
  std::uint64_t size = 0;
  std::uint64_t chunks = 0;
  std::string digest;
  bool deleted = false;
};

Result<ObjectInfo> ReadInfo(jsCtx* js, const ObjectRef& ref, const std::string& stream) {
  const std::string subject = "$O." + ref.bucket + ".M." + Base64Url(AsBytes(ref.name));
  natsMsg* raw = nullptr;
  jsErrCode jerr = kNoJsError;
  natsStatus s = js_GetLastMsg(&raw, js, stream.c_str(), subject.c_str(), nullptr, &jerr);
  MsgPtr msg(raw);
  const std::string what = "object " + ref.bucket + "/" + ref.name;
  if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr || jerr == JSStreamNotFoundErr) {
    return InvalidArgumentError(what + " does not exist");
  }
  if (s != NATS_OK) return UnavailableError(NatsError(what, s, jerr).message());
  nlohmann::json j =
      nlohmann::json::parse(std::string(natsMsg_GetData(msg.get()),
                                        static_cast<std::size_t>(natsMsg_GetDataLength(msg.get()))),
                            nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgumentError(what + ": info is not JSON");
  ObjectInfo info;
  info.nuid = j.value("nuid", "");
  info.size = j.value("size", std::uint64_t{0});
  info.chunks = j.value("chunks", std::uint64_t{0});
  info.digest = j.value("digest", "");
  info.deleted = j.value("deleted", false);
  if (info.deleted) return InvalidArgumentError(what + " is deleted");
  if (!RestrictedTerm(info.nuid)) return InvalidArgumentError(what + ": info without a nuid");
  if (info.digest.rfind("SHA-256=", 0) != 0) {
    return InvalidArgumentError(what + ": no SHA-256 digest in its info");
  }
  return info;
}

}  // namespace

Result<ObjectRef> ParseObjectRef(const std::string& header) {
  const std::size_t slash = header.find('/');
  if (slash == std::string::npos || slash + 1 >= header.size() ||
      !RestrictedTerm(header.substr(0, slash))) {
    return InvalidArgumentError("Qseal-Object must be <bucket>/<name>, got \"" + header + "\"");
  }
  return ObjectRef{header.substr(0, slash), header.substr(slash + 1)};
}

std::string Base64Url(ByteSpan bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

Status ReadObject(jsCtx* js, const ObjectRef& ref, std::chrono::milliseconds chunk_wait,
                  const std::function<Status(ByteSpan chunk)>& sink) {
  const std::string stream = "OBJ_" + ref.bucket;
  QSEAL_ASSIGN_OR_RETURN(ObjectInfo info, ReadInfo(js, ref, stream));
  const std::string what = "object " + ref.bucket + "/" + ref.name;
  Hasher hasher;
  std::uint64_t got = 0;
  if (info.chunks > 0) {
    const std::string subject = "$O." + ref.bucket + ".C." + info.nuid;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Ordered = true;  // an ephemeral consumer that redelivers nothing and keeps the order
    natsSubscription* raw_sub = nullptr;
    jsErrCode jerr = kNoJsError;
    natsStatus s = js_SubscribeSync(&raw_sub, js, subject.c_str(), nullptr, &so, &jerr);
    if (s != NATS_OK) return UnavailableError(NatsError(what + " chunks", s, jerr).message());
    std::unique_ptr<natsSubscription, void (*)(natsSubscription*)> sub(
        raw_sub, [](natsSubscription* p) {
          natsSubscription_Unsubscribe(p);  // deletes the ephemeral consumer
          natsSubscription_Destroy(p);
        });
    for (std::uint64_t i = 0; i < info.chunks; ++i) {
      natsMsg* raw = nullptr;
      s = natsSubscription_NextMsg(&raw, sub.get(), chunk_wait.count());
      MsgPtr chunk(raw);
      if (s != NATS_OK) {
        return UnavailableError(NatsError(what + " chunk " + std::to_string(i), s).message());
      }
      ByteSpan data(reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(chunk.get())),
                    static_cast<std::size_t>(natsMsg_GetDataLength(chunk.get())));
      got += data.size();
      if (got > info.size) return InvalidArgumentError(what + " is longer than its info says");
      QSEAL_RETURN_IF_ERROR(hasher.Update(data));
      QSEAL_RETURN_IF_ERROR(sink(data));
    }
  }
  if (got != info.size) {
    return InvalidArgumentError(what + " has " + std::to_string(got) + " bytes, its info says " +
                                std::to_string(info.size));
  }
  QSEAL_ASSIGN_OR_RETURN(Bytes digest, hasher.Final());
  std::string ours = Base64Url(digest);
  std::string theirs = info.digest.substr(8);
  // Writers differ on the padding of the base64url digest: compare without it.
  auto unpadded = [](std::string v) {
    while (!v.empty() && v.back() == '=') v.pop_back();
    return v;
  };
  if (unpadded(ours) != unpadded(theirs)) {
    return InvalidArgumentError(what + ": its bytes do not match its SHA-256 digest");
  }
  return Status::Ok();
}

}  // namespace qseal::ingest::detail
