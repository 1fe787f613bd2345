// AuditLog: the append-only, hash-chained, checkpoint-signed trail of every signature qseald makes
// (DESIGN.md §1, docs/audit.md).
//
// Records are JSON lines in segment files `<dir>/audit-<first seq, 20 digits>.log`. Each line is
//   {"seq":N,"time":"…","event":"…",<fields>,"prev":"<hash of record N-1>","hash":"<hex>"}
// where hash = SHA-256 of the line up to (not including) `,"hash":` followed by `}`; so every
// record commits to the one before it, across segments. A segment starts with a `segment_start`
// record naming the last durable record before it (prev_seq, prev). Every checkpoint_records
// records or checkpoint_interval, a `checkpoint` record signs the chain head with the checkpoint
// key (ECDSA P-256, a local PEM key file), so a chain rewritten after an edit, a truncation up to
// the last checkpoint and a forged checkpoint are detectable (audit/verifier.h).
//
// Durability: Append and AppendAsync report success only after the records are written and
// fdatasync'd. Concurrent appends are group-committed: everything pending when the writer thread
// wakes goes out in one write and one fdatasync, so the cost per record falls with load.
//
// Fail closed: a write or sync error makes the log unhealthy (Health() says why); every pending
// and later append fails with kUnavailable until the writer has opened a fresh segment (retried
// every retry_interval) — never a retried fsync on the broken file. Records of the failed group
// that reached the old segment are ignored by the verifier ("abandoned": the new segment's header
// names the last durable record).
//
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/status.h"

namespace qseal::audit {

enum class Event {
  kStartup,
  kShutdown,
  kConfigLoaded,
  kSignIntent,        // durable before the digest goes to C_Sign
  kSealed,            // with the queue commit of the seal
  kFailed,            // with the queue commit of a failure (retry or final)
  kRejected,          // a request refused before it was accepted (bad input, policy)
  kAuthDenied,        // a request with no or a wrong token, or a profile not granted
  kPartitionUp,       // an HSM partition passed its self-test
  kPartitionDown,     // an HSM partition was taken out
  kSegmentStart,      // written by the log itself
  kCheckpoint,        // written by the log itself
  kCheckpointKeyNew,  // written by the log itself: a new checkpoint key after segments existed
};
std::string_view EventName(Event e);  // "sign_intent", ...

// One record's content; empty fields are left out of the line.
struct Entry {
  Event event = Event::kStartup;
  std::string id;                // document id
  std::string profile;           // profile name
  std::string client;            // API client name, or the watch root
  std::string key;               // seal key name
  std::string document_sha256;   // hex, of the document bytes
  std::string signature_sha256;  // hex, of the signature value (the HSM's output)
  std::string detail;            // reason, error, partition, config path
  std::string source;            // a refusal's peer IP address ("" when none)
};

// An entry with only an event and a detail (daemon-level events).
inline Entry EventEntry(Event event, std::string detail = {}) {
  Entry e;
  e.event = event;
  e.detail = std::move(detail);
  return e;
}

struct AuditOptions {
  // Directory of the segments; created if missing. Required.
  std::string dir;
  // A new segment starts once the current one holds this many bytes. Default: 64 MiB.
  std::uint64_t segment_bytes = 64ull << 20;
  // ... or is this old. Default: 24 h.
  std::chrono::milliseconds segment_age{24LL * 3600 * 1000};
  // A checkpoint after this many records ... Default: 10000.
  std::uint64_t checkpoint_records = 10'000;
  // ... or this long after the first record not yet covered. Default: 60 s.
  std::chrono::milliseconds checkpoint_interval{60'000};
  // PEM file of the ECDSA P-256 checkpoint key (private). Required unless checkpoint_signer is
  // set.
  std::string checkpoint_key_file;
  // The checkpoint key in an HSM instead (config `checkpoint_key = "key:NAME"`): its public key
  // (SubjectPublicKeyInfo DER, ECDSA P-256) and a function signing a SHA-256 digest with it
  // (DER ECDSA-Sig-Value; it may block, on the writer thread, for as long as the HSM takes).
  // checkpoint_key_file and create_key_if_missing are then unused. A checkpoint whose signing
  // fails (HSM down) is left out: the records are written and synced all the same, and the
  // checkpoint is tried again retry_interval later, covering them. Default: unset.
  Bytes checkpoint_public_key_der;
  std::function<Result<Bytes>(ByteSpan sha256)> checkpoint_signer;
  // Create the key (mode 0600, and `<file>.pub.pem` beside it) when the file does not exist and
  // dir holds no segment yet (a fresh trail). Default: false.
  bool create_key_if_missing = false;
  // The operator's explicit request (qseald --new-audit-key) to start a new key when the key file
  // is missing although segments exist, or when the key is not the one whose key_id the newest
  // segment's header names (a replaced key file, another HSM key). The old `<file>.pub.pem`, if
  // present, is kept as
  // `<file>.<first 16 hex of its key_id>.pub.pem` (for verifying the segments before), and a
  // `checkpoint_key_new` record naming the old and the new key_id follows the new segment's
  // header. No effect when the key file exists. Default: false.
  bool new_key = false;
  // Zeros written ahead of the records, this many bytes at a time, so that a sync rarely changes
  // the file's size (cheaper, and no file-system journal commit). A full disk shows up when the
  // next stretch is written. 0: plain appends. Default: 1 MiB.
  std::uint64_t preallocate_bytes = 1 << 20;
  // How often an unhealthy log tries to open a fresh segment. Default: 1 s.
  std::chrono::milliseconds retry_interval{1'000};
};

struct AuditStats {
  std::uint64_t records = 0;              // written and synced since Open
  std::uint64_t syncs = 0;                // fdatasync calls (group commits)
  std::uint64_t checkpoints = 0;          // since Open
  std::uint64_t checkpoints_skipped = 0;  // not signed (HSM key unavailable), tried again later
  std::uint64_t failures = 0;             // appends refused or failed
  std::uint64_t last_seq = 0;             // the last durable record
  bool healthy = true;
};

// Called once, on the writer thread, when the records are durable (OK) or will never be
// (kUnavailable). Must not block for long and must not call Close.
using AppendCallback = std::function<void(Status)>;

class AuditLog {
 public:
  // Opens (or starts) the log in options.dir: reads the last segment to find the chain head and
  // starts a new segment after it. A checkpoint key is never regenerated or replaced silently: a
  // missing key file with segments present, or a key that is not the one the newest segment
  // names, is kInvalidArgument unless options.new_key. kInvalidArgument for
  // bad options or an unusable key file (group/other permissions included), kUnavailable when the
  // directory cannot be written, kDataLoss when the last segment does not parse (run `qsealctl
  // audit verify`).
  static Result<std::unique_ptr<AuditLog>> Open(AuditOptions options, Clock& clock = Clock::Real());
  ~AuditLog();  // Close()s.
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Queues entries for the next group commit; never blocks on I/O. `done` may be empty.
  void AppendAsync(std::vector<Entry> entries, AppendCallback done);
  // Appends and waits until durable. kUnavailable when the log is unhealthy or the write failed;
  // kCancelled after Close.
  Status Append(std::vector<Entry> entries);

  // OK while records can be written; kUnavailable with the reason otherwise.
  Status Health() const;
  AuditStats Stats() const;

  // Writes a final checkpoint (when records are not yet covered), syncs and stops the writer.
  // Pending appends are written first. Idempotent.
  Status Close();

 private:
  class Impl;
  explicit AuditLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qseal::audit
