// What formats/pades costs per document (Prepare: read + qpdf parse + incremental update +
// ByteRange digest + signed attributes; Assemble: CMS + re-read and re-hash + output) for a
// 2-page, 100 KiB PDF, next to one ECDSA P-256 C_Sign on SoftHSM2 measured in the same run.
// Each benchmark reports `us_per_doc`, `sign_us` (the baseline) and `ratio` (format / sign).
//
//   build/bench/formats/pades_bench [--benchmark_filter=...]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <benchmark/benchmark.h>

#include "formats/format.h"
#include "tests/formats/cades_test_util.h"
#include "tests/formats/p11_test_signer.h"
#include "tests/formats/pdf_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::formats {
namespace {

using std::chrono::steady_clock;

constexpr std::size_t kPdfBytes = 100 << 10;

struct Setup {
  qseal::testing::TempDir dir;
  std::unique_ptr<formats::testing::P11TestSigner> signer;
  std::unique_ptr<const Format> format;
  std::string pdf;
  Bytes signature;  // one real signature, reused: the format cost does not depend on it
  double sign_ns = 0;

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
    FormatOptions options;
    options.certificate_chain_der = formats::testing::LoadPemCertificates(hsm->ChainPem("seal"));
    auto f = CreateFormat("pades", options);
    if (!f.ok()) Die(f.status());
    format = std::move(f).value();
    // Two pages and a padding stream: 100 KiB with the qpdf overhead taken off.
    pdf = formats::testing::MakeQpdfPdf(2, formats::testing::XrefKind::kStream, kPdfBytes - 1500);
    Content content = formats::testing::StringContent(pdf);
    auto tbs = format->Prepare(content, std::chrono::system_clock::now());
    if (!tbs.ok()) Die(tbs.status());
    auto sig = signer->Sign((*tbs)->digest, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
    if (!sig.ok()) Die(sig.status());
    signature = *sig;
  }

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
    std::fprintf(stderr, "pades_bench setup: %s\n", s.ToString().c_str());
    std::exit(1);
  }
};

// Baseline: one ECDSA P-256 C_Sign of a SHA-256 digest on SoftHSM2.
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

// Prepare + Assemble of the 2-page 100 KiB PDF into memory: everything formats/ does per seal.
void BM_PadesPerDocument100KiB(benchmark::State& state) {
  Setup& s = Setup::Get();
  Content content = formats::testing::StringContent(s.pdf);
  content.read_chunk_bytes = 256 << 10;
  std::string out;
  out.reserve(s.pdf.size() + 16384);
  WriteFn sink = [&out](ByteSpan piece) {
    out.append(reinterpret_cast<const char*>(piece.data()), piece.size());
    return Status::Ok();
  };
  auto now = std::chrono::system_clock::now();
  auto start = steady_clock::now();
  for (auto _ : state) {
    out.clear();
    auto tbs = s.format->Prepare(content, now);
    if (!tbs.ok()) {
      state.SkipWithError(tbs.status().ToString().c_str());
      break;
    }
    Status st = s.format->Assemble(**tbs, s.signature, content, sink);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  double per_doc_ns =
      std::chrono::duration<double, std::nano>(steady_clock::now() - start).count() /
      static_cast<double>(state.iterations());
  double sign_ns = s.SignNs();
  state.counters["us_per_doc"] = per_doc_ns / 1000.0;
  state.counters["sign_us"] = sign_ns / 1000.0;
  state.counters["ratio"] = per_doc_ns / sign_ns;
  state.counters["pdf_bytes"] = static_cast<double>(s.pdf.size());
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(s.pdf.size()));
}
BENCHMARK(BM_PadesPerDocument100KiB)->MinTime(1.0)->UseRealTime();

}  // namespace
}  // namespace qseal::formats

BENCHMARK_MAIN();
