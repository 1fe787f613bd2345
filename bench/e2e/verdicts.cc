#include "bench/e2e/verdicts.h"

#include <algorithm>

namespace qseal::bench::e2e {
namespace {

const Figures* Find(const std::vector<Figures>& results, const std::string& scenario) {
  for (const Figures& f : results) {
    if (f.scenario == scenario) return &f;
  }
  return nullptr;
}

// docs/s of `scenario` over `base` (negative when either is missing).
double Ratio(const std::vector<Figures>& results, const std::string& scenario, double base) {
  const Figures* f = Find(results, scenario);
  if (f == nullptr || f->docs_per_s <= 0 || base <= 0) return -1;
  return f->docs_per_s / base;
}

}  // namespace

std::vector<Verdict> Verdicts(const Options& o, const std::vector<Figures>& results, double raw) {
  std::vector<Verdict> out;
  const std::string vs_raw = "docs/s over the raw C_Sign rate of this run";
  if (o.rsa()) {
    out.push_back({"api_rsa3072", Ratio(results, "api", raw), 0.95, false, "x raw", vs_raw});
  } else {
    out.push_back({"api", Ratio(results, "api", raw), 0.5, false, "x raw", vs_raw});
  }
  out.push_back({"api_batch", Ratio(results, "api_batch", raw), 0.7, false, "x raw", vs_raw});
  out.push_back({"watch", Ratio(results, "watch", raw), 0.3, false, "x raw", vs_raw});
  for (const char* shim : {"shim_api", "shim_api_batch"}) {
    const Figures* f = Find(results, shim);
    // The ceiling: min(sessions / latency, the raw rate through the shim with 0 ms added).
    const double ceiling = f != nullptr ? f->ceiling_per_s : -1;
    out.push_back({shim, Ratio(results, shim, ceiling), 0.9, false, "x ceiling",
                   "docs/s over min(sessions/latency, raw C_Sign/s through the shim at 0 ms)"});
  }
  {
    const Figures* batch = Find(results, "api_batch");
    const Figures* raw_fig = Find(results, "raw");
    double v = -1;
    if (batch != nullptr && raw_fig != nullptr && batch->cpu_s_per_1000 >= 0 &&
        raw_fig->cpu_s_per_1000 >= 0) {
      // s per 1 000 documents = ms per document; the raw loop's is the signature's own cost.
      v = std::max(0.0, batch->cpu_s_per_1000 - raw_fig->cpu_s_per_1000);
    }
    out.push_back({"api_batch_cpu", v, 0.10, true, "ms/doc",
                   "qseald CPU per document (api_batch) minus the raw loop's, i.e. without the "
                   "signature"});
  }
  {
    // Judged only at the load: half of the api scenario's peak of the same run.
    const Figures* open = Find(results, "api_open");
    const bool at_half = o.open_rate <= 0 && o.open_fraction == 0.5;
    out.push_back({"api_p99_open_loop", open != nullptr && at_half ? open->p99_ms : -1, 20, true,
                   "ms",
                   "p99 of sealed_at - due time, api_open at 0.5 x the api rate of this run "
                   "(fixed arrivals)"});
  }
  {
    // Issue 18: the TSA's latency hidden by pipelining, B-T (and B-LT) against B-B on one daemon.
    const Figures* bb = Find(results, "api_bb");
    const double base = bb != nullptr ? bb->docs_per_s : -1;
    const std::string hsm = o.tsa_hsm_latency_ms > 0
                                ? "HSM through the shim at " + Fmt(o.tsa_hsm_latency_ms) + " ms"
                                : "SoftHSM2 on this host's CPU";
    for (const char* level : {"api_t", "api_lt"}) {
      out.push_back(
          {level, Ratio(results, level, base), 0.9, false, "x api_bb",
           "docs/s over api_bb of this run, TSA at " + Fmt(o.tsa_latency_ms) + " ms, " + hsm});
    }
  }
  {
    const Figures* b = Find(results, "backlog");
    out.push_back({"backlog_start", b != nullptr ? b->start_s : -1, 10, true, "s",
                   "qseald start on the backlog (queue open) to serving"});
    out.push_back({"backlog_rss", b != nullptr ? b->rss_mb : -1, 256, true, "MiB",
                   "peak RSS after backlog_seconds on the backlog"});
  }
  return out;
}

std::string VerdictLine(const Verdict& v) {
  const bool measured = v.value >= 0;
  const bool met = v.at_most ? v.value <= v.goal : v.value >= v.goal;
  return "e2e verdict target=" + v.target + " value=" + Fmt(v.value, 3) +
         " goal=" + std::string(v.at_most ? "<=" : ">=") + Fmt(v.goal, 2) + " unit=\"" + v.unit +
         "\" met=" + (measured ? (met ? "yes" : "no") : "na") + " note=\"" + v.note + "\"";
}

}  // namespace qseal::bench::e2e
