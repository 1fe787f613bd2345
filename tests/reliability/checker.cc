#include "tests/reliability/checker.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

#include <dirent.h>
#include <nlohmann/json.hpp>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "cli/http_client.h"
#include "queue/queue.h"
#include "tests/testing/qseald_harness.h"
#include "tests/testing/testing.h"

namespace qseal::reliability {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename());
  return names;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Digest of a file with the named algorithm (streamed); "" when it cannot be read.
std::string FileDigest(const std::string& path, const EVP_MD* md) {
  std::ifstream in(path, std::ios::binary);
  if (!in || md == nullptr) return "";
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), md, nullptr);
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

bool ToTime(const ASN1_TIME* t, Clock::time_point* out) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return false;
  *out = Clock::from_time_t(timegm(&tm));
  return true;
}

std::string Iso(Clock::time_point t) {
  std::time_t tt = Clock::to_time_t(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The signed attributes, read with libcrypto rather than with qseal's own code.
std::string CheckAttributes(const std::string& seal_path, const std::string& original_path,
                            const RunWindow& window) {
  std::string der = testing::ReadFile(seal_path);
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<CMS_ContentInfo, decltype(&CMS_ContentInfo_free)> cms(
      d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())), &CMS_ContentInfo_free);
  if (!cms) return "not DER CMS";
  STACK_OF(CMS_SignerInfo)* sis = CMS_get0_SignerInfos(cms.get());
  if (sis == nullptr || sk_CMS_SignerInfo_num(sis) != 1) return "not exactly one SignerInfo";
  CMS_SignerInfo* si = sk_CMS_SignerInfo_value(sis, 0);
  X509_ALGOR* dig_alg = nullptr;
  CMS_SignerInfo_get0_algs(si, nullptr, nullptr, &dig_alg, nullptr);
  const ASN1_OBJECT* dig_obj = nullptr;
  if (dig_alg != nullptr) X509_ALGOR_get0(&dig_obj, nullptr, nullptr, dig_alg);
  const EVP_MD* md = dig_obj != nullptr ? EVP_get_digestbyobj(dig_obj) : nullptr;
  if (md == nullptr) return "unknown digest algorithm";

  auto* mdv = static_cast<ASN1_OCTET_STRING*>(CMS_signed_get0_data_by_OBJ(
      si, OBJ_nid2obj(NID_pkcs9_messageDigest), -3, V_ASN1_OCTET_STRING));
  if (mdv == nullptr) return "no message-digest attribute";
  std::string expected = FileDigest(original_path, md);
  if (expected.empty()) return "cannot read the original " + original_path;
  std::string got(reinterpret_cast<const char*>(ASN1_STRING_get0_data(mdv)),
                  static_cast<std::size_t>(ASN1_STRING_length(mdv)));
  if (got != expected) return "message-digest differs from the digest of the original";

  int idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
  if (idx < 0) return "no signing-time attribute";
  X509_ATTRIBUTE* attr = CMS_signed_get_attr(si, idx);
  if (X509_ATTRIBUTE_count(attr) != 1) return "signing-time has not exactly one value";
  ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(attr, 0);
  Clock::time_point signing_time;
  if (value == nullptr ||
      (value->type != V_ASN1_UTCTIME && value->type != V_ASN1_GENERALIZEDTIME) ||
      !ToTime(value->value.asn1_string, &signing_time)) {
    return "unreadable signing-time";
  }

  STACK_OF(X509)* certs = CMS_get1_certs(cms.get());
  X509* signer = nullptr;
  for (int i = 0; certs != nullptr && i < sk_X509_num(certs); ++i) {
    if (CMS_SignerInfo_cert_cmp(si, sk_X509_value(certs, i)) == 0) signer = sk_X509_value(certs, i);
  }
  std::string problem;
  Clock::time_point not_before, not_after;
  if (signer == nullptr) {
    problem = "the signer certificate is not in the seal";
  } else if (!ToTime(X509_get0_notBefore(signer), &not_before) ||
             !ToTime(X509_get0_notAfter(signer), &not_after)) {
    problem = "unreadable certificate validity";
  } else if (signing_time < not_before || signing_time > not_after) {
    problem = "signing-time " + Iso(signing_time) + " outside the certificate's validity " +
              Iso(not_before) + " .. " + Iso(not_after);
  } else if (signing_time < window.begin - std::chrono::seconds(1) ||
             signing_time > window.end + std::chrono::seconds(1)) {
    problem = "signing-time " + Iso(signing_time) + " outside the run " + Iso(window.begin) +
              " .. " + Iso(window.end);
  }
  sk_X509_pop_free(certs, X509_free);
  return problem;
}

