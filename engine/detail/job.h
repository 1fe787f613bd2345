// One document's state between lease and commit, as the engine's stages hand it on; and the
// profile it is sealed with. Internal to engine/.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "engine/engine.h"
#include "formats/format.h"
#include "hsm/signer.h"
#include "queue/queue.h"

namespace qseal::engine::detail {

struct ProfileState {
  Profile profile;
  std::unique_ptr<const formats::Format> format;  // made once by Engine::Create
};

struct Job {
  queue::Record record;
  const ProfileState* profile = nullptr;
  formats::Content content;  // reopens the queue's payload (Prepare, and Assemble if it embeds)
  std::unique_ptr<formats::ToBeSigned> tbs;
  Result<Bytes> signature = Bytes();
  Bytes seal;
  std::unique_ptr<queue::PendingSeal> seal_file;  // a large seal, in the queue's spool instead
  Status error;
  bool retryable = false;
  // The outcome could not be delivered (publisher) or recorded (audit): not the seal's failure,
  // so it spends no attempt; the queue requeues it whatever the attempts (queue::Failure).
  bool undelivered = false;
  std::chrono::steady_clock::time_point sign_submitted;
  std::string signature_sha256;  // hex, for the audit trail
  // "digest-only ALG:HEX" for a digest-only document (the digest its seal states), for the audit
  // trail's sealed record (tbs is gone by then).
  std::string digest_only_detail;
  hsm::SignRequest request;  // between Prepare and the submission to the signer
  // B-T: the signature-time-stamp token (DER), or why there is none (retryable).
  Result<Bytes> timestamp = Bytes();
};
using JobPtr = std::shared_ptr<Job>;
using Jobs = std::vector<JobPtr>;

}  // namespace qseal::engine::detail
