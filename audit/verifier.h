// Verifying and reading an audit log written by AuditLog (audit/audit_log.h, docs/audit.md).
//
// VerifyLog walks the segments in sequence order and checks, per record: the line is complete and
// parses, its hash is SHA-256 of its own bytes (an edited field shows here), its `prev` is the
// hash of the record before it (a re-hashed or spliced chain shows here), its seq is the next one
// (a deleted record is a gap, two swapped records are reordered); per segment: the header names
// the last durable record of the previous segment (a segment cut short or replaced by an older
// copy shows at the next segment's header); per checkpoint: the signature verifies with the
// trusted public key and signs the chain head (a forged checkpoint, or a chain rewritten and
// re-hashed after an edit, shows at the first checkpoint after it).
//
// What it cannot see by itself (docs/audit.md, "Limits"): the last segment cut at a record
// boundary, or the whole directory replaced by an older copy, both look like a log that simply
// ends earlier. Pass the head an earlier verification printed (expect_seq / expect_hash, e.g.
// kept by a SIEM) to detect them; records after the last checkpoint are reported as
// `unprotected` because nothing signed them yet.
//
// Thread-compatible: plain functions over files.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace qseal::audit {

struct VerifyOptions {
  std::string dir;
  // Start at the segment whose first seq is this (its header's prev is trusted as the anchor);
  // 0: from the first segment present. Default: 0.
  std::uint64_t from_segment = 0;
  // PEM file holding the trusted checkpoint public key (or the private key). Required unless
  // skip_signatures.
  std::string public_key_file;
  bool skip_signatures = false;  // Default: false.
  // The log must reach at least this seq (0: no expectation) ... Default: 0.
  std::uint64_t expect_seq = 0;
  // ... and, when set, the record at expect_seq must have this hash (hex). Default: empty.
  std::string expect_hash;
};

struct VerifyReport {
  bool ok = false;
  std::uint64_t first_bad_seq = 0;  // where the problem is (0 when ok)
  std::string segment;              // file name of the segment holding it
  std::string reason;               // what is wrong
  std::uint64_t records = 0;        // records verified (abandoned ones not counted)
  std::uint64_t segments = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::string head_hash;                  // hash of last_seq
  std::uint64_t last_checkpoint_seq = 0;  // 0: none
  std::uint64_t checkpoints = 0;
  std::uint64_t unprotected = 0;  // records after the last checkpoint
  std::uint64_t abandoned = 0;    // records of failed writes, superseded by a later segment
};

// Verifies the log; the report says where the first problem is. Errors (not verification
// findings): kInvalidArgument for a missing directory or unreadable key file.
Result<VerifyReport> VerifyLog(const VerifyOptions& options);

// Calls `line` for every record line, in file order, segment by segment (from_segment as in
// VerifyOptions; 0 = all), leaving out damaged lines and abandoned records (those after the
// record the next segment's header names). Nothing else is verified. Returning false stops.
Status ReadRecords(const std::string& dir, std::uint64_t from_segment,
                   const std::function<bool(std::string_view line)>& line);

// Segment files in dir sorted by their first seq: {first_seq, file name}.
Result<std::vector<std::pair<std::uint64_t, std::string>>> ListSegments(const std::string& dir);

}  // namespace qseal::audit
