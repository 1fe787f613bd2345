// bench/e2e: the end-to-end throughput harness (issue 8). In one run, on one machine, against the
// same SoftHSM2 tokens and key, it measures:
//   raw            a bare multi-threaded C_SignInit+C_Sign loop, one thread per session, the same
//                  partitions x sessions as qseald's config (the ceiling for this HSM here);
//                  measured before and after the qseald scenarios, the mean is the baseline;
//   openssl_seq    `openssl cms -sign -binary -cades` per file through the pkcs11 engine, one
//                  after the other (what an operator scripts today);
//   openssl_xargs  the same under `xargs -P <nproc>`;
//   api            qseald fed by many concurrent HTTP clients (POST /v1/documents, no ?wait);
//                  documents/s from the first submit to the last sealed_at, latency
//                  sealed_at - created_at from the status JSON;
//   api_open       (not by default; after api) open loop: the api scenario's documents at a
//                  fixed arrival rate (--open-fraction x the api rate of this run, or
//                  --open-rate), latency from each document's due time to its sealed_at;
//   api_batch      the same documents through POST /v1/batches (multipart/mixed, --batch-size
//                  documents per request, fewer concurrent clients), outcomes learnt with the
//                  long-poll POST /v1/batches/status?wait= instead of one GET per document;
//   shim_api_batch the shim scenario through the batch API (with --scenarios shim_batch);
//   api_xades      the api clients on the `invoice-xades` profile (XAdES enveloped), UBL
//                  invoices of 3.4 KiB, each with its own number; seals checked with xmlsec1;
//   api_pades      the api clients on the `pdf-pades` profile, one-page PDFs of about 2 KiB
//                  written by the harness; seals checked with pdfsig and qpdf --check;
//   watch          the same corpus renamed into the watched inbox; documents/s from the first
//                  rename to the last seal's mtime in outbox/, latency = seal mtime - rename time;
//   shim_api       the api scenario through tests/p11shim modelling a network HSM (2 ms per
//                  C_Sign, 2 partitions x 16 sessions, offload_sign=1 so the host CPU does not do
//                  the HSM's crypto); its ceiling is sessions / latency.
//   api_bb, api_t  (not by default; --scenarios api_t) one qseald with a b-b and a b-t profile
//                  (CAdES detached) and the loopback test TSA (tests/tsa/test_tsa.h) answering
//                  after --tsa-latency-ms: the api clients on each profile in turn; the ratio
//                  api_t / api_bb says whether the TSA's latency is hidden by pipelining, and
//                  the TSA's request rate is printed. B-T seals are checked with openssl cms
//                  -verify and their token with openssl ts -verify. api_lt (--scenarios api_lt,
//                  which runs the other two first): a b-lt profile on the same daemon, the seal
//                  certificate's OCSP answered by a loopback `openssl ocsp`.
//   jetstream      (not by default) one qseald node draining a NATS JetStream work-queue stream
//                  (a real nats-server -js) that holds the corpus; the ratio to the api
//                  scenario of the same run is printed; jetstream_2n: two nodes on this host
//                  (sharing its cores); seals read from the result stream, a sample checked
//                  with openssl cms -verify (jetstream_scenario.h);
//   audit          (not by default) api with the audit trail on and off, --audit-rounds times
//                  on, off, off, on after one uncounted warm-up; prints the throughput ratio
//                  on/off of the summed rates.
// For qseald: peak RSS (VmHWM) and CPU seconds per 1 000 documents (utime+stime from
// /proc/PID/stat), the daemon restarted per scenario. A sample of seals from every scenario is
// checked with an independent verifier (`openssl cms -verify` for CAdES; seal_kinds.h). Ends with
// one `e2e scenario=...` line per scenario.
//
// Run from the build tree: bench/e2e/e2e_bench --help
//
// The parts: options.h (the flags below), corpus.h, baselines.h (raw, openssl), api_scenario.h
// (api, api_batch, shim_api; seal_kinds.h for api_xades, api_pades), scenarios.h (watch, big,
// backlog), process_stats.h (qseald's CPU and RSS, perf), timing.h, run.h (the order of a run),
// report.h (the `e2e scenario=` lines).
#include <CLI/CLI.hpp>

#include "bench/e2e/options.h"
#include "bench/e2e/run.h"

