// Helpers shared by the queue tests. Test-only; thread-compatible.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/bytes.h"
#include "queue/queue.h"

namespace qseal::queue::testing {

inline NewDocument Doc(std::string name = "doc.pdf", std::string key = "") {
  NewDocument d;
  d.profile = "invoices";
  d.client = "acme";
  d.name = std::move(name);
  d.media_type = "application/pdf";
  d.idempotency_key = std::move(key);
  return d;
}

inline Bytes ReadAll(PayloadReader& reader) {
  Bytes out;
  std::uint8_t buf[4096];
  for (;;) {
    auto n = reader.Read(buf);
    EXPECT_TRUE(n.ok()) << n.status();
    if (!n.ok() || *n == 0) return out;
    out.insert(out.end(), buf, buf + *n);
  }
}

inline std::unique_ptr<Queue> MustOpen(const QueueOptions& options, Clock& clock) {
  auto q = Queue::Open(options, clock);
  EXPECT_TRUE(q.ok()) << q.status();
  return q.ok() ? std::move(q).value() : nullptr;
}

inline EnqueueResult MustEnqueue(Queue& q, const NewDocument& doc, std::string_view content) {
  auto r = q.Enqueue(doc, AsBytes(content));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : EnqueueResult{};
}

}  // namespace qseal::queue::testing
