// `qsealctl audit verify` and `qsealctl audit show`: offline readers of qseald's audit trail
// (docs/audit.md). They read the segment files directly and need no server.
//
// verify prints, when the log is intact,
//   "audit log verified: <details>" and "head <seq>:<hash>"
// (keep the head line: passed back as --expect-head it detects a later truncation or an older
// copy), exit 0; otherwise "audit log NOT valid at seq <N> (<segment>): <reason>", exit 65.
// show prints the records as JSON lines (they are stored that way), filtered.
//
// Blocking; each call is independent.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace qseal::cli {

struct AuditVerifyOptions {
  std::string dir;         // default: <var>/audit
  std::string key;         // checkpoint public key; default: <var>/pki/audit-checkpoint.pem.pub.pem
  std::uint64_t from = 0;  // first seq of the segment to start at; 0: the oldest present
  std::string expect_head;  // "SEQ" or "SEQ:HASH" printed by an earlier verify
};
int RunAuditVerify(const AuditVerifyOptions& options, const std::string& var_dir, std::ostream& out,
                   std::ostream& err);

struct AuditShowOptions {
  std::string dir;                  // default: <var>/audit
  std::uint64_t from = 0;           // as for verify
  std::string id;                   // only records of this document id
  std::string since;                // RFC 3339 UTC prefix, e.g. "2026-11-26T00:00"; inclusive
  std::string until;                // inclusive, compared on the same prefix length
  std::vector<std::string> events;  // only these events (sign_intent, sealed, ...)
};
int RunAuditShow(const AuditShowOptions& options, const std::string& var_dir, std::ostream& out,
                 std::ostream& err);

}  // namespace qseal::cli
