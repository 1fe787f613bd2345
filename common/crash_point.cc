#include "common/crash_point.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace qseal::detail {

std::atomic<int> crash_point_state{-1};

namespace {

struct Target {
  std::string name;
  long nth = 1;
  std::atomic<long> seen{0};
};

// Parsed once; never freed (a crash point may be passed during static destruction).
Target* ReadTarget() {
  static Target* target = [] {
    const char* env = std::getenv("QSEAL_CRASH_AT");
    if (env == nullptr || *env == '\0') return static_cast<Target*>(nullptr);
    auto* t = new Target;
    std::string spec(env);
    std::size_t colon = spec.find(':');
    t->name = spec.substr(0, colon);
    if (colon != std::string::npos)
      t->nth = std::max(1L, std::strtol(spec.c_str() + colon + 1, nullptr, 10));
    return t;
  }();
  return target;
}

}  // namespace

void CrashPointSlow(const char* name) {
  Target* t = ReadTarget();
  crash_point_state.store(t == nullptr ? 0 : 1, std::memory_order_relaxed);
  if (t == nullptr || t->name != name) return;
  if (t->seen.fetch_add(1) + 1 != t->nth) return;
  std::string line = std::string("qseal crash point ") + name + " reached\n";
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  std::abort();
}

}  // namespace qseal::detail
