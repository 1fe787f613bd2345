// The qsealctl commands, separated from argument parsing so tests can drive them directly.
//
// Each Run* function returns the process exit code (common/exit_codes.h, DESIGN.md §5):
//   0 ok, 64 usage, 65 bad input (a 4xx answer, a failed document, a seal that does not verify),
//   69 server (or its HSM) unavailable, 74 local I/O error.
// Results go to `out`; diagnostics to `err`. submit prints one line per document as it finishes
// (in completion order): "<name>\t<id>\t<status>" where status is queued, sealed,
// "failed (CODE: message)" or "error: <reason>" (id "-" when none was assigned), followed by
// "\t<seal path>" with --out. status prints the server's JSON, fetch without -o the seal bytes,
// verify one line per check ("ok    <name>: <detail>" / "FAIL  <name>: <detail>") and a last
// line "seal verified" or "seal NOT valid".
//
// Blocking; each call is independent (submit runs its own worker threads and joins them).
#pragma once

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include "cli/config.h"

namespace qseal::cli {

struct SubmitOptions {
  std::vector<std::string> paths;  // files, or directories (recursed; regular files only)
  std::string profile = "default";
  bool wait = false;      // wait until each document is sealed or failed
  std::string out_dir;    // when set (implies wait): write each seal to DIR/<seal name>
                          // (the server's, e.g. <name>.p7s)
  int concurrency = 4;    // uploads in flight
  bool progress = false;  // a progress line on stderr (main sets it when stderr is a terminal)
  std::chrono::seconds wait_timeout{600};  // per document, with wait
  int max_busy_retries = 30;               // 503/429 answers honoured (Retry-After) per document
  std::chrono::seconds max_retry_after{30};
  // Digest-only sealing: hash each file here (streamed, bounded memory) with the profile's digest
  // algorithm (from GET /v1/profiles) and send only the digest (POST /v1/digests); implies wait,
  // and out_dir "." when none is given. The seal is a detached .p7s of the local file.
  bool digest_only = false;
};
int RunSubmit(const Endpoint& endpoint, const SubmitOptions& options, std::ostream& out,
              std::ostream& err);

int RunStatus(const Endpoint& endpoint, const std::string& id, std::ostream& out,
              std::ostream& err);

// Writes the seal to `out_file`, or to `out` when out_file is empty.
int RunFetch(const Endpoint& endpoint, const std::string& id, const std::string& out_file,
             std::ostream& out, std::ostream& err);

int RunHealth(const Endpoint& endpoint, std::ostream& out, std::ostream& err);

struct VerifyCommandOptions {
  std::string seal;     // a .p7s or .p7m, DER or PEM
  std::string content;  // the document of a detached seal; default: SEAL without ".p7s" if present
  std::string ca;       // trust anchors (PEM); default: <var>/pki/ca.pem
};
// Offline: needs no server.
int RunVerify(const VerifyCommandOptions& options, const std::string& var_dir, std::ostream& out,
              std::ostream& err);

}  // namespace qseal::cli
