// The harness's command-line options (e2e_bench.cc parses them; --help lists them with their
// defaults) and the questions every part asks of them: which key, which scenarios.
//
// A plain value; thread-compatible.
#pragma once

#include <string>

namespace qseal::bench::e2e {

struct Options {
  int docs = 2000;                 // documents in the corpus (api and watch)
  std::string key = "p256";        // p256 or rsa3072
  std::string corpus = "invoice";  // invoice or mix (corpus.h)
  int partitions = 2;              // tokens holding the key, 1 or 2
  int sessions = 4;                // sessions per partition (raw loop and qseald)
  int clients = 64;                // api: concurrent HTTP clients
  double open_fraction = 0.5;      // api_open: arrival rate as a fraction of this run's api rate
  double open_rate = 0;            // api_open: fixed arrivals/s instead (0: open_fraction)
  int batch_size = 100;            // api_batch: documents per POST /v1/batches
  int batch_clients = 8;           // api_batch: concurrent batch clients
  int openssl_docs = 200;          // files signed by each openssl loop
  double raw_seconds = 3;          // duration of each raw C_Sign measurement
  int shim_sessions = 16;          // sessions per partition through the shim
  double shim_latency_ms = 2;      // latency the shim adds to every C_Sign
  double tsa_latency_ms = 5;       // api_t: latency of the loopback test TSA per token
  int tsa_connections = 32;        // api_t: qseald's keep-alive connections to the TSA
  double tsa_hsm_latency_ms = 0;   // api_t/api_lt: sign through the shim adding this (0: SoftHSM2)
  int shim_docs = 0;               // documents of the shim scenario; 0: same as docs
  int verify_sample = 20;          // seals per scenario checked by an independent verifier
  std::string scenarios = "raw,openssl,api,api_batch,watch,shim";
  int big_mib = 1024;           // the `big` scenario's document size
  int backlog_docs = 1000000;   // the `backlog` scenario's queued documents
  double backlog_seconds = 20;  // how long qseald runs on that backlog before RSS is read
  std::string keep;             // keep the work dir here instead of a temp dir
  std::string perf_dir;         // record `perf record -g` of qseald per scenario into this dir
  std::string latency_dir;      // write each API scenario's per-document times into this dir
  int audit_rounds = 2;         // the audit scenario's on, off, off, on rounds

  bool rsa() const { return key == "rsa3072"; }
  // The key type as scripts/provision-softhsm and testing::QsealdOptions name it.
  std::string key_type() const { return rsa() ? "rsa-3072" : "ec-p256"; }
  // Whether `s` is one of the comma-separated --scenarios.
  bool Want(const std::string& s) const {
    return ("," + scenarios + ",").find("," + s + ",") != std::string::npos;
  }
};

}  // namespace qseal::bench::e2e
