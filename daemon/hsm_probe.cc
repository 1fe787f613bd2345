#include "daemon/hsm_probe.h"

#include <chrono>
#include <ctime>
#include <map>
#include <string>

#include "common/exit_codes.h"

namespace qseal::daemon {
namespace {

std::string YesNo(bool b) { return b ? "yes" : "no"; }

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : sep) + s;
  return out.empty() ? "(none)" : out;
}

std::string Utc(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

SignerInputs SignerInputsFor(const Config& config) {
  SignerInputs in;
  hsm::SignerOptions& o = in.options;
  o.max_batch = config.hsm.max_batch;
  o.max_linger = std::chrono::duration_cast<std::chrono::milliseconds>(config.hsm.max_linger);
  // Every document in flight holds at most one sign request: never refuse one of them.
  o.max_pending =
      std::max<std::size_t>(config.hsm.max_pending, config.engine.max_documents_in_flight);
  o.sign_timeout = config.hsm.sign_timeout;
  o.reinit_interval = config.hsm.reinit_interval;
  o.hung_call_timeout = config.hsm.hung_call_timeout;
  o.max_attempts = static_cast<int>(config.hsm.max_attempts);
  for (const auto& p : config.partitions) {
    hsm::PartitionOptions po;
    po.name = p.name;
    po.module_path = p.module;
    po.token_label = p.token;
    po.token_serial = p.serial;
    po.pin_source = p.pin_source;
    po.sessions = static_cast<int>(p.sessions);
    po.keepalive_interval = p.keepalive_interval;
    po.device_error_retries = static_cast<int>(p.device_error_retries);
    in.partitions.push_back(std::move(po));
  }
  for (const auto& k : config.keys) {
    hsm::KeyOptions ko;
    ko.name = k.name;
    ko.uri = k.uri;
    ko.certificate_chain_file = k.certificate_chain;
    ko.partitions = k.partitions;
    ko.allow_rsa_below_3072 = k.allow_rsa_below_3072;
    in.keys.push_back(std::move(ko));
  }
  return in;
}

int ProbeHsm(const Config& config, std::ostream& out, std::ostream& err) {
  SignerInputs in = SignerInputsFor(config);
  // One session per partition is all the probe needs.
  for (hsm::PartitionOptions& p : in.partitions) p.sessions = 1;
  const std::vector<hsm::KeyOptions> keys = in.keys;
  auto signer = hsm::Signer::Create(in.options, std::move(in.partitions), std::move(in.keys));
  if (!signer.ok()) {
    err << "qseald: HSM probe failed: " << signer.status().message() << "\n";
    return signer.status().code() == StatusCode::kUnavailable ? kExitUnavailable : kExitConfig;
  }
  int exit_code = kExitOk;
  std::map<std::string, std::vector<std::string>> copies;  // key -> partitions
  for (const hsm::PartitionReport& r : (*signer)->StartupReport()) {
    out << "partition " << r.name << ": " << hsm::PartitionStateName(r.state) << "\n";
    out << "  module " << r.module_path << ": " << r.library_manufacturer << ", "
        << r.library_description << ", library " << r.library_version << ", Cryptoki "
        << r.cryptoki_version << "\n";
    if (!r.token_label.empty()) {
      out << "  token '" << r.token_label << "': manufacturer " << r.token_manufacturer
          << ", model " << r.token_model << ", serial " << r.token_serial << ", hardware "
          << r.hardware_version << ", firmware " << r.firmware_version << "\n";
      out << "  flags: " << Join(r.token_flags, " ") << "\n";
      out << "  sign mechanisms: " << Join(r.sign_mechanisms, ", ") << "\n";
    }
    for (const hsm::KeyProtection& kp : r.keys) {
      copies[kp.key].push_back(r.name);
      out << "  key " << kp.key << ": found, test signature verified; sensitive "
          << YesNo(kp.sensitive) << ", extractable " << YesNo(kp.extractable)
          << ", never extractable " << YesNo(kp.never_extractable) << ", always sensitive "
          << YesNo(kp.always_sensitive) << "\n";
    }
    if (r.state != hsm::PartitionState::kUp) {
      err << "qseald: partition " << r.name << " is " << hsm::PartitionStateName(r.state) << ": "
          << r.error << "\n";
      const int code = r.state == hsm::PartitionState::kDown ? kExitUnavailable : kExitConfig;
      if (exit_code == kExitOk || code == kExitConfig) exit_code = code;
    }
  }
  for (const hsm::KeyOptions& k : keys) {
    auto info = (*signer)->GetKey(k.name);
    if (!info.ok()) continue;
    const std::vector<std::string>& on = copies[k.name];
    out << "key " << k.name << " (" << (info->type == hsm::KeyType::kRsa ? "RSA " : "EC ")
        << (info->type == hsm::KeyType::kRsa ? std::to_string(info->bits) : info->curve)
        << "), certificate valid until " << Utc(info->not_after) << ": on " << Join(on, ", ");
    if (on.size() > 1) out << " (" << on.size() << " copies (backup))";
    out << "\n";
    if (on.size() < k.partitions.size()) {
      err << "qseald: key " << k.name << " was checked on " << on.size() << " of its "
          << k.partitions.size() << " partitions\n";
    }
  }
  (*signer)->Shutdown();
  out << (exit_code == kExitOk ? "HSM probe OK\n" : "HSM probe FAILED\n");
  return exit_code;
}

}  // namespace qseal::daemon
