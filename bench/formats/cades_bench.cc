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

#include "bench/formats/hsm_baseline.h"
#include "formats/cades/cades.h"
#include "tests/formats/cades_test_util.h"

namespace qseal::formats::cades {
namespace {

using bench::BM_SoftHsmEcdsaP256Sign;
using bench::HsmBaseline;
using std::chrono::steady_clock;

// The CAdES context and a document over the shared SoftHSM2 key (bench/formats/hsm_baseline.h).
struct Setup {
  std::shared_ptr<const SignerContext> context;
  Bytes content;         // a 2 KiB document (a typical invoice is a few KiB)
  Bytes content_digest;  // its SHA-256, as the engine's hash stage hands it over
  Bytes signature;       // one real signature, reused: the format cost does not depend on it

  static Setup& Get() {
    static Setup s;
    return s;
  }

  Setup() {
    HsmBaseline& b = HsmBaseline::Get();
    auto ctx = SignerContext::Create(b.chain(), DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
    if (!ctx.ok()) HsmBaseline::Die(ctx.status());
    context = *ctx;
    content.resize(2048);
    formats::testing::PseudoRandomStream(7).Fill(content);
    content_digest.resize(32);
    unsigned int len = 0;
    EVP_Digest(content.data(), content.size(), content_digest.data(), &len, EVP_sha256(), nullptr);
    auto tbs = BuildToBeSigned(*context, content_digest, std::chrono::system_clock::now());
    if (!tbs.ok()) HsmBaseline::Die(tbs.status());
    signature = b.Sign(tbs->digest);
  }
};

void ReportRatio(benchmark::State& state, double elapsed_ns) {
  HsmBaseline::Get().ReportRatio(state, elapsed_ns);
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
  Bytes sig = HsmBaseline::Get().Sign(tbs->digest);
  auto start = steady_clock::now();
  for (auto _ : state) {
    Status st = s.context->VerifySignature(tbs->signed_attributes_der, sig);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
  }
  ReportRatio(state, std::chrono::duration<double, std::nano>(steady_clock::now() - start).count());
}
BENCHMARK(BM_CadesVerifySignatureP256)->MinTime(0.5)->UseRealTime();

}  // namespace
}  // namespace qseal::formats::cades

BENCHMARK_MAIN();
