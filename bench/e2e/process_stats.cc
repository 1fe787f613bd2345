#include "bench/e2e/process_stats.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

namespace qseal::bench::e2e {

double ProcCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  std::vector<std::string> f;
  std::string tok;
  while (rest >> tok) f.push_back(tok);
  // After ")": state is field 3; utime and stime are fields 14 and 15 (index 11 and 12 here).
  if (f.size() < 13) return -1;
  double ticks = static_cast<double>(std::stoull(f[11]) + std::stoull(f[12]));
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double ProcPeakRssMb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1;
}

double RusageCpu(int who) {
  struct rusage u {};
  getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

void FillDaemonFigures(testing::Qseald& q, double cpu0, Figures* fig) {
  int pid = q.process().pid();
  double cpu = ProcCpuSeconds(pid) - cpu0;
  fig->rss_mb = ProcPeakRssMb(pid);
  fig->cpu_s_per_1000 = cpu * 1000.0 / std::max(1, fig->docs - fig->failed);
}

PerfRecord::PerfRecord(const Options& o, int pid, const std::string& scenario) {
  if (o.perf_dir.empty()) return;
  std::filesystem::create_directories(o.perf_dir);
  std::string out = o.perf_dir + "/" + scenario + ".perf.data";
  Status s = child_.Start(
      {"/usr/bin/perf", "record", "-F", "499", "-g", "-p", std::to_string(pid), "-o", out},
      o.perf_dir + "/" + scenario + ".perf.log");
  if (!s.ok()) Say("perf: " + s.ToString());
}

PerfRecord::~PerfRecord() {
  if (!child_.running()) return;
  child_.Signal(SIGINT);
  child_.Wait(std::chrono::seconds(60));
}

}  // namespace qseal::bench::e2e
