#include "bench/e2e/corpus.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "tests/formats/pdf_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::bench::e2e {
namespace {

namespace fs = std::filesystem;

// Deterministic sizes. invoice: 2 KiB each. mix: 74 % about 2 KiB, 20 % 40 KiB, 5 % 300 KiB,
// 1 % between 1 and 10 MiB.
std::size_t SizeFor(const std::string& corpus, int i) {
  if (corpus == "invoice") return 2048;
  if (i % 100 == 50) return (static_cast<std::size_t>((i / 100) % 10) + 1) << 20;
  if (i % 20 == 3) return 300u << 10;
  if (i % 5 == 1) return 40u << 10;
  return 1800 + static_cast<std::size_t>(i % 9) * 64;
}

}  // namespace

std::string Content(int i, std::size_t size) {
  std::string s = "INVOICE " + std::to_string(1000000 + i) +
                  "\nCustomer: ACME\nAmount: " + std::to_string(i * 37 % 100000) + ".00 EUR\n";
  std::uint64_t x = static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ull + 1;
  static const char* kHex = "0123456789abcdef";
  while (s.size() < size) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    for (int k = 0; k < 16 && s.size() < size; ++k) s.push_back(kHex[(x >> (4 * k)) & 15]);
  }
  s.resize(size);
  return s;
}

std::string UblInvoice(int i) {
  static const std::string kSample =
      testing::ReadFile(std::string(QSEAL_SOURCE_DIR) + "/tests/formats/data/ubl-invoice.xml");
  const std::string from = "INV-2026-0042";
  std::string doc = kSample;
  std::size_t at = doc.find(from);
  if (at == std::string::npos) throw std::runtime_error("ubl-invoice.xml: no " + from);
  char number[16];
  std::snprintf(number, sizeof number, "INV-%09d", i);
  doc.replace(at, from.size(), number);
  return doc;
}

std::string InvoicePdf(int i) {
  // The page: fixed-width numbers, so every document has the same size.
  char line[96];
  std::string text = "BT /F1 11 Tf 56 786 Td 15 TL\n";
  std::snprintf(line, sizeof line, "(Invoice INV-%09d) Tj T*\n", i);
  text += line;
  text += "(Seller: ACME Trading GmbH, Hauptstrasse 1, 80331 Muenchen) Tj T*\n";
  text += "(Buyer: Example Retail SA, 1 rue de la Paix, 75002 Paris) Tj T*\n";
  std::uint64_t x = static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ull + 1;
  for (int k = 1; k <= 24; ++k) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::snprintf(line, sizeof line, "(Line %02d: article %06u x %03u at %07u.%02u EUR) Tj T*\n", k,
                  static_cast<unsigned>(x % 1000000), static_cast<unsigned>((x >> 20) % 1000),
                  static_cast<unsigned>((x >> 30) % 10000000), static_cast<unsigned>(x >> 58));
    text += line;
  }
  text += "ET\n";
  return formats::testing::HandWrittenPdf(
      {
          "<< /Type /Catalog /Pages 2 0 R >>",
          "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
          "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
          "/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
          "<< /Length " + std::to_string(text.size()) + " >>\nstream\n" + text + "endstream",
          "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
      },
      true);
}

Corpus MakeCorpus(const std::string& dir, const std::string& kind, int n) {
  fs::create_directories(dir);
  Corpus c;
  const bool ubl = kind == "ubl", pdf = kind == "pdf";
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "inv-%07d.%s", i, ubl ? "xml" : pdf ? "pdf" : "txt");
    std::string path = dir + "/" + name;
    std::string body = ubl ? UblInvoice(i) : pdf ? InvoicePdf(i) : "";
    std::size_t size = ubl || pdf ? body.size() : SizeFor(kind, i);
    if (!fs::exists(path) || fs::file_size(path) != size) {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      if (!ubl && !pdf) body = Content(i, size);
      out.write(body.data(), static_cast<std::streamsize>(body.size()));
    }
    c.names.push_back(name);
    c.paths.push_back(path);
    c.bytes += size;
  }
  return c;
}

}  // namespace qseal::bench::e2e
