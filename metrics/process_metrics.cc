// Process metrics from /proc/self, the figures node exporters and client libraries expose as
// process_*, under our qseal_ prefix (DESIGN.md §5: every name starts qseal_).
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include <dirent.h>

#include "metrics/metrics.h"

namespace qseal::metrics {
namespace {

bool ReadWholeFile(const char* path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

// Seconds since the epoch at which the system booted (the `btime` line of /proc/stat).
bool BootTime(double* seconds) {
  std::string stat;
  if (!ReadWholeFile("/proc/stat", &stat)) return false;
  std::istringstream in(stat);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("btime ", 0) == 0) {
      *seconds = std::stod(line.substr(6));
      return true;
    }
  }
  return false;
}

void FillFromStat(SnapshotWriter& w) {
  std::string stat;
  if (!ReadWholeFile("/proc/self/stat", &stat)) return;
  // The command name (field 2) is in parentheses and may hold spaces: parse after the last ')'.
  const std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream in(stat.substr(close + 2));
  // Fields from 3 (state) on; we need 14 utime, 15 stime, 20 num_threads, 22 starttime,
  // 23 vsize, 24 rss (pages).
  std::vector<std::string> f;
  std::string token;
  while (in >> token) f.push_back(token);
  auto field = [&](int n) -> double { return std::stod(f[static_cast<std::size_t>(n - 3)]); };
  if (f.size() < 22) return;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  w.Counter("qseal_process_cpu_seconds_total", "User and system CPU time of the process.", {},
            (field(14) + field(15)) / ticks);
  w.Gauge("qseal_process_threads", "Threads of the process.", {}, field(20));
  w.Gauge("qseal_process_virtual_memory_bytes", "Virtual memory size.", {}, field(23));
  w.Gauge("qseal_process_resident_memory_bytes", "Resident memory size.", {}, field(24) * page);
  double boot = 0;
  if (BootTime(&boot)) {
    w.Gauge("qseal_process_start_time_seconds", "Process start time, seconds since the epoch.", {},
            boot + field(22) / ticks);
  }
}

void FillFds(SnapshotWriter& w) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir != nullptr) {
    double open = 0;
    while (const dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') open += 1;
    }
    closedir(dir);
    open -= 1;  // the descriptor of the directory stream itself
    w.Gauge("qseal_process_open_fds", "Open file descriptors.", {}, open);
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    w.Gauge("qseal_process_max_fds", "Limit on open file descriptors.", {},
            static_cast<double>(limit.rlim_cur));
  }
}

}  // namespace

SnapshotSource ProcessMetricsSource() {
  return [](SnapshotWriter& w) {
    try {
      FillFromStat(w);
    } catch (const std::exception&) {
      // A malformed /proc line leaves these metrics out of this scrape.
    }
    FillFds(w);
  };
}

}  // namespace qseal::metrics
