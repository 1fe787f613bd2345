// Engine: the sealing pipeline of DESIGN.md §3, from a leased queue record to a committed seal.
//
//   leaser thread ──► TBB arena: read + hash (streamed) ──► to-be-signed ──► hsm::Signer (async)
//        ▲                                                                        │
//        │ capacity               committer thread ◄── TBB arena: assemble ◄──────┘
//        └──────────── queue.Complete / queue.Fail (group-committed), publisher first
//
// Bounded at every stage: the leaser takes records only while fewer than
// max_documents_in_flight documents and max_bytes_in_flight bytes are between lease and commit,
// so a slow HSM stops leasing, the queue fills to its high watermark and the doors answer 503.
// TBB workers never wait on the HSM: the signer's completion callback hands the document back to
// the arena. Each document gets exactly one signature request per lease; the signer verifies every
// signature with the certificate's public key before returning it.
//
// Stages hand over batches, not single documents (a wake-up costs more CPU than a small
// document's crypto): one arena task prepares a chunk of a lease (up to 16 documents or 1 MiB);
// signed documents collect in one list that at most one arena task per worker drains, assembling
// and publishing (Publisher::PublishBatch) up to 64 at a time; the committer commits everything
// finished since its last commit in one synced batch.
//
// B-T profiles (Profile::timestamps): once signed, the format's imprint
// (Format::TimestampImprint) goes to the TSA client (never waited for: its callback hands the
// document to assembly), and the format writes the token into the seal as it assembles it.
// Documents waiting for a token count as in flight, so a slow TSA stops leasing like a slow HSM.
// B-LT profiles (Profile::revocation) also get the cache's current revocation data at assembly.
//
// Failures: a transient error (HSM unavailable, I/O) goes back to the queue with back-off via
// Queue::Fail(retryable); a permanent one (unknown profile, certificate expired) fails the document
// with its reason. On Stop the leaser stops, in-flight documents get drain_timeout to finish;
// whatever is left stays leased and is requeued when the queue is next opened.
//
// Seals are made through formats::Format (formats/format.h): Prepare streams the queue's payload
// into the to-be-signed, the HSM signs its digest, Assemble writes the seal; the profile's format
// also gives the seal's media type (recorded in the queue) and file name (SealName).
//
// Thread-safe: Start, Stop, Stats, SealName(s) and the listener may be used from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/algorithms.h"
#include "common/clock.h"
#include "common/status.h"
#include "publish/publisher.h"
#include "queue/queue.h"

namespace qseal::audit {
class AuditLog;
}
namespace qseal::hsm {
class Signer;
}
namespace qseal::metrics {
class Metrics;
}
namespace qseal::tsa {
class TsaClient;
}
namespace qseal::revocation {
class RevocationCache;
}