std::string Sha256Hex(const std::string& path) {
  std::string raw = FileDigest(path, EVP_sha256());
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : raw) {
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  return hex;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Runs `work(i, t)` for i in [0, n) on `threads` threads; t in [0, threads) names the thread
// (so that each keeps its own HTTP connection).
void Parallel(std::size_t n, int threads,
              const std::function<void(std::size_t i, std::size_t thread)>& work) {
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < static_cast<std::size_t>(std::max(1, threads)); ++t) {
    pool.emplace_back([&, t] {
      for (std::size_t i = next++; i < n; i = next++) work(i, t);
    });
  }
  for (auto& t : pool) t.join();
}

// A client of the run's API; kept for many requests (one TLS handshake, not one per request).
std::unique_ptr<cli::HttpClient> ApiClient(const RunOutputs& outputs,
                                           std::chrono::seconds timeout) {
  return std::make_unique<cli::HttpClient>(
      outputs.api, outputs.token, timeout,
      cli::TlsClientFiles{.ca_file = outputs.ca_file, .cert_file = "", .key_file = ""});
}

}  // namespace

Ledger::Ledger(std::string dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }

std::string Ledger::Keep(const std::string& bytes) {
  std::size_t n;
  {
    MutexLock lock(mu_);
    n = next_file_++;
  }
  std::string path = dir_ + "/doc" + std::to_string(n) + ".bin";
  testing::WriteFile(path, bytes);
  return path;
}

void Ledger::Accepted(Submission s) {
  MutexLock lock(mu_);
  accepted_.push_back(std::move(s));
}

void Ledger::TimedOut(Via /*via*/, const std::string& /*name*/) {
  MutexLock lock(mu_);
  ++timed_out_;
}

void Ledger::Rejected(Via /*via*/, const std::string& /*name*/, int http_status) {
  MutexLock lock(mu_);
  rejected_.push_back(http_status);
}

std::vector<Submission> Ledger::accepted() const {
  MutexLock lock(mu_);
  return accepted_;
}
std::size_t Ledger::accepted_count() const {
  MutexLock lock(mu_);
  return accepted_.size();
}
std::size_t Ledger::timed_out_count() const {
  MutexLock lock(mu_);
  return timed_out_;
}
std::size_t Ledger::rejected_count() const {
  MutexLock lock(mu_);
  return rejected_.size();
}

std::string Ledger::Summary() const {
  MutexLock lock(mu_);
  std::size_t api = 0;
  for (const auto& s : accepted_) api += s.via == Via::kApi ? 1 : 0;
  std::map<int, int> by_status;
  for (int r : rejected_) by_status[r]++;
  std::ostringstream out;
  out << "accepted=" << accepted_.size() << " (api=" << api << ", watch=" << accepted_.size() - api
      << ") timed_out=" << timed_out_ << " rejected=" << rejected_.size() << "{";
  for (const auto& [status, n] : by_status) out << status << ":" << n << " ";
  out << "}";
  return out.str();
}

RunWindow RunWindow::StartNow() {
  RunWindow w;
  w.begin = Clock::now();
  w.end = w.begin + std::chrono::hours(24 * 365 * 100);
  return w;
}

void RunWindow::Close() { end = Clock::now(); }

std::string CheckReport::ToString() const {
  std::ostringstream out;
  out << problems.size() << " problem(s), " << seals_verified << " seal(s) verified";
  for (std::size_t i = 0; i < problems.size() && i < 20; ++i) out << "\n  " << problems[i];
  return out.str();
}

std::uint64_t SeedFromEnv() {
  const char* env = std::getenv("QSEAL_SEED");
  if (env != nullptr && *env != '\0') return std::strtoull(env, nullptr, 10);
  return std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32);
}

