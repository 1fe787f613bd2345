#include "bench/e2e/run.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/e2e/api_scenario.h"
#include "bench/e2e/baselines.h"
#include "bench/e2e/corpus.h"
#include "bench/e2e/jetstream_scenario.h"
#include "bench/e2e/report.h"
#include "bench/e2e/scenarios.h"
#include "bench/e2e/seal_kinds.h"
#include "tests/p11shim/p11shim.h"
#include "tests/testing/qseald_harness.h"
#include "tests/testing/testing.h"
#include "tests/tsa/test_tsa.h"

namespace qseal::bench::e2e {
namespace {

namespace fs = std::filesystem;

}  // namespace

int Run(const Options& o) {
  std::unique_ptr<testing::TempDir> temp;
  std::string work = o.keep;
  if (work.empty()) {
    temp = std::make_unique<testing::TempDir>();
    work = temp->path().string();
  }
  fs::create_directories(work);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::string sessions = std::to_string(o.partitions) + "x" + std::to_string(o.sessions);
  Say("work dir " + work + ", key " + o.key + ", corpus " + o.corpus + ", docs " +
      std::to_string(o.docs) + ", sessions " + sessions + ", cores " + std::to_string(cores));

  Corpus corpus = MakeCorpus(work + "/corpus", o.corpus, o.docs);
  Say("corpus: " + std::to_string(corpus.paths.size()) + " files, " +
      Fmt(static_cast<double>(corpus.bytes) / 1048576.0) + " MiB");

  // The daemon's var/ and its tokens; the raw loop and openssl use the same tokens and key.
  std::string dir = work + "/qseald";
  // A kept work dir reuses its corpus, never a previous run's daemons, queues or outboxes.
  for (const char* sub : {"/qseald", "/shim", "/backlog", "/stage", "/openssl_seq",
                          "/openssl_xargs", "/nss", "/tsa"}) {
    fs::remove_all(work + sub);
  }
  testing::QsealdOptions qo;
  qo.key_type = o.key_type();
  qo.edit_config = EditConfig(o.partitions, o.sessions);
  testing::Qseald q(dir, qo);
  auto softhsm = testing::ProvisionSoftHsm(q.var(), {"qseal-p1", "qseal-p2"}, o.key_type(), "seal");
  if (!softhsm.ok()) {
    Say("provisioning failed: " + softhsm.status().ToString());
    return 1;
  }
  std::vector<std::string> tokens = {"qseal-p1", "qseal-p2"};
  tokens.resize(static_cast<std::size_t>(o.partitions));

  std::vector<Figures> results;
  Figures raw_fig;
  raw_fig.scenario = "raw";
  raw_fig.sessions = sessions;
  double raw = -1, raw_before = -1, raw_after = -1;
  auto measure_raw = [&] { return RawLoop(o, softhsm->PinFile(), tokens, o.sessions, &raw_fig); };
  if (o.Want("raw")) {
    raw_before = measure_raw();
    Say("raw (before): " + Fmt(raw_before) + " C_Sign/s");
  }

  double seq = -1, xargs = -1;
  if (o.Want("openssl")) {
    Figures f1 = OpensslLoop(o, *softhsm, corpus, work, 1);
    f1.sessions = "1proc";
    seq = f1.docs_per_s;
    Say("openssl_seq: " + Fmt(seq) + " docs/s");
    Figures f2 = OpensslLoop(o, *softhsm, corpus, work, cores);
    xargs = f2.docs_per_s;
    Say("openssl_xargs: " + Fmt(xargs) + " docs/s");
    results.push_back(f1);
    results.push_back(f2);
  }

  // qseald restarts on an empty queue for every scenario, so each one's figures (peak RSS above
  // all) are its own. False, said on stderr, when it does not start.
  auto start_fresh = [&] {
    fs::remove_all(q.var() + "/queue");
    Status s = q.Start();
    if (!s.ok()) Say("qseald: " + s.ToString());
    return s.ok();
  };
  if (o.Want("api")) {
    if (!start_fresh()) return 1;
    Figures f = ApiScenario(o, q, corpus, o.docs, "api", work + "/verify-api");
    f.sessions = sessions;
    Say("api: " + Fmt(f.docs_per_s) + " docs/s");
    results.push_back(f);
    q.Stop();
  }
  double api_rate = -1;  // the ratio base of the broker scenarios and api_open's rate
  for (const Figures& f : results) {
    if (f.scenario == "api") api_rate = f.docs_per_s;
  }
  if (o.Want("api_open")) {
    const double rate = o.open_rate > 0 ? o.open_rate : o.open_fraction * api_rate;
    if (rate <= 0) {
      Say("api_open: skipped: it needs the api scenario in the same run or --open-rate");
    } else {
      if (!start_fresh()) return 1;
      Say("api_open: " + Fmt(rate) + " arrivals/s" +
          (o.open_rate > 0 ? "" : " (" + Fmt(o.open_fraction, 2) + " x api)"));
      Figures f =
          ApiScenario(o, q, corpus, o.docs, "api_open", work + "/verify-api-open", 0, {}, rate);
      f.sessions = sessions;
      f.arrival_per_s = rate;
      Say("api_open: " + Fmt(f.docs_per_s) + " docs/s, p50 " + Fmt(f.p50_ms) + " ms, p99 " +
          Fmt(f.p99_ms) + " ms");
      results.push_back(f);
      q.Stop();
    }
  }
  // The broker scenarios (jetstream_scenario.h): one node, then two sharing this host.
  for (int nodes : {1, 2}) {
    const std::string name = nodes == 1 ? "jetstream" : "jetstream_2n";
    if (!o.Want(name)) continue;
    Figures f = JetStreamScenario(o, qo, corpus, nodes, work);
    f.sessions = std::to_string(nodes) + "x" + sessions;
    Say(name + ": " + Fmt(f.docs_per_s) + " docs/s = " +
        (api_rate > 0 ? Fmt(f.docs_per_s / api_rate, 3) : std::string("na")) + " x api" +
        (nodes > 1
             ? " (" + std::to_string(nodes) + " nodes sharing " + std::to_string(cores) + " cores)"
             : ""));
    results.push_back(f);
  }
  if (o.Want("api_batch")) {
    if (!start_fresh()) return 1;
    Figures f = ApiScenario(o, q, corpus, o.docs, "api_batch", work + "/verify-api-batch",
                            std::max(1, o.batch_size));
    f.sessions = sessions;
    Say("api_batch: " + Fmt(f.docs_per_s) + " docs/s");
    results.push_back(f);
    q.Stop();
  }
  // The format scenarios: the api scenario's clients on the XAdES and PAdES profiles, each with
  // its own corpus (corpus.h) and seal check (seal_kinds.h).
  for (const std::string name : {"api_xades", "api_pades"}) {
    if (!o.Want(name)) continue;
    const bool xades = name == "api_xades";
    Corpus docs =
        MakeCorpus(work + (xades ? "/corpus-ubl" : "/corpus-pdf"), xades ? "ubl" : "pdf", o.docs);
    Say(name + " corpus: " + std::to_string(docs.paths.size()) + " files, " +
        Fmt(static_cast<double>(docs.bytes) / 1048576.0) + " MiB");
    if (!start_fresh()) return 1;
    SealKind kind = xades ? XadesKind(q.ca_pem()) : PadesKind(q.ca_pem(), work + "/nss");
    Figures f = ApiScenario(o, q, docs, o.docs, name, work + "/verify-" + name, 0, kind);
    f.sessions = sessions;
    f.corpus = xades ? "ubl" : "pdf";
    Say(name + ": " + Fmt(f.docs_per_s) + " docs/s");
    results.push_back(f);
    q.Stop();
  }
  if (o.Want("api_t") || o.Want("api_lt")) {
    // One daemon with a b-b, a b-t and a b-lt profile and the loopback TSA: the same clients on
    // each in turn, so the ratios compare like with like. B-LT also needs the seal certificate's
    // OCSP responder: a real `openssl ocsp` on loopback, as in tests/e2e/ltv_test.cc.
    const std::string tdir = work + "/tsa";
    fs::create_directories(tdir + "/pki");
    Result<testing::TsaPki> pki = testing::MakeTsaPki(tdir + "/pki");
    if (!pki.ok()) {
      Say("tsa pki: " + pki.status().ToString());
      return 1;
    }
    testing::TestTsa tsa(*pki);
    if (Status s = tsa.Start(); !s.ok()) {
      Say("test tsa: " + s.ToString());
      return 1;
    }
    tsa.SetDelay(std::chrono::milliseconds(static_cast<int>(o.tsa_latency_ms)));
    testing::QsealdOptions to = qo;
    std::string t_sessions = sessions;
    if (o.tsa_hsm_latency_ms > 0) {
      t_sessions = std::to_string(o.partitions) + "x" + std::to_string(o.shim_sessions);
      // An HSM whose latency, not this host's CPU, bounds B-B: then api_t / api_bb shows whether
      // the TSA's latency is hidden behind the HSM's, as on a customer's network HSM.
      const std::string shim = tdir + "/p11shim.so";
      fs::copy_file(QSEAL_P11SHIM_PATH, shim, fs::copy_options::overwrite_existing);
      p11shim::WriteConfig(
          shim + ".conf", "sign_latency_ms=" + Fmt(o.tsa_hsm_latency_ms, 3) + "\noffload_sign=1\n");
      to.module = shim;
      to.edit_config = EditConfig(o.partitions, o.shim_sessions);
      Say("api_t: signing through the shim, " + Fmt(o.tsa_hsm_latency_ms) + " ms per C_Sign, " +
          std::to_string(o.partitions) + "x" + std::to_string(o.shim_sessions) +
          " sessions: ceiling " +
          Fmt(o.partitions * o.shim_sessions / (o.tsa_hsm_latency_ms / 1000.0)) + " docs/s");
    }
    const int ocsp_port = testing::FreeLoopbackPort();
    to.ocsp_url = "http://127.0.0.1:" + std::to_string(ocsp_port) + "/";
    to.edit_config = [base = to.edit_config, url = tsa.url(), ca = pki->ca_pem,
                      connections = o.tsa_connections](std::string& conf) {
      base(conf);
      conf += "\n[[tsa]]\nname = \"bench-tsa\"\nurl = \"" + url + "\"\nca = \"" + ca +
              "\"\nconnections = " + std::to_string(connections) + "\n";
      for (const char* level : {"t", "lt"}) {
        conf += std::string("\n[[profile]]\nname = \"default-") + level +
                "\"\nformat = \"cades-detached\"\nlevel = \"b-" + level +
                "\"\ntsa = [\"bench-tsa\"]\ndigest = \"sha256\"\n"
                "scheme = \"${QSEAL_SCHEME:-ecdsa}\"\nkey = \"seal\"\n";
      }
    };
    testing::Qseald tq(tdir + "/qseald", to);
    if (Status s = tq.Prepare(); !s.ok()) {
      Say("qseald (tsa): " + s.ToString());
      return 1;
    }
    testing::ChildProcess responder;
    const std::string tpki = tq.var() + "/pki/";
    if (Status s = responder.Start({"/usr/bin/openssl", "ocsp", "-index", tpki + "index.txt",
                                    "-port", std::to_string(ocsp_port), "-rsigner", tpki + "ca.pem",
                                    "-rkey", tpki + "ca.key", "-CA", tpki + "ca.pem", "-nmin", "5"},
                                   tdir + "/ocsp.log");
        !s.ok()) {
      Say("openssl ocsp: " + s.ToString());
      return 1;
    }
    if (Status s = tq.Start(); !s.ok()) {
      Say("qseald (tsa): " + s.ToString() + tq.Stderr());
      return 1;
    }
    Figures bb = ApiScenario(o, tq, corpus, o.docs, "api_bb", tdir + "/verify-bb");
    bb.sessions = t_sessions;
    Say("api_bb: " + Fmt(bb.docs_per_s) + " docs/s");
    const int requests_before = tsa.requests();
    Figures t = ApiScenario(o, tq, corpus, o.docs, "api_t", tdir + "/verify-t", 0,
                            TimestampedKind("default-t", tq.ca_pem(), pki->ca_pem));
    t.sessions = t_sessions;
    const int tsa_requests = tsa.requests() - requests_before;
    Say("api_t: " + Fmt(t.docs_per_s) + " docs/s = " + Fmt(t.docs_per_s / bb.docs_per_s, 3) +
        " x api_bb; TSA at " + Fmt(o.tsa_latency_ms) + " ms: " + std::to_string(tsa_requests) +
        " requests (" + Fmt(tsa_requests * t.docs_per_s / std::max(1, t.docs)) +
        " requests/s), at most " + std::to_string(tsa.max_concurrent()) + " at once over " +
        std::to_string(tsa.connections()) + " connections");
    results.push_back(bb);
    results.push_back(t);
    if (o.Want("api_lt")) {
      Figures lt = ApiScenario(o, tq, corpus, o.docs, "api_lt", tdir + "/verify-lt", 0,
                               TimestampedKind("default-lt", tq.ca_pem(), pki->ca_pem));
      lt.sessions = t_sessions;
      Say("api_lt: " + Fmt(lt.docs_per_s) + " docs/s = " + Fmt(lt.docs_per_s / bb.docs_per_s, 3) +
          " x api_bb, " + Fmt(lt.docs_per_s / std::max(1.0, t.docs_per_s), 3) + " x api_t");
      results.push_back(lt);
    }
    tq.Stop();
  }
  if (o.Want("watch")) {
    if (!start_fresh()) return 1;
    Figures f = WatchScenario(o, q, corpus, work);
    f.sessions = sessions;
    Say("watch: " + Fmt(f.docs_per_s) + " docs/s");
    results.push_back(f);
    q.Stop();
  }
  if (o.Want("big")) {
    if (!start_fresh()) return 1;
    Figures f = BigScenario(o, q, work);
    f.sessions = sessions;
    Say(f.scenario + ": sealed in " + Fmt(f.docs_per_s > 0 ? 1 / f.docs_per_s : -1, 2) +
        " s, peak RSS " + Fmt(f.rss_mb) + " MiB");
    results.push_back(f);
    q.Stop();
  }
  if (o.Want("audit")) {
    // The audit trail's cost: the api scenario with [audit] on and off, in the order on, off,
    // off, on so a drift of the machine cancels out; the ratio of the means is the figure.
    // A first, uncounted run warms the machine (page cache, CPU frequency) for both.
    double sum[2] = {0, 0};
    std::vector<int> order = {-1};
    for (int r = 0; r < o.audit_rounds; ++r) order.insert(order.end(), {1, 0, 0, 1});
    for (int on : order) {
      if (fs::exists(q.config_path())) {  // written by the first Start
        std::string conf = testing::ReadFile(q.config_path());
        std::size_t at = conf.find("enabled = ", conf.find("[audit]"));
        conf.replace(at, conf.find('\n', at) - at, on != 0 ? "enabled = true" : "enabled = false");
        testing::WriteFile(q.config_path(), conf);
      }
      if (!start_fresh()) return 1;
      std::string name = on < 0 ? "api_warmup" : on ? "api_audit_on" : "api_audit_off";
      Figures f = ApiScenario(o, q, corpus, on < 0 ? std::min(o.docs, 2000) : o.docs, name,
                              work + "/verify-" + name);
      f.sessions = sessions;
      q.Stop();
      if (on < 0) continue;
      Say(name + ": " + Fmt(f.docs_per_s) + " docs/s");
      sum[on] += f.docs_per_s;
      results.push_back(f);
    }
    Say("audit: throughput on/off = " + Fmt(sum[1] / sum[0], 3) + " (cost " +
        Fmt(100 * (1 - sum[1] / sum[0]), 1) + " %)");
  }
  if (o.Want("raw")) {
    raw_after = measure_raw();
    Say("raw (after): " + Fmt(raw_after) + " C_Sign/s");
    raw = (raw_before + raw_after) / 2;
    raw_fig.docs_per_s = raw;
    results.insert(results.begin(), raw_fig);
  }

  if (o.Want("backlog")) {
    Figures f = BacklogScenario(o, work);
    f.sessions = sessions;
    Say("backlog: qseald peak RSS " + Fmt(f.rss_mb) + " MiB with " + std::to_string(f.docs) +
        " documents queued");
    results.push_back(f);
  }

  if (o.Want("shim")) {
    // A network HSM: both partitions on one shim copy adding the latency to every C_Sign.
    std::string sdir = work + "/shim";
    fs::create_directories(sdir);
    std::string shim = sdir + "/p11shim.so";
    fs::copy_file(QSEAL_P11SHIM_PATH, shim, fs::copy_options::overwrite_existing);
    p11shim::WriteConfig(shim + ".conf",
                         "sign_latency_ms=" + Fmt(o.shim_latency_ms, 3) + "\noffload_sign=1\n");
    // The second ceiling: the raw C_Sign rate through a shim copy that adds nothing (the
    // shim signs on this host, so the host's own rate bounds it too). Without offload_sign: the
    // raw loop signs one input over and over, which offload_sign would answer from its cache.
    std::string shim0 = sdir + "/p11shim0.so";
    fs::copy_file(QSEAL_P11SHIM_PATH, shim0, fs::copy_options::overwrite_existing);
    p11shim::WriteConfig(shim0 + ".conf", "sign_latency_ms=0\noffload_sign=0\n");
    const double raw_shim0 =
        RawLoop(o, softhsm->PinFile(), tokens, o.shim_sessions, nullptr, shim0);
    Say("raw through the shim at 0 ms: " + Fmt(raw_shim0) + " C_Sign/s");
    testing::QsealdOptions so;
    so.key_type = o.key_type();
    so.module = shim;
    so.edit_config = EditConfig(o.partitions, o.shim_sessions);
    testing::Qseald sq(sdir, so);
    Status s = sq.Start();
    if (!s.ok()) {
      Say("qseald (shim): " + s.ToString());
      return 1;
    }
    int n = o.shim_docs > 0 ? o.shim_docs : o.docs;
    Figures f = ApiScenario(o, sq, corpus, n, "shim_api", sdir + "/verify");
    f.sessions = std::to_string(o.partitions) + "x" + std::to_string(o.shim_sessions);
    f.ceiling_per_s = o.partitions * o.shim_sessions / (o.shim_latency_ms / 1000.0);
    if (raw_shim0 > 0) f.ceiling_per_s = std::min(f.ceiling_per_s, raw_shim0);
    Say("shim_api: " + Fmt(f.docs_per_s) + " docs/s, ceiling " + Fmt(f.ceiling_per_s));
    results.push_back(f);
    if (o.Want("shim_batch")) {
      Figures b = ApiScenario(o, sq, corpus, n, "shim_api_batch", sdir + "/verify-batch",
                              std::max(1, o.batch_size));
      b.sessions = f.sessions;
      b.ceiling_per_s = f.ceiling_per_s;
      Say("shim_api_batch: " + Fmt(b.docs_per_s) + " docs/s, ceiling " + Fmt(b.ceiling_per_s));
      results.push_back(b);
    }
    sq.Stop();
  }

  return PrintReport(o, results, raw, seq, xargs);
}

}  // namespace qseal::bench::e2e
