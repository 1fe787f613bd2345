// Reads one object of a NATS JetStream object store, for messages that carry a reference
// (Qseal-Object: <bucket>/<name>) instead of a document too large for a message
// (ingest/jetstream_source.h). The NATS C client 3.4 (Debian 12) has no object-store API, so this
// reads the store's documented layout (NATS ADR-20) through the JetStream calls it does have:
//   stream   OBJ_<bucket>
//   info     the last message on $O.<bucket>.M.<base64url(name)>: JSON with nuid, size, chunks,
//            digest ("SHA-256=<base64url>") and deleted
//   chunks   the messages on $O.<bucket>.C.<nuid>, in order (read with an ordered consumer)
// The object's bytes are handed to `sink` chunk by chunk (bounded memory) and must match the
// info's size and SHA-256 digest. tests/ingest/jetstream_source_test.cc writes objects with the
// NATS Go client (another implementation of the layout) and reads them with this.
//
// Thread-safety: a function; `js` is thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <nats/nats.h>

#include "common/bytes.h"
#include "common/status.h"

namespace qseal::ingest::detail {

struct ObjectRef {
  std::string bucket;
  std::string name;
};

// "<bucket>/<name>" (the bucket: 1 or more of A-Z a-z 0-9 - _; the name: anything non-empty).
// kInvalidArgument otherwise.
Result<ObjectRef> ParseObjectRef(const std::string& header);

// The base64url (RFC 4648 §5, with padding) of `bytes`: the encoding of names and digests.
std::string Base64Url(ByteSpan bytes);

// Streams the object to `sink`. Errors: kInvalidArgument when the object does not exist, is
// deleted, or its bytes do not match its size or digest (the message is refused for good);
// kUnavailable when the broker does not answer or a chunk does not come within `chunk_wait`
// (tried again later); `sink`'s errors as returned.
Status ReadObject(jsCtx* js, const ObjectRef& ref, std::chrono::milliseconds chunk_wait,
                  const std::function<Status(ByteSpan chunk)>& sink);

}  // namespace qseal::ingest::detail
