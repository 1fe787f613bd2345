#include "tests/reliability/load_generator.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "tests/testing/testing.h"

namespace qseal::reliability {

namespace {

std::size_t SizeOf(std::uint64_t seed, std::uint64_t index, std::size_t lo, std::size_t hi) {
  std::mt19937_64 rng(seed * 1000003 + index);
  return hi <= lo ? lo : lo + static_cast<std::size_t>(rng() % (hi - lo + 1));
}

// Sleeps until the next slot of a `per_second` schedule shared by `n` paced callers.
void Pace(double per_second, int n, std::chrono::steady_clock::time_point& next) {
  if (per_second <= 0) return;
  auto step = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(n / per_second));
  next += step;
  std::this_thread::sleep_until(next);
}

}  // namespace

LoadGenerator::LoadGenerator(Ledger& ledger, LoadOptions options)
    : ledger_(ledger), options_(std::move(options)), api_(options_.api) {}

LoadGenerator::~LoadGenerator() { Stop(); }

std::string LoadGenerator::Content(std::uint64_t seed, std::uint64_t index, std::size_t size) {
  std::string s(size, '\0');
  std::uint64_t x = (seed ^ (index * 0x9E3779B97F4A7C15ull)) | 1;
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x & 0xff);
  }
  return s;
}

void LoadGenerator::Start() {
  for (int t = 0; !options_.token.empty() && t < options_.api_threads; ++t) {
    running_++;
    threads_.emplace_back([this, t] { ApiLoop(t); });
  }
  if (!options_.watch_root.empty()) {
    running_++;
    threads_.emplace_back([this] { WatchLoop(); });
  }
}

void LoadGenerator::Stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void LoadGenerator::SetApi(const std::string& api) {
  MutexLock lock(mu_);
  api_ = api;
}

std::string LoadGenerator::Api() const {
  MutexLock lock(mu_);
  return api_;
}

bool LoadGenerator::WaitUntilDone(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running_.load() > 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

void LoadGenerator::ApiLoop(int /*thread*/) {
  auto next = std::chrono::steady_clock::now();
  while (!stop_) {
    std::string api = Api();
    if (api.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    std::size_t i = api_next_++;
    if (options_.max_api_documents > 0 && i >= options_.max_api_documents) break;
    Pace(options_.api_per_second, options_.api_threads, next);
    std::string name = "a" + std::to_string(i) + ".bin";
    std::string bytes =
        Content(options_.seed, i, SizeOf(options_.seed, i, options_.min_bytes, options_.max_bytes));
    std::string original = ledger_.Keep(bytes);
    cli::HttpClient client(api, options_.token, options_.timeout,
                           {.ca_file = options_.ca_file, .cert_file = "", .key_file = ""});
    api_sent_++;
    auto sent = std::chrono::steady_clock::now();
    auto r = client.Request("POST", "/v1/documents?profile=" + options_.profile, bytes,
                            {{"X-Filename", name}});
    if (!r.ok()) {
      ledger_.TimedOut(Via::kApi, name);
      continue;
    }
    if (r->status == 202 || r->status == 200) {
      auto j = nlohmann::json::parse(r->body, nullptr, false);
      std::string id = j.is_object() ? j.value("id", "") : "";
      if (!id.empty()) {
        ledger_.Accepted({Via::kApi, id, name, original, sent});
        continue;
      }
    }
    // A 5xx to a POST does not say the document was not stored (e.g. 503 after a failed WAL
    // sync whose record may still be recovered): its outcome is unknown, like a lost reply.
    if (r->status >= 500) {
      ledger_.TimedOut(Via::kApi, name);
    } else {
      ledger_.Rejected(Via::kApi, name, r->status);
    }
    if (r->status == 503) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  running_--;
}

void LoadGenerator::WatchLoop() {
  auto next = std::chrono::steady_clock::now();
  const std::uint64_t seed = options_.seed ^ 0x5a5a5a5aull;
  for (std::size_t i = 0; !stop_; ++i) {
    if (options_.max_watch_documents > 0 && i >= options_.max_watch_documents) break;
    Pace(options_.watch_per_second, 1, next);
    std::string name = "w" + std::to_string(i) + ".bin";
    std::string bytes = Content(seed, i, SizeOf(seed, i, options_.min_bytes, options_.max_bytes));
    std::string original = ledger_.Keep(bytes);
    std::string tmp = options_.watch_root + "/inbox/." + name + ".tmp";
    watch_sent_++;
    auto sent = std::chrono::steady_clock::now();
    // O_CLOEXEC: a qseald forked meanwhile must not inherit a writer on an inbox file (the
    // watcher leaves files open for writing alone until they are closed).
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0;
    if (ok) {
      ok = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
      ok = ::close(fd) == 0 && ok;
    }
    if (ok) ok = std::rename(tmp.c_str(), (options_.watch_root + "/inbox/" + name).c_str()) == 0;
    if (ok) {
      ledger_.Accepted({Via::kWatch, name, name, original, sent});
    } else {
      std::remove(tmp.c_str());
      ledger_.Rejected(Via::kWatch, name, 0);
    }
  }
  running_--;
}

}  // namespace qseal::reliability
