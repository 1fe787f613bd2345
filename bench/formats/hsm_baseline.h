// Shared by the formats benchmarks: one SoftHSM2 token with an ECDSA P-256 seal key and its
// chain, made once per process, and the baseline every format cost is compared with — one
// P-256 C_Sign measured in the same run. Header-only, bench-only; not thread-safe.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include <benchmark/benchmark.h>

#include "tests/formats/cades_test_util.h"
#include "tests/formats/p11_test_signer.h"
#include "tests/testing/testing.h"

namespace qseal::formats::bench {

class HsmBaseline {
 public:
  // Destroyed at exit: the session closes, then the token directory goes.
  static HsmBaseline& Get() {
    static HsmBaseline b;
    return b;
  }

  formats::testing::P11TestSigner& signer() { return *signer_; }
  const std::vector<Bytes>& chain() const { return chain_; }

  // One C_Sign, in ns: measured on first use unless BM_SoftHsmEcdsaP256Sign ran before.
  double SignNs() {
    if (sign_ns_ == 0) {
      Bytes digest(32, 0x5A);
      constexpr int kN = 2000;
      auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < kN; ++i) Sign(digest);
      sign_ns_ = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
                     .count() /
                 kN;
    }
    return sign_ns_;
  }
  void set_sign_ns(double ns) { sign_ns_ = ns; }

  // A P-256 signature (DER) of a SHA-256 digest; exits on failure.
  Bytes Sign(ByteSpan digest) {
    auto sig = signer_->Sign(digest, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
    if (!sig.ok()) Die(sig.status());
    return *sig;
  }

  [[noreturn]] static void Die(const Status& s) {
    std::fprintf(stderr, "formats bench setup: %s\n", s.ToString().c_str());
    std::exit(1);
  }

  // Sets us_per_doc, sign_us and ratio (format cost / one C_Sign) for `elapsed_ns` over the
  // state's iterations.
  void ReportRatio(benchmark::State& state, double elapsed_ns) {
    double per_doc_ns = elapsed_ns / static_cast<double>(state.iterations());
    state.counters["us_per_doc"] = per_doc_ns / 1000.0;
    state.counters["sign_us"] = SignNs() / 1000.0;
    state.counters["ratio"] = per_doc_ns / SignNs();
    state.SetItemsProcessed(state.iterations());
  }

 private:
  HsmBaseline() {
    auto hsm = qseal::testing::ProvisionSoftHsm(dir_.Sub("hsm"), {"bench"}, "ec-p256", "seal");
    if (!hsm.ok()) Die(hsm.status());
    auto opened = formats::testing::P11TestSigner::Open(hsm->module, "bench", hsm->pin, "seal");
    if (!opened.ok()) Die(opened.status());
    signer_ = std::move(opened).value();
    chain_ = formats::testing::LoadPemCertificates(hsm->ChainPem("seal"));
  }

  qseal::testing::TempDir dir_;
  std::unique_ptr<formats::testing::P11TestSigner> signer_;
  std::vector<Bytes> chain_;
  double sign_ns_ = 0;
};

// Baseline: one ECDSA P-256 C_Sign of a SHA-256 digest on SoftHSM2 (with the r||s -> DER step).
inline void BM_SoftHsmEcdsaP256Sign(benchmark::State& state) {
  HsmBaseline& b = HsmBaseline::Get();
  Bytes digest(32, 0x5A);
  auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto sig = b.signer().Sign(digest, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
    if (!sig.ok()) state.SkipWithError(sig.status().ToString().c_str());
    benchmark::DoNotOptimize(sig);
  }
  double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  b.set_sign_ns(ns / static_cast<double>(state.iterations()));
  state.counters["sign_us"] = b.SignNs() / 1000.0;
  state.SetItemsProcessed(state.iterations());
}

}  // namespace qseal::formats::bench
