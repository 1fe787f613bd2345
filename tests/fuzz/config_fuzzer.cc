// Fuzzes the config loader on arbitrary text: it must answer (a Config or kInvalidArgument with at
// least one error line), never crash, hang or leak, and a Config it accepts must be internally
// consistent (every reference resolved), since the daemon wires components from it unchecked.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "daemon/config.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "config_fuzzer: accepted a config where %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> errors;
  auto config = qseal::daemon::ParseConfig(text, "fuzz.toml", &errors);
  if (!config.ok()) {
    Check(config.status().code() == qseal::StatusCode::kInvalidArgument, "error is not invalid");
    Check(!errors.empty(), "an error came without an error line");
    return 0;
  }
  std::set<std::string> partitions, keys, profiles;
  for (const auto& p : config->partitions) partitions.insert(p.name);
  for (const auto& k : config->keys) {
    keys.insert(k.name);
    for (const auto& p : k.partitions) Check(partitions.count(p) == 1, "a key names no partition");
  }
  for (const auto& p : config->profiles) {
    profiles.insert(p.name);
    Check(keys.count(p.key) == 1, "a profile names an unknown key");
  }
  for (const auto& w : config->watches) {
    Check(profiles.count(w.profile) == 1, "a watch names an unknown profile");
  }
  return 0;
}