namespace qseal::engine {

// One sealing policy, resolved against the signer's keys.
struct Profile {
  std::string name;
  // The seal format, one of formats::FormatNames() (formats/format.h).
  std::string format = "cades-detached";
  DigestAlgorithm digest = DigestAlgorithm::kSha256;
  SignatureScheme scheme = SignatureScheme::kEcdsa;
  std::string key;  // hsm key name
  // XAdES canonicalisation (formats::FormatOptions::c14n). Default: "exc-c14n".
  std::string c14n = "exc-c14n";
  // B-T: the client that time-stamps each signature (formats with Format::has_timestamps); must
  // outlive the engine and be shut down before it is destroyed. A document whose time-stamp cannot
  // be had goes back to the queue as a retryable failure: never sealed at a lower level. Default:
  // null (B-B).
  tsa::TsaClient* timestamps = nullptr;
  // B-T: how long after acceptance a document may wait for a time-stamp (retried with the
  // queue's back-off, spending no attempt) before it fails with the TSA's reason. Default: 1 h.
  std::chrono::milliseconds timestamp_wait{3'600'000};
  // B-LT (with timestamps; formats with Format::has_validation_data): the cache whose current
  // revocation data of the key's chain goes into every seal; must outlive the engine. No current
  // data (responder down, not fetched yet): the document waits as for a time-stamp, within
  // timestamp_wait; a revoked chain fails it. Default: null (B-B, B-T).
  revocation::RevocationCache* revocation = nullptr;
};

struct EngineOptions {
  // Records leased per queue round trip. Default: 256.
  std::size_t lease_batch = 256;
  // Documents between lease and commit at once. Default: 4096.
  std::size_t max_documents_in_flight = 4096;
  // Document bytes between lease and commit at once (the first document is always admitted).
  // Default: 256 MiB.
  std::uint64_t max_bytes_in_flight = 256ull << 20;
  // Lease length: a document not finished by then goes back to the queue. Default: 5 min.
  std::chrono::milliseconds lease_duration{300'000};
  // Stop() waits this long for in-flight documents. Default: 30 s.
  std::chrono::milliseconds drain_timeout{30'000};
  // Read size while hashing. Default: 256 KiB.
  std::size_t read_chunk_bytes = 256 << 10;
  // A seal expected (Format::OutputSizeHint) to be at least this large is written to a queue
  // spool file (queue::PendingSeal) instead of memory: seals that embed their document (PAdES,
  // CAdES enveloping) cost memory per seal, not per document byte. Default: 1 MiB.
  std::uint64_t seal_spool_min_bytes = 1 << 20;
  // The queue's max_attempts: a retryable failure on the last attempt is final, so the failure
  // is published (watched folders) before the queue marks it failed. Default: 5.
  std::uint32_t max_attempts = 5;
  // Where per-document timings and outcomes are counted; may be null. Must outlive the engine.
  metrics::Metrics* metrics = nullptr;
  // Worker threads of the TBB arena (hashing and assembly). 0: one per core. Default: 0.
  int worker_threads = 0;
  // The audit trail (docs/audit.md); may be null (no trail). When set, a document's sign_intent
  // record is durable before its digest reaches the signer, its sealed/failed record is durable
  // before the queue commit, and while the log is unhealthy nothing is leased (fail closed).
  // Must outlive the engine. Default: null.
  audit::AuditLog* audit = nullptr;
};

struct EngineStats {
  std::uint64_t leased = 0;
  std::uint64_t sealed = 0;
  std::uint64_t failed = 0;    // final failures
  std::uint64_t requeued = 0;  // transient failures sent back with back-off
  std::uint64_t documents_in_flight = 0;
  std::uint64_t bytes_in_flight = 0;
  std::uint64_t commit_batches = 0;
  bool throttled = false;  // the leaser is waiting for in-flight capacity
};

// Told after a document reached a final state (sealed or failed) and that state is durable.
using FinishedListener = std::function<void(const queue::DocumentId& id)>;
// Chooses the publisher for a watch- or broker-sourced record (by record.client); nullptr if none.
using PublisherLookup = std::function<publish::Publisher*(const queue::Record& record)>;

// The engine is also the publishers' publish::SealNamer: a seal is named by its profile's format.
class Engine : public publish::SealNamer {
 public:
  // `queue` and `signer` must outlive the engine. Each profile's format is made here, once, with
  // formats::CreateFormat from its key's certificate chain, digest and scheme; kInvalidArgument
  // names the profile whose key, scheme or format does not fit (with the format's reason).
  static Result<std::unique_ptr<Engine>> Create(EngineOptions options, queue::Queue* queue,
                                                hsm::Signer* signer, std::vector<Profile> profiles,
                                                PublisherLookup publishers,
                                                Clock& clock = Clock::Real());
  ~Engine() override;  // Stop()s.
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void SetFinishedListener(FinishedListener listener);  // before Start
  Status Start();
  // Stops leasing, waits up to drain_timeout for in-flight documents, joins the threads.
  // kDeadlineExceeded when documents were still in flight (they stay leased). Idempotent.
  Status Stop();
  EngineStats Stats() const;

  // publish::SealNamer, from the profiles' formats (formats::Format::OutputName).
  Result<std::string> SealName(const queue::Record& record,
                               std::string_view document_name) const override;
  std::vector<std::string> SealNames(std::string_view document_name) const override;

 private:
  class Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qseal::engine
