#include "bench/e2e/report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "bench/e2e/verdicts.h"

namespace qseal::bench::e2e {

std::string Fmt(double v, int precision) {
  if (v < 0 || std::isnan(v)) return "na";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

void Say(const std::string& s) {
  std::fprintf(stderr, "[e2e] %s\n", s.c_str());
  std::fflush(stderr);
}

std::string Line(const Options& o, const Figures& f, double raw, double seq, double xargs) {
  std::ostringstream s;
  s << "e2e scenario=" << f.scenario << " key=" << o.key
    << " corpus=" << (f.corpus.empty() ? o.corpus : f.corpus) << " docs=" << f.docs
    << " failed=" << f.failed << " sessions=" << f.sessions
    << " docs_per_s=" << Fmt(f.docs_per_s, f.docs_per_s > 0 && f.docs_per_s < 10 ? 4 : 1);
  if (f.ceiling_per_s > 0) {
    s << " ceiling_per_s=" << Fmt(f.ceiling_per_s)
      << " ratio_to_ceiling=" << Fmt(f.docs_per_s / f.ceiling_per_s, 3);
  } else {
    s << " raw_per_s=" << Fmt(raw)
      << " ratio_to_raw=" << Fmt(raw > 0 && f.docs_per_s > 0 ? f.docs_per_s / raw : -1, 3);
  }
  s << " vs_openssl_loop=" << Fmt(seq > 0 && f.docs_per_s > 0 ? f.docs_per_s / seq : -1, 2)
    << " vs_openssl_xargs=" << Fmt(xargs > 0 && f.docs_per_s > 0 ? f.docs_per_s / xargs : -1, 2)
    << " p50_ms=" << Fmt(f.p50_ms) << " p99_ms=" << Fmt(f.p99_ms) << " rss_mb=" << Fmt(f.rss_mb)
    << " cpu_s_per_1000=" << Fmt(f.cpu_s_per_1000, 3);
  if (f.client_cpu_s_per_1000 >= 0) {
    s << " client_cpu_s_per_1000=" << Fmt(f.client_cpu_s_per_1000, 3);
  }
  if (f.arrival_per_s > 0) s << " arrival_per_s=" << Fmt(f.arrival_per_s);
  return s.str();
}

int PrintReport(const Options& o, const std::vector<Figures>& results, double raw, double seq,
                double xargs) {
  int exit_code = 0;
  for (const Figures& f : results) {
    std::printf("%s\n", Line(o, f, raw, seq, xargs).c_str());
    // The openssl baseline fails now and then under concurrency (SoftHSM2's file store shared by
    // processes); that is reported in its line, not a failure of the harness.
    if (f.failed > 0 && f.scenario.rfind("openssl", 0) != 0) exit_code = 1;
  }
  for (const Verdict& v : Verdicts(o, results, raw)) std::printf("%s\n", VerdictLine(v).c_str());
  std::fflush(stdout);
  return exit_code;
}

}  // namespace qseal::bench::e2e