Status WaitUntilSettled(const Ledger& ledger, const RunOutputs& outputs,
                        std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<Submission> pending = ledger.accepted();
  std::string missing;
  std::unique_ptr<cli::HttpClient> client = ApiClient(outputs, std::chrono::seconds(10));
  while (true) {
    std::vector<Submission> still;
    for (const auto& s : pending) {
      bool done = false;
      if (s.via == Via::kApi) {
        auto r = client->Request("GET", "/v1/documents/" + s.id);
        if (r.ok() && r->status == 200) {
          auto j = nlohmann::json::parse(r->body, nullptr, false);
          std::string st = j.is_object() ? j.value("status", "") : "";
          done = st == "sealed" || st == "failed";
        }
      } else {
        for (const auto& root : outputs.watch_roots) {
          done = done || Exists(root + "/outbox/" + s.name + ".p7s") ||
                 Exists(root + "/outbox/" + s.name + ".p7m") ||
                 Exists(root + "/failed/" + s.name + ".error.json");
        }
      }
      if (!done) still.push_back(s);
    }
    pending = std::move(still);
    std::size_t busy = 0;
    for (const auto& root : outputs.watch_roots) {
      for (const auto& n : ListDir(root + "/inbox")) busy += n[0] == '.' ? 0 : 1;
      busy += ListDir(root + "/processing").size();
    }
    if (pending.empty() && busy == 0) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline) {
      missing = std::to_string(pending.size()) + " accepted document(s) not final, first: " +
                (pending.empty() ? "-" : pending.front().id) + "; " + std::to_string(busy) +
                " file(s) left in inbox/ or processing/";
      return DeadlineExceededError(missing);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::string CheckSeal(const std::string& seal_path, const std::string& original_path,
                      const std::string& ca_pem, const RunWindow& window, bool enveloping,
                      bool with_openssl) {
  if (!with_openssl) return CheckAttributes(seal_path, original_path, window);
  std::string out_path = enveloping ? seal_path + ".content" : "";
  std::string err =
      testing::OpensslVerify(seal_path, ca_pem, enveloping ? "" : original_path, out_path);
  if (!err.empty()) return "openssl cms -verify: " + err.substr(0, 300);
  if (enveloping && testing::ReadFile(out_path) != testing::ReadFile(original_path)) {
    return "the enveloped content differs from the original";
  }
  return CheckAttributes(seal_path, original_path, window);
}

CheckReport CheckRun(const Ledger& ledger, const RunOutputs& outputs, const std::string& ca_pem,
                     const RunWindow& window, const CheckOptions& options) {
  CheckReport report;
  Mutex mu;
  std::vector<Submission> accepted = ledger.accepted();
  auto problem = [&](const std::string& p) {
    MutexLock lock(mu);
    report.problems.push_back(p);
  };
  std::string work = ledger.dir() + "/check";
  fs::create_directories(work);

  std::set<std::string> ids;
  std::map<std::string, std::string> watch_names;  // name -> original
  std::size_t api_count = 0;
  for (const auto& s : accepted) {
    if (s.via == Via::kApi) {
      api_count++;
      if (!ids.insert(s.id).second) problem("id " + s.id + " answered for two submissions");
    } else if (!watch_names.emplace(s.name, s.original).second) {
      problem("watch name " + s.name + " submitted twice by the load generator");
    }
  }

  std::atomic<std::size_t> verified{0};
  std::vector<std::unique_ptr<cli::HttpClient>> clients;
  for (int t = 0; t < std::max(1, options.parallelism); ++t) {
    clients.push_back(ApiClient(outputs, std::chrono::seconds(30)));
  }
  Parallel(accepted.size(), options.parallelism, [&](std::size_t i, std::size_t thread) {
    const Submission& s = accepted[i];
    if (s.via == Via::kApi) {
      cli::HttpClient& client = *clients[thread];
      auto st = client.Request("GET", "/v1/documents/" + s.id);
      if (!st.ok() || st->status != 200) {
        problem("api " + s.id + ": status not readable: " +
                (st.ok() ? std::to_string(st->status) : st.status().ToString()));
        return;
      }
      auto j = nlohmann::json::parse(st->body, nullptr, false);
      std::string state = j.is_object() ? j.value("status", "") : "";
      if (state != "sealed") {
        if (!(state == "failed" && options.may_fail.count(s.id) > 0)) {
          problem("api " + s.id + " (" + s.name + "): " + state + " " + st->body.substr(0, 300));
        }
        return;
      }
      if (j.value("sha256", "") != Sha256Hex(s.original)) {
        problem("api " + s.id + ": sha256 differs from the submitted bytes");
      }
      std::string seal = work + "/" + s.id + ".seal";
      auto dl = client.Download("/v1/documents/" + s.id + "/seal", seal);
      if (!dl.ok() || dl->status != 200) {
        problem("api " + s.id + ": seal not fetchable");
        return;
      }
      bool enveloping = dl->Header("content-type").find("pkcs7-mime") != std::string::npos;
      std::string err = CheckSeal(seal, s.original, ca_pem, window, enveloping,
                                  i % std::max<std::size_t>(1, options.openssl_every) == 0);
      std::filesystem::remove(seal);
      if (!err.empty()) {
        problem("api " + s.id + ": " + err);
      } else {
        verified++;
      }
      return;
    }
    for (const auto& root : outputs.watch_roots) {
      std::string out = root + "/outbox/" + s.name;
      bool p7s = Exists(out + ".p7s"), p7m = Exists(out + ".p7m");
      if (!p7s && !p7m) continue;
      if (p7s && p7m) problem("watch " + s.name + ": two seals (.p7s and .p7m)");
      if (Sha256Hex(out) != Sha256Hex(s.original)) {
        problem("watch " + s.name + ": outbox original differs from the submitted bytes");
      }
      std::string err = CheckSeal(p7s ? out + ".p7s" : out + ".p7m", s.original, ca_pem, window,
                                  !p7s, i % std::max<std::size_t>(1, options.openssl_every) == 0);
      if (!err.empty()) {
        problem("watch " + s.name + ": " + err);
      } else {
        verified++;
      }
      return;
    }
    if (options.may_fail.count(s.name) == 0) {
      std::string why;
      for (const auto& root : outputs.watch_roots) {
        std::string json = root + "/failed/" + s.name + ".error.json";
        if (Exists(json)) why = testing::ReadFile(json).substr(0, 300);
      }
      problem("watch " + s.name + ": no seal in outbox/" +
              (why.empty() ? "" : " (failed: " + why + ")"));
    }
  });
  report.seals_verified = verified.load();

  // Nothing in the watched folders that nobody submitted, and nothing half-written.
  for (const auto& root : outputs.watch_roots) {
    for (const auto& n : ListDir(root + "/outbox")) {
      std::string base = n;
      if (EndsWith(n, ".p7s") || EndsWith(n, ".p7m")) base = n.substr(0, n.size() - 4);
      if (watch_names.count(base) == 0) problem("unexpected file outbox/" + n);
    }
    for (const auto& n : ListDir(root + "/failed")) {
      std::string base = EndsWith(n, ".error.json") ? n.substr(0, n.size() - 11) : n;
      if (watch_names.count(base) == 0) problem("unexpected file failed/" + n);
    }
    for (const auto& n : ListDir(root + "/inbox")) {
      if (n[0] != '.') problem("left in inbox/: " + n);
    }
    for (const auto& n : ListDir(root + "/processing")) problem("left in processing/: " + n);
  }

  (void)api_count;
  return report;
}

CheckReport CheckQueue(const Ledger& ledger, const std::string& queue_path) {
  CheckReport report;
  queue::QueueOptions qo;
  qo.path = queue_path;
  auto q = queue::Queue::Open(qo);
  if (!q.ok()) {
    report.problems.push_back("queue does not open: " + q.status().ToString());
    return report;
  }
  queue::QueueStats stats = (*q)->Stats();
  std::size_t upper = ledger.accepted_count() + ledger.timed_out_count();
  if (stats.sealed > upper) {
    report.problems.push_back("the queue counts " + std::to_string(stats.sealed) +
                              " sealed documents, but only " + std::to_string(upper) +
                              " were accepted or timed out");
  }
  if (stats.sealed + stats.failed < ledger.accepted_count()) {
    report.problems.push_back("the queue counts " + std::to_string(stats.sealed + stats.failed) +
                              " final documents, fewer than the " +
                              std::to_string(ledger.accepted_count()) + " accepted");
  }
  if (stats.queued + stats.leased > 0) {
    report.problems.push_back("the queue still holds " +
                              std::to_string(stats.queued + stats.leased) +
                              " unfinished document(s)");
  }
  Status closed = (*q)->Close();
  if (!closed.ok()) report.problems.push_back("queue close: " + closed.ToString());
  return report;
}

}  // namespace qseal::reliability
