// The engine's two calls into a seal format (formats/format.h) around the HSM, on queue records:
// the document as a formats::Content reading the queue's payload, and Assemble into a buffer.
// Free functions; thread-safe as far as the queue and the format are (both are).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"
#include "formats/format.h"
#include "queue/queue.h"

namespace qseal::engine::detail {

// `record`'s document: its size, name and media type, and an open() that reopens the queue's
// payload (queue->OpenPayload; its errors as they are, kUnavailable meaning retry). `queue` must
// outlive the Content.
formats::Content PayloadContent(const queue::Queue* queue, const queue::Record& record,
                                std::size_t read_chunk_bytes);

// For a digest-only record (record.digest_algorithm set): reads the submitted digest from the
// queue's payload into content->precomputed_digest. kInvalidArgument (permanent) when the record's
// algorithm is unknown or differs from `profile_digest`, or the payload is not exactly one digest
// of it; the payload reader's errors as they are (kUnavailable: retry). A no-op for other records.
Status LoadPrecomputedDigest(const queue::Queue* queue, const queue::Record& record,
                             DigestAlgorithm profile_digest, formats::Content* content);

// Where a large seal goes: a spool file of `queue` for document `id` when the format expects the
// seal to be at least `min_bytes` (Format::OutputSizeHint).
struct SealSpool {
  queue::Queue* queue = nullptr;
  queue::DocumentId id;
  std::uint64_t min_bytes = 1 << 20;
};

// format.Assemble written into *seal (reserved with OutputSizeHint), or for a large seal into a
// finished queue spool file *seal_file (then *seal stays empty). On an error both are empty: a
// partial output is never published.
Status AssembleSeal(const formats::Format& format, const formats::ToBeSigned& tbs,
                    ByteSpan signature, const formats::Content& content, const SealSpool& spool,
                    Bytes* seal, std::unique_ptr<queue::PendingSeal>* seal_file);

}  // namespace qseal::engine::detail
