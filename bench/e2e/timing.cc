#include "bench/e2e/timing.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include <time.h>

namespace qseal::bench::e2e {

double NowMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// timegm, not mktime: qseald writes its timestamps in UTC, whatever this machine's zone.
double ParseUtcMs(const std::string& s) {
  struct tm t {};
  int ms = 0;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &t.tm_year, &t.tm_mon, &t.tm_mday, &t.tm_hour,
                  &t.tm_min, &t.tm_sec, &ms) < 6) {
    return -1;
  }
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  return static_cast<double>(timegm(&t)) * 1000.0 + ms;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  auto idx = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, idx == 0 ? 0 : idx - 1)];
}

}  // namespace qseal::bench::e2e