int main(int argc, char** argv) {
  qseal::bench::e2e::Options o;
  CLI::App app{
      "qseal end-to-end throughput harness: raw C_Sign, openssl loops, qseald API, "
      "watched folder and a network-HSM shim, measured in one run"};
  app.add_option("-n,--docs", o.docs, "documents in the corpus (api and watch)")
      ->capture_default_str();
  app.add_option("--key", o.key, "p256 or rsa3072")
      ->check(CLI::IsMember({"p256", "rsa3072"}))
      ->capture_default_str();
  app.add_option("--corpus", o.corpus, "invoice (2 KiB each) or mix (2 KiB .. 10 MiB)")
      ->check(CLI::IsMember({"invoice", "mix"}))
      ->capture_default_str();
  app.add_option("--partitions", o.partitions, "partitions (tokens holding the key), 1 or 2")
      ->check(CLI::Range(1, 2))
      ->capture_default_str();
  app.add_option("--sessions", o.sessions, "sessions per partition (raw loop and qseald)")
      ->capture_default_str();
  app.add_option("--clients", o.clients, "concurrent API clients")->capture_default_str();
  app.add_option("--openssl-docs", o.openssl_docs, "files signed by each openssl loop")
      ->capture_default_str();
  app.add_option("--raw-seconds", o.raw_seconds, "duration of each raw C_Sign measurement")
      ->capture_default_str();
  app.add_option("--shim-sessions", o.shim_sessions, "sessions per partition through the shim")
      ->capture_default_str();
  app.add_option("--shim-latency-ms", o.shim_latency_ms, "added latency per C_Sign in the shim")
      ->capture_default_str();
  app.add_option("--tsa-latency-ms", o.tsa_latency_ms, "latency of the test TSA (api_t)")
      ->capture_default_str();
  app.add_option("--tsa-hsm-latency-ms", o.tsa_hsm_latency_ms,
                 "api_t/api_lt: sign through the p11shim adding this latency per C_Sign, with "
                 "--shim-sessions per partition (0: SoftHSM2 directly, the host's CPU bound)")
      ->capture_default_str();
  app.add_option("--tsa-connections", o.tsa_connections, "qseald's connections to the TSA (api_t)")
      ->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "documents per POST /v1/batches (api_batch)")
      ->capture_default_str();
  app.add_option("--batch-clients", o.batch_clients, "concurrent batch clients (api_batch)")
      ->capture_default_str();
  app.add_option("--shim-docs", o.shim_docs, "documents for the shim scenario (0: --docs)")
      ->capture_default_str();
  app.add_option("--verify-sample", o.verify_sample,
                 "seals per scenario checked by an independent verifier")
      ->capture_default_str();
  app.add_option("--scenarios", o.scenarios,
                 "comma-separated: raw,openssl,api,api_batch,watch,shim; shim_batch (shim "
                 "through the batch API), api_xades, api_pades (the XAdES and PAdES profiles), "
                 "api_open (open loop at a fixed rate, after api), api_t (api_bb and api_t: "
                 "B-B and B-T on one daemon), api_lt (those and B-LT), big, backlog and audit "
                 "(api with the audit trail on and off, the ratio) not by default")
      ->capture_default_str();
  app.add_option("--open-fraction", o.open_fraction,
                 "api_open: arrivals/s as a fraction of the api scenario's rate in this run")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 2.0));
  app.add_option("--open-rate", o.open_rate, "api_open: a fixed arrival rate instead (docs/s)")
      ->capture_default_str();
  app.add_option("--big-mib", o.big_mib, "document size of the big scenario")
      ->capture_default_str();
  app.add_option("--backlog-docs", o.backlog_docs, "documents queued in the backlog scenario")
      ->capture_default_str();
  app.add_option("--backlog-seconds", o.backlog_seconds,
                 "seconds qseald runs on the backlog before its RSS is read")
      ->capture_default_str();
  app.add_option("--audit-rounds", o.audit_rounds, "rounds of on, off, off, on (audit scenario)")
      ->capture_default_str()
      ->check(CLI::Range(1, 20));
  app.add_option("--perf-dir", o.perf_dir,
                 "record qseald with perf record -g per scenario into this directory");
  app.add_option(
      "--latency-dir", o.latency_dir,
      "write SCENARIO.latency.tsv per API scenario into this directory: each "
      "document's due (open loop) or submit time, acceptance and seal, ms from the start");
  app.add_option("--keep", o.keep, "work directory to use and keep (default: a temp dir)");
  CLI11_PARSE(app, argc, argv);
  return qseal::bench::e2e::Run(o);
}
