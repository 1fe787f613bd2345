// JetStreamPublisher: the result sink of broker documents (ingest/jetstream_source.h). For each
// sealed or finally failed document it publishes one result message to NATS JetStream and returns
// OK only once the stream acknowledged it (a JetStream publish ack: the result is stored, with the
// stream's replication), so the engine marks the document final in the queue only after its
// result is durable at the broker (publish/publisher.h: publisher first, then the queue commit).
//
// One result per source message, whatever happens. A result goes to the subject
//   <subject_prefix>.<Sha256Hex(record.idempotency_key)>
// (one subject per source message: the source sets the key from the message's identity) and is
// published with
//   Nats-Msg-Id: qseal-<the same hex>            the broker drops a repeat within its window, and
//   Nats-Expected-Last-Subject-Sequence: 0       the broker refuses a second result on the subject
//                                                at any time,
// so a document sealed again after a crash (between the publish ack and the queue commit), or
// sealed by a second node after a redelivery, never yields a second result message: that publish
// is refused, and Publish returns OK (the first result stands; its seal is as valid as the new
// one).
//
// A result message: body = the seal bytes (sealed) or empty (failed); headers
//   Qseal-Status: sealed | failed      Qseal-Document-Id: the local id (ULID)
//   Qseal-Idempotency-Key, Qseal-Source (stream/sequence of the source message), Qseal-Profile,
//   Qseal-Filename, Qseal-Sha256 (of the document), Content-Type (application/pkcs7-signature for
//   .p7s, application/pkcs7-mime for .p7m), and for failures Qseal-Error-Code (a StatusCodeName)
//   and Qseal-Error-Message.
//
// Thread-safety: JetStreamPublisher is thread-safe (the engine publishes from several threads).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/mutex.h"
#include "common/status.h"
#include "publish/nats_connection.h"
#include "publish/publisher.h"
#include "queue/queue.h"

namespace qseal::publish {

struct JetStreamPublisherOptions {
  // Results go to "<subject_prefix>.<hex>". Required (e.g. "qseal.results").
  std::string subject_prefix;
  // The stream that stores "<subject_prefix>.>". Default: "QSEAL_RESULTS".
  std::string stream = "QSEAL_RESULTS";
  // Create the stream (file storage, limits retention) when it does not exist. Off: it must exist.
  // Default: true.
  bool create_stream = true;
  // The de-duplication window of a stream this publisher creates. Default: 2 min.
  std::chrono::seconds duplicate_window{120};
  // How long one publish waits for its ack before it fails with kUnavailable. Default: 5 s.
  std::chrono::milliseconds publish_timeout{5000};
};

// A snapshot of the publisher's counters. Thread-compatible value type.
struct JetStreamPublisherStats {
  std::uint64_t published = 0;   // results acked as new
  std::uint64_t duplicates = 0;  // refused or dropped as repeats (the first result stands)
  std::uint64_t errors = 0;      // publishes that failed (retried by the engine)
};

class JetStreamPublisher : public Publisher {
 public:
  // `connection` must outlive the publisher. Does no I/O (the stream is checked on first use).
  JetStreamPublisher(JetStreamPublisherOptions options, NatsConnection* connection);

  // Publisher. kInvalidArgument for a record without idempotency key; kUnavailable when the
  // broker did not ack in time, is unreachable or the stream is missing (the engine retries).
  Status Publish(const queue::Record& record, ByteSpan seal) override;
  Status PublishFailure(const queue::Record& record, const Status& error) override;
  // Publish for several results at once: all are sent, then acks are awaited together (one
  // publish_timeout for the batch). Each item has Publish's contract.
  std::vector<Status> PublishBatch(std::span<const PublishItem> items) override;

  // The subject of the result of the source message with `idempotency_key`.
  std::string ResultSubject(std::string_view idempotency_key) const;
  JetStreamPublisherStats Stats() const;

 private:
  struct BatchAcks;
  Status EnsureStream();
  // The result message of `record` and its Nats-Msg-Id.
  Result<NatsMsgPtr> BuildResult(const queue::Record& record, ByteSpan body,
                                 std::string_view content_type, const Status* error,
                                 std::string* msg_id) const;
  void InitPubOptions(jsPubOptions* po, const std::string& msg_id) const;
  // Counts and translates one publish's outcome (a refused repeat is OK).
  Status Outcome(natsStatus s, jsErrCode jerr, bool duplicate, const std::string& msg_id);
  Status PublishResult(const queue::Record& record, ByteSpan body, std::string_view content_type,
                       const Status* error);

  const JetStreamPublisherOptions options_;
  NatsConnection* const connection_;
  Mutex stream_mu_;
  bool stream_ready_ QSEAL_GUARDED_BY(stream_mu_) = false;
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> duplicates_{0};
  std::atomic<std::uint64_t> errors_{0};
};

}  // namespace qseal::publish
