#include "bench/e2e/corpus.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

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

Corpus MakeCorpus(const std::string& dir, const std::string& kind, int n) {
  fs::create_directories(dir);
  Corpus c;
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "inv-%07d.txt", i);
    std::string path = dir + "/" + name;
    std::size_t size = SizeFor(kind, i);
    if (!fs::exists(path) || fs::file_size(path) != size) {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      std::string body = Content(i, size);
      out.write(body.data(), static_cast<std::streamsize>(body.size()));
    }
    c.names.push_back(name);
    c.paths.push_back(path);
    c.bytes += size;
  }
  return c;
}

}  // namespace qseal::bench::e2e
