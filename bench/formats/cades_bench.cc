// What formats/cades costs per document (build the signed attributes + assemble the seal) next to
// what the HSM signature costs: one ECDSA P-256 C_Sign on SoftHSM2, measured in the same run.
// Each format benchmark reports `us_per_doc`, `sign_us` (the baseline) and `ratio` (format /
// sign); the target is ratio < 0.10.
//
//   build/bench/formats/cades_bench [--benchmark_filter=...]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <benchmark/benchmark.h>

#include "formats/cades/cades.h"
#include "tests/formats/cades_test_util.h"
#include "tests/formats/p11_test_signer.h"
#include "tests/testing/testing.h"

namespace qseal::formats::cades {
namespace {

using std::chrono::steady_clock;

// The SoftHSM2 token with a P-256 key and its certificate chain, made once per process.
struct Setup {
  qseal::testing::TempDir dir;
  std::unique_ptr<formats::testing::P11TestSigner> signer;
  std::shared_ptr<const SignerContext> context;
  Bytes content;         // a 2 KiB document (a typical invoice is a few KiB)
  Bytes content_digest;  // its SHA-256, as the engine's hash stage hands it over
  Bytes signature;       // one real signature, reused: the format cost does not depend on it
  double sign_ns = 0;    // measured C_Sign baseline

  // Destroyed at exit: the session closes, then the token directory goes.
  static Setup& Get() {
    static Setup s;
    return s;
  }

  Setup() {
    auto hsm = qseal::testing::ProvisionSoftHsm(dir.Sub("hsm"), {"bench"}, "ec-p256", "seal");
    if (!hsm.ok()) Die(hsm.status());
    auto opened = formats::testing::P11TestSigner::Open(hsm->module, "bench", hsm->pin, "seal");
    if (!opened.ok()) Die(opened.status());
    signer = std::move(opened).value();
    auto ctx = SignerContext::Create(formats::testing::LoadPemCertificates(hsm->ChainPem("seal")),
                                     DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
    if (!ctx.ok()) Die(ctx.status());
    context = *ctx;
    content.resize(2048);
    formats::testing::PseudoRandomStream(7).Fill(content);
    content_digest.resize(32);
    unsigned int len = 0;
    EVP_Digest(content.data(), content.size(), content_digest.data(), &len, EVP_sha256(), nullptr);
    auto tbs = BuildToBeSigned(*context, content_digest, std::chrono::system_clock::now());
    if (!tbs.ok()) Die(tbs.status());
    auto sig = signer->Sign(tbs->digest, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
    if (!sig.ok()) Die(sig.status());
    signature = *sig;
  }

  // The baseline, measured on first use if BM_SoftHsmEcdsaP256Sign did not run before.
  double SignNs() {
    if (sign_ns == 0) {
      Bytes digest(32, 0x5A);
      constexpr int kN = 2000;
      auto start = steady_clock::now();
      for (int i = 0; i < kN; ++i) {
        auto sig = signer->Sign(digest, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
        if (!sig.ok()) Die(sig.status());
      }
      sign_ns = std::chrono::duration<double, std::nano>(steady_clock::now() - start).count() / kN;
    }
    return sign_ns;
  }

  [[noreturn]] static void Die(const Status& s) {
    std::fprintf(stderr, "cades_bench setup: %s\n", s.ToString().c_str());
    std::exit(1);
  }
};

void ReportRatio(benchmark::State& state, double elapsed_ns) {
  double per_doc_ns = elapsed_ns / static_cast<double>(state.iterations());
  double sign_ns = Setup::Get().SignNs();
  state.counters["us_per_doc"] = per_doc_ns / 1000.0;
  state.counters["sign_us"] = sign_ns / 1000.0;
  state.counters["ratio"] = per_doc_ns / sign_ns;
  state.SetItemsProcessed(state.iterations());
}

// Baseline: one ECDSA P-256 C_Sign of a SHA-256 digest on SoftHSM2 (with the r||s -> DER step).
void BM_SoftHsmEcdsaP256Sign(benchmark::State& state) {
  Setup& s = Setup::Get();
  Bytes digest(32, 0x5A);
  auto start = steady_clock::now();
  for (auto _ : state) {
    auto sig = s.signer->Sign(digest, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
    if (!sig.ok()) state.SkipWithError(sig.status().ToString().c_str());
    benchmark::DoNotOptimize(sig);
  }
  double ns = std::chrono::duration<double, std::nano>(steady_clock::now() - start).count();
  s.sign_ns = ns / static_cast<double>(state.iterations());
  state.counters["sign_us"] = s.sign_ns / 1000.0;
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SoftHsmEcdsaP256Sign)->MinTime(1.0)->UseRealTime();

// To-be-signed + detached assembly: everything formats/ does per .p7s.
void BM_CadesDetachedPerDocument(benchmark::State& state) {
  Setup& s = Setup::Get();
  auto now = std::chrono::system_clock::now();
  auto start = steady_clock::now();
  for (auto _ : state) {
    auto tbs = BuildToBeSigned(*s.context, s.content_digest, now);
    auto seal = AssembleDetached(*s.context, *tbs, s.signature);
    benchmark::DoNotOptimize(seal);
  }
  ReportRatio(state, std::chrono::duration<double, std::nano>(steady_clock::now() - start).count());
}
BENCHMARK(BM_CadesDetachedPerDocument)->MinTime(1.0)->UseRealTime();

// To-be-signed + enveloping assembly of the 2 KiB document streamed into memory (includes the
// re-hash of the streamed content that guards against a document changed after hashing).
void BM_CadesEnvelopingPerDocument2KiB(benchmark::State& state) {
  Setup& s = Setup::Get();
  auto now = std::chrono::system_clock::now();
  Bytes out;
  out.reserve(16384);
  WriteFn sink = [&out](ByteSpan piece) {
    out.insert(out.end(), piece.begin(), piece.end());
    return Status::Ok();
  };
  auto start = steady_clock::now();
  for (auto _ : state) {
    out.clear();
    auto tbs = BuildToBeSigned(*s.context, s.content_digest, now);
    Status st = AssembleEnveloping(*s.context, *tbs, s.signature, s.content.size(),
                                   formats::testing::SpanReader(s.content), sink);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  ReportRatio(state, std::chrono::duration<double, std::nano>(steady_clock::now() - start).count());
}
BENCHMARK(BM_CadesEnvelopingPerDocument2KiB)->MinTime(1.0)->UseRealTime();

// The software check of each HSM signature before release (engine step 6), for reference.
void BM_CadesVerifySignatureP256(benchmark::State& state) {
  Setup& s = Setup::Get();
  auto tbs = BuildToBeSigned(*s.context, s.content_digest, std::chrono::system_clock::now());
  auto sig = s.signer->Sign(tbs->digest, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  auto start = steady_clock::now();
  for (auto _ : state) {
    Status st = s.context->VerifySignature(tbs->signed_attributes_der, *sig);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
  }
  ReportRatio(state, std::chrono::duration<double, std::nano>(steady_clock::now() - start).count());
}
BENCHMARK(BM_CadesVerifySignatureP256)->MinTime(0.5)->UseRealTime();

}  // namespace
}  // namespace qseal::formats::cades

BENCHMARK_MAIN();
