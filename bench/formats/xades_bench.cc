// What formats/xades costs per invoice (Prepare: parse, insert, three canonicalisations and
// digests; Assemble: the splice and the re-hash) next to one ECDSA P-256 C_Sign on SoftHSM2
// measured in the same run (bench/formats/hsm_baseline.h). Each benchmark reports `us_per_doc`,
// `sign_us` and `ratio` (format / sign); issue 16's goal is ratio < 0.5 for a 2 KiB invoice.
//
//   build/bench/formats/xades_bench [--benchmark_filter=...]
#include <chrono>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>

#include "bench/formats/hsm_baseline.h"
#include "formats/format.h"
#include "tests/formats/cades_test_util.h"

namespace qseal::formats {
namespace {

using bench::BM_SoftHsmEcdsaP256Sign;
using bench::HsmBaseline;
using std::chrono::steady_clock;

// A UBL 2.1 invoice of about `size` bytes: the header of the test sample, then invoice lines.
std::string Invoice(std::size_t size) {
  std::string doc = qseal::testing::ReadFile(std::string(QSEAL_SOURCE_DIR) +
                                             "/tests/formats/data/ubl-invoice.xml");
  const std::size_t line_at = doc.find("<cac:InvoiceLine>");
  const std::size_t line_end = doc.find("</cac:InvoiceLine>") + 18;
  const std::string line = doc.substr(line_at, line_end - line_at) + "\n  ";
  doc.erase(line_at, line_end - line_at);
  // The sample without its line is ~3 KiB; a 2 KiB invoice drops the header comment and notes.
  if (size < doc.size()) {
    doc.erase(doc.find("<!--"), doc.find("-->") + 4 - doc.find("<!--"));
    doc.erase(doc.find("  <cac:TaxTotal>"),
              doc.find("<cac:LegalMonetaryTotal>") - doc.find("  <cac:TaxTotal>"));
  }
  std::string lines = line;
  while (doc.size() + lines.size() < size) lines += line;
  doc.insert(doc.find("</Invoice>"), lines);
  return doc;
}

void BM_Xades(benchmark::State& state, const char* format_name, std::size_t size) {
  HsmBaseline& b = HsmBaseline::Get();
  FormatOptions options;
  options.certificate_chain_der = b.chain();
  auto format = CreateFormat(format_name, options);
  if (!format.ok()) HsmBaseline::Die(format.status());
  const std::string doc = Invoice(size);
  Content content;
  content.size = doc.size();
  content.name = "invoice.xml";
  content.open = [&doc]() -> Result<ReadFn> { return formats::testing::SpanReader(AsBytes(doc)); };
  auto first = (*format)->Prepare(content, std::chrono::system_clock::now());
  if (!first.ok()) HsmBaseline::Die(first.status());
  const Bytes signature = b.Sign((*first)->digest);  // reused: the cost does not depend on it
  std::string out;
  out.reserve(doc.size() + 16384);
  WriteFn sink = [&out](ByteSpan piece) {
    out.append(AsChars(piece));
    return Status::Ok();
  };
  auto now = std::chrono::system_clock::now();
  auto start = steady_clock::now();
  for (auto _ : state) {
    out.clear();
    auto tbs = (*format)->Prepare(content, now);
    if (!tbs.ok()) state.SkipWithError(tbs.status().ToString().c_str());
    Status st = (*format)->Assemble(**tbs, signature, content, sink);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  b.ReportRatio(state,
                std::chrono::duration<double, std::nano>(steady_clock::now() - start).count());
  state.counters["doc_bytes"] = static_cast<double>(doc.size());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * doc.size()));
}

BENCHMARK(BM_SoftHsmEcdsaP256Sign)->MinTime(1.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Xades, Enveloped2KiB, "xades-enveloped", 2048)->MinTime(1.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Xades, Detached2KiB, "xades-detached", 2048)->MinTime(1.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Xades, Enveloped1MiB, "xades-enveloped", 1 << 20)
    ->MinTime(1.0)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Xades, Detached1MiB, "xades-detached", 1 << 20)
    ->MinTime(1.0)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace qseal::formats

BENCHMARK_MAIN();
