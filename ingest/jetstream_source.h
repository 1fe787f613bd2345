// JetStreamSource: a door in from NATS JetStream (docs/scale-out.md). Several qseald nodes share
// one work-queue stream through one durable pull consumer: the broker hands each message to one
// node at a time, and each node keeps its own RocksDB queue as its durable buffer.
//
// One message is one document: the body is the document's bytes; headers (all optional)
//   Qseal-Profile          the sealing profile (else the source's default_profile)
//   Qseal-Filename         the original file name (else "<stream>-<sequence>")
//   Qseal-Media-Type       e.g. application/pdf
//   Qseal-Idempotency-Key  the document's identity; else Nats-Msg-Id; else "<stream>/<sequence>"
//   Qseal-Object           "<bucket>/<name>": the document is that object of the JetStream object
//                          store (for documents larger than a message); the body is then empty.
//                          Read chunk by chunk into the queue and checked against the object's
//                          size and SHA-256 digest (ingest/detail/object_store.h); a missing,
//                          deleted or corrupt object is refused for good. The file name defaults
//                          to the object's name. The object is left in the store (the producer's,
//                          or the bucket's TTL, to remove).
// The local idempotency key is that identity, scoped by the source's client name
// ("jetstream:<name>"), so a redelivered message maps to the document already queued and is never
// sealed twice by this node; results carry it so that a second node's result for the same message
// is refused by the broker (publish/jetstream_publisher.h).
//
// Acknowledgement. A message is acked only after its document is durably enqueued (the group
// commit that holds it returned OK); a redelivery of a message already enqueued is acked at once.
// Until then it stays unacked at the broker and comes back after ack_wait (to this node or
// another). A message the source refuses for good (profile not allowed, idempotency conflict,
// too large) is answered with a failure result on the result subject, then acked.
//
// Flow control. The source fetches only while the local queue admits (Queue::Admit: under its
// watermarks and free-space reserve); above them it stops fetching, so the backlog stays in the
// stream, not in this node. At most fetch_batch messages (and no more than the headroom below
// local_high_watermark) are fetched per round, max_ack_pending
// bounds what the consumer hands out unacked, and ack_wait must exceed the time to enqueue one
// batch (checked by the config: ack_wait >= 5 s).
//
// The stream and the durable consumer are created when missing (create = true). Broker outages
// are retried in the background, every retry_interval; nothing is lost meanwhile (unacked messages
// stay at the broker, enqueued documents in the queue).
//
// Thread-safety: thread-safe; Start/Stop/Stats may be called from any thread; one fetching thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "publish/jetstream_publisher.h"
#include "publish/nats_connection.h"
#include "queue/queue.h"

namespace qseal::ingest {

struct JetStreamSourceOptions {
  // Names this source in logs and metrics; the records' client is "jetstream:<name>". Required.
  std::string name;
  // The work-queue stream and the subjects it captures (used when creating it). Required.
  std::string stream;
  std::vector<std::string> subjects;
  // The durable pull consumer shared by every node. Default: "qseald".
  std::string consumer = "qseald";
  // Create the stream (work-queue retention, file storage) and the consumer when missing.
  // Default: true.
  bool create = true;
  // The profile of messages without Qseal-Profile. Required.
  std::string default_profile;
  // The profiles a message may ask for (Qseal-Profile); empty: only default_profile.
  std::vector<std::string> profiles;
  // Messages fetched per round (one group commit). Default: 64.
  int fetch_batch = 64;
  // The local queue's high watermark in documents (QueueOptions::high_watermark_count): a round
  // fetches at most the headroom below it, so the queue never holds more. 0: rely on Admit alone
  // (then a round may overshoot by up to fetch_batch). Default: 0.
  std::uint64_t local_high_watermark = 0;
  // How long one fetch waits for messages. Default: 1 s.
  std::chrono::milliseconds fetch_wait{1000};
  // Consumer settings (used when creating it): unacked messages handed out at most, and how long
  // the broker waits for an ack before redelivering. Default: 1024, 60 s.
  std::int64_t max_ack_pending = 1024;
  std::chrono::milliseconds ack_wait{60'000};
  // Pause between retries after a broker error, and between admission checks while the queue is
  // saturated. Default: 250 ms.
  std::chrono::milliseconds retry_interval{250};
};

// A snapshot of the source's counters. Thread-compatible value type.
struct JetStreamSourceStats {
  std::uint64_t fetched = 0;      // messages received
  std::uint64_t enqueued = 0;     // new documents durably enqueued (and acked)
  std::uint64_t duplicates = 0;   // messages whose document was already queued (acked)
  std::uint64_t redelivered = 0;  // messages delivered more than once by the broker
  std::uint64_t rejected = 0;     // refused for good (failure result published, acked)
  std::uint64_t naks = 0;         // handed back for a later redelivery (e.g. queue saturated)
  std::uint64_t errors = 0;       // broker or queue errors (retried)
  std::uint64_t lag = 0;          // messages in the stream not yet delivered (last fetch's view)
  std::uint64_t in_flight = 0;    // fetched, not yet acked or handed back
  bool paused = false;            // not fetching: the local queue is above its watermarks
  bool connected = false;
};

class JetStreamSource {
 public:
  // `queue`, `connection` and `results` (for refusals) must outlive the source. Does no I/O.
  JetStreamSource(JetStreamSourceOptions options, queue::Queue* queue,
                  publish::NatsConnection* connection, publish::JetStreamPublisher* results);
  ~JetStreamSource();  // Stop()s.
  JetStreamSource(const JetStreamSource&) = delete;
  JetStreamSource& operator=(const JetStreamSource&) = delete;

  // Starts the fetching thread (it sets up stream, consumer and subscription, retrying while the
  // broker is unreachable). kInvalidArgument for bad options. Non-blocking.
  Status Start();
  // Stops fetching and joins the thread (at most about fetch_wait). Messages fetched but not yet
  // enqueued are not acked: the broker redelivers them. Idempotent.
  void Stop();

  const std::string& name() const { return options_.name; }
  std::string client() const { return "jetstream:" + options_.name; }
  JetStreamSourceStats Stats() const;

 private:
  class Impl;
  JetStreamSourceOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qseal::ingest
