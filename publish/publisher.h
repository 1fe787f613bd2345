// Publisher: where a sealed (or finally failed) document goes besides the queue. The engine knows
// publish/ only through this interface; the daemon chooses the implementation per document source
// (publish/folder_outbox.h for watched folders; broker result subjects later).
//
// The engine calls the publisher registered for a document's source before it marks the record
// sealed or failed in the queue, so an output exists before the queue forgets the document. After a
// crash between the two, the engine seals the document again and calls Publish again: a publisher
// must therefore be idempotent per document id (a second call for a document already published
// returns OK and publishes nothing new). API documents need no publisher: their seal lives in the
// queue and is fetched over HTTP.
//
// Implementations must be thread-safe: the engine calls them from several threads at once.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "queue/queue.h"

namespace qseal::publish {

// Names seals: the file name of a record's seal, for its document published as `document_name`,
// is formats::Format::OutputName of the format that made (or makes) it (e.g. "invoice.xml.p7s").
// The engine implements it from its profiles' formats; a publisher asks it instead of knowing any
// format. Implementations must be thread-safe.
class SealNamer {
 public:
  virtual ~SealNamer() = default;
  // The seal's file name (never empty, never a path): by the format of record.profile, or for a
  // record already sealed under another format (record.seal_media_type is not that format's), by
  // a configured format with that media type. kInvalidArgument for a profile without a format.
  virtual Result<std::string> SealName(const queue::Record& record,
                                       std::string_view document_name) const = 0;
  // Every name a seal of any configured profile would get for `document_name`, without repeats
  // (the names a free name for a new document must not collide with).
  virtual std::vector<std::string> SealNames(std::string_view document_name) const = 0;
};

// One seal of a PublishBatch call.
struct PublishItem {
  const queue::Record* record = nullptr;
  ByteSpan seal;  // the seal, unless seal_file holds it
  // A large seal, in a finished queue spool file (PendingSeal::Open reads it); else null.
  const queue::PendingSeal* seal_file = nullptr;
};

// Hands `item`'s seal to `write` piece by piece, reading a spooled seal in bounded memory. Errors:
// the spool file's (kDataLoss when it is short) and `write`'s, as returned.
Status StreamSeal(const PublishItem& item, const std::function<Status(ByteSpan piece)>& write);
// `item`'s seal whole in memory (for sinks that send it in one message).
Result<Bytes> SealBytes(const PublishItem& item);

class Publisher {
 public:
  virtual ~Publisher() = default;

  // Makes `seal` durable for `record` (e.g. outbox/<seal name> written with temp + fsync +
  // rename, the original moved beside it), the seal named by the record's profile (SealNamer).
  // kUnavailable on I/O errors (the engine retries later).
  virtual Status Publish(const queue::Record& record, ByteSpan seal) = 0;

  // Publish for several documents at once, so a publisher can share the syncs between them (the
  // engine hands over everything assembled since the last call). Returns one Status per item, in
  // order; each item on its own has Publish's contract (an OK item is durable, a failed one
  // published nothing it would not publish again). Default: Publish per item.
  virtual std::vector<Status> PublishBatch(std::span<const PublishItem> items) {
    std::vector<Status> out;
    out.reserve(items.size());
    for (const PublishItem& i : items) {
      if (i.seal_file == nullptr) {
        out.push_back(Publish(*i.record, i.seal));
        continue;
      }
      Result<Bytes> seal = SealBytes(i);
      out.push_back(seal.ok() ? Publish(*i.record, *seal) : seal.status());
    }
    return out;
  }

  // Records a final failure for `record` (e.g. the original to failed/ with an .error.json).
  virtual Status PublishFailure(const queue::Record& record, const Status& error) = 0;
};

}  // namespace qseal::publish
