#include "cli/audit_commands.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "audit/verifier.h"
#include "common/exit_codes.h"

namespace qseal::cli {
namespace {

std::string Or(const std::string& value, const std::string& fallback) {
  return value.empty() ? fallback : value;
}

}  // namespace

int RunAuditVerify(const AuditVerifyOptions& options, const std::string& var_dir, std::ostream& out,
                   std::ostream& err) {
  audit::VerifyOptions v;
  v.dir = Or(options.dir, var_dir + "/audit");
  v.public_key_file = Or(options.key, var_dir + "/pki/audit-checkpoint.pem.pub.pem");
  if (options.key.empty()) {
    // The file beside the trail proves little: whoever can rewrite the trail can replace it.
    err << "qsealctl: no --key given: trusting " << v.public_key_file
        << ", the key beside the trail; give the operator's copy with --key\n";
  }
  v.from_segment = options.from;
  if (!options.expect_head.empty()) {
    std::string seq = options.expect_head.substr(0, options.expect_head.find(':'));
    try {
      std::size_t used = 0;
      v.expect_seq = std::stoull(seq, &used);
      if (used != seq.size()) throw std::invalid_argument(seq);
    } catch (const std::exception&) {
      err << "qsealctl: --expect-head must be SEQ or SEQ:HASH\n";
      return kExitUsage;
    }
    if (seq.size() < options.expect_head.size())
      v.expect_hash = options.expect_head.substr(seq.size() + 1);
  }
  Result<audit::VerifyReport> r = audit::VerifyLog(v);
  if (!r.ok()) {
    err << "qsealctl: " << r.status().message() << "\n";
    return r.status().code() == StatusCode::kInvalidArgument ? kExitDataErr : kExitIoErr;
  }
  if (!r->ok) {
    out << "audit log NOT valid";
    if (r->first_bad_seq != 0) out << " at seq " << r->first_bad_seq;
    if (!r->segment.empty()) out << " (" << r->segment << ")";
    out << ": " << r->reason << "\n";
    return kExitDataErr;
  }
  out << "audit log verified: " << r->segments << " segment(s), seq " << r->first_seq << ".."
      << r->last_seq << ", " << r->records << " records, " << r->checkpoints << " checkpoint(s)";
  if (r->last_checkpoint_seq != 0) out << " (last at seq " << r->last_checkpoint_seq << ")";
  out << ", " << r->unprotected << " record(s) after the last checkpoint, " << r->abandoned
      << " abandoned\n";
  out << "head " << r->last_seq << ":" << r->head_hash << "\n";
  return kExitOk;
}

int RunAuditShow(const AuditShowOptions& options, const std::string& var_dir, std::ostream& out,
                 std::ostream& err) {
  std::string dir = Or(options.dir, var_dir + "/audit");
  Status s = audit::ReadRecords(dir, options.from, [&](std::string_view line) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) return true;  // verify reports damaged lines; show skips them
    auto field = [&](const char* name) {
      auto it = j.find(name);
      return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (!options.id.empty() && field("id") != options.id) return true;
    std::string time = field("time");
    if (!options.since.empty() && time < options.since) return true;
    if (!options.until.empty() && time.substr(0, options.until.size()) > options.until) return true;
    if (!options.events.empty() && std::find(options.events.begin(), options.events.end(),
                                             field("event")) == options.events.end()) {
      return true;
    }
    out << line << "\n";
    return bool(out);
  });
  if (!s.ok()) {
    err << "qsealctl: " << s.message() << "\n";
    return kExitDataErr;
  }
  return kExitOk;
}

}  // namespace qseal::cli
