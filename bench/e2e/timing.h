// Wall-clock time as the harness compares it with qseald's own timestamps (sealed_at, created_at,
// seal mtimes), and the latency percentiles of the report.
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

namespace qseal::bench::e2e {

// The system clock in ms since the epoch (the clock qseald's timestamps are on).
double NowMs();

// "2026-11-25T21:50:00.123Z" -> ms since the epoch; -1 when malformed.
double ParseUtcMs(const std::string& s);

// The nearest-rank `p` percentile (0 < p <= 1) of `v`; -1 when `v` is empty.
double Percentile(std::vector<double> v, double p);

}  // namespace qseal::bench::e2e
