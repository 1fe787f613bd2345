// What the JetStream end-to-end tests share: a node's [[jetstream]] section, the documents they
// publish, and the checker that reads every result message back (docs/scale-out.md, "What is
// tested").
//
// Test-only; thread-compatible.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "publish/nats_connection.h"
#include "tests/testing/qseald_harness.h"

namespace qseal::testing::jetstream {

inline constexpr char kStream[] = "DOCS";            // the work-queue stream, on qseal.docs.>
inline constexpr char kResults[] = "QSEAL_RESULTS";  // the result stream, on qseal.results.>

// Options of a qseald node consuming kStream through the shared consumer "sealers", with a short
// ack_wait so that messages a killed node fetched but never enqueued come back quickly.
QsealdOptions NodeOptions(const std::string& url);

struct Published {
  std::string key;      // the idempotency key the node derives
  std::string content;  // the exact bytes
  bool enveloping = false;
};

// Document i's bytes (about 1.5 to 2.7 KB of XML-like text).
std::string Content(int i);

// Publishes documents [from, to) to qseal.docs.in (retrying while the broker is away) and appends
// them to `out`: even ones (or all, with always_msg_id) with a Nats-Msg-Id, which is then their
// key, the others without (key: stream/sequence); every fifth asks for the enveloping profile.
// Use always_msg_id when the broker may restart meanwhile: a retried publish is then dropped as a
// duplicate instead of becoming a second document.
void PublishDocs(publish::NatsConnection& nc, int from, int to, std::vector<Published>* out,
                 bool always_msg_id = false);

// Messages in the result stream now.
std::size_t ResultCount(publish::NatsConnection& nc);

// The checker (gtest expectations): exactly one result message per published document and no
// other, each `sealed` with a seal that openssl cms -verify accepts against one of `cas` and the
// exact bytes published; the work stream empty. Returns how many seals verified against each CA.
// `work` is a scratch directory.
std::vector<std::size_t> CheckResults(publish::NatsConnection& nc,
                                      const std::vector<Published>& published,
                                      const std::vector<std::string>& cas, const std::string& work);

}  // namespace qseal::testing::jetstream
