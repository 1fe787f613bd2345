// qsealctl submit: uploads files alone or in multipart batches, optionally waits for their seals
// and fetches them.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include "cli/commands.h"
#include "cli/detail/replies.h"
#include "cli/http_client.h"
#include "common/bytes.h"
#include "common/exit_codes.h"
#include "common/sha256.h"

namespace qseal::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using detail::Describe;
using detail::ExitForHttp;
using detail::ExitForTransport;
using detail::UrlEncode;
using detail::Worse;

// Header-safe file name: printable ASCII kept, everything else percent-encoded.
std::string HeaderSafe(const std::string& s) {
  std::ostringstream o;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f && c != '%') {
      o << c;
    } else {
      o << '%' << std::uppercase << std::hex << std::setw(2) << std::setfill('0')
        << static_cast<int>(c) << std::nouppercase << std::dec;
    }
  }
  return o.str();
}

// The seal's file name is the server's (its profile's format names it, e.g. "a.pdf.p7s"), with
// the name we sent (HeaderSafe-encoded) put back as we know it locally. Without a usable name
// (none, a path, a dot-file) the media type decides, as servers before Content-Disposition expect:
// "<name>.p7m" for application/pkcs7-mime, else "<name>.p7s".
std::string SealFileName(const std::string& content_disposition, const std::string& content_type,
                         const std::string& local_name) {
  const std::string fallback =
      local_name + (content_type.find("pkcs7-mime") != std::string::npos ? ".p7m" : ".p7s");
  const std::string key = "filename=\"";
  std::size_t start = content_disposition.find(key);
  std::size_t end = start == std::string::npos ? std::string::npos
                                               : content_disposition.find('"', start + key.size());
  if (end == std::string::npos) return fallback;
  std::string name = content_disposition.substr(start + key.size(), end - start - key.size());
  if (name.empty() || name.front() == '.' || name.find('/') != std::string::npos) {
    return fallback;
  }
  const std::string sent = HeaderSafe(local_name);
  if (name.compare(0, sent.size(), sent) == 0) name = local_name + name.substr(sent.size());
  return name;
}

std::string RandomKey() {
  std::uint8_t b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) {
    // Retries then lose their idempotency, nothing else; still unique enough per run.
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    return "qsealctl-" + std::to_string(now);
  }
  return "qsealctl-" + HexEncode(ByteSpan(b, sizeof(b)));
}

std::chrono::seconds RetryAfter(const HttpReply& reply, std::chrono::seconds cap) {
  long secs = 1;
  std::string v = reply.Header("retry-after");
  if (!v.empty()) {
    try {
      secs = std::stol(v);
    } catch (const std::exception&) {
      secs = 1;
    }
  }
  secs = std::clamp<long>(secs, 1, static_cast<long>(cap.count()));
  return std::chrono::seconds(secs);
}

bool IsFinal(const std::string& status) { return status == "sealed" || status == "failed"; }

struct DocumentOutcome {
  std::string name;
  std::string id = "-";
  std::string status;  // sealed, queued, failed, or "error: ..."
  int exit_code = kExitOk;
};

class Submitter {
 public:
  Submitter(const Endpoint& endpoint, const SubmitOptions& options, std::ostream& out,
            std::ostream& err)
      : endpoint_(endpoint), options_(options), out_(out), err_(err) {}

  int Run(const std::vector<std::string>& files) {
    total_ = files.size();
    if (options_.digest_only) {
      int rc = LookUpDigestAlgorithm();
      if (rc != kExitOk) return rc;
    }
    // Several files go in batches (POST /v1/batches, one request and one group commit for many);
    // a large file, or a lone one, goes on its own.
    std::vector<std::vector<std::string>> jobs;
    std::vector<std::string> batch;
    std::uint64_t batch_bytes = 0;
    auto flush = [&] {
      if (!batch.empty()) jobs.push_back(std::move(batch));
      batch.clear();
      batch_bytes = 0;
    };
    for (const auto& f : files) {
      std::error_code ec;
      std::uint64_t size = fs::file_size(f, ec);
      if (files.size() == 1 || ec || size > kBatchFileMaxBytes || options_.digest_only) {
        jobs.push_back({f});
        continue;
      }
      if (batch.size() >= kBatchMaxFiles || batch_bytes + size > kBatchMaxBytes) flush();
      batch.push_back(f);
      batch_bytes += size;
    }
    flush();
    int workers = std::clamp<int>(options_.concurrency, 1, 256);
    workers = std::min<int>(workers, static_cast<int>(std::max<std::size_t>(jobs.size(), 1)));
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([this, &jobs] {
        while (true) {
          std::size_t i = next_.fetch_add(1);
          if (i >= jobs.size()) return;
          if (jobs[i].size() == 1) {
            Report(SubmitOne(jobs[i][0]));
          } else {
            for (const auto& o : SubmitBatch(jobs[i])) Report(o);
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    if (options_.progress) err_ << "\r\033[K" << std::flush;
    return exit_code_;
  }

 private:
  void Report(const DocumentOutcome& o) {
    std::lock_guard<std::mutex> lock(mu_);
    ++done_;
    exit_code_ = Worse(exit_code_, o.exit_code);
    if (options_.progress) err_ << "\r\033[K" << std::flush;
    out_ << o.name << "\t" << o.id << "\t" << o.status << "\n" << std::flush;
    if (options_.progress) {
      err_ << "[" << done_ << "/" << total_ << "] submitted" << std::flush;
    }
  }

  // The profile's digest algorithm, for hashing locally (GET /v1/profiles).
  int LookUpDigestAlgorithm() {
    HttpClient client(endpoint_.server, endpoint_.token, kRequestTimeout, endpoint_.tls);
    auto r = client.Request("GET", "/v1/profiles");
    if (!r.ok()) {
      err_ << "qsealctl: " << r.status().message() << "\n";
      return ExitForTransport(r.status());
    }
    if (r->status != 200) {
      err_ << "qsealctl: " << Describe(*r) << "\n";
      return ExitForHttp(r->status);
    }
    try {
      const json reply = json::parse(r->body);
      for (const json& p : reply.at("profiles")) {
        if (p.value("name", "") != options_.profile) continue;
        std::optional<DigestAlgorithm> d = ParseDigest(p.value("digest", ""));
        if (!d) break;
        digest_ = *d;
        return kExitOk;
      }
    } catch (const std::exception& e) {
      err_ << "qsealctl: unexpected reply to GET /v1/profiles: " << e.what() << "\n";
      return kExitUnavailable;
    }
    err_ << "qsealctl: profile \"" << options_.profile << "\" is not one this client may use\n";
    return kExitDataErr;
  }

  // The file's digest, read in 1 MiB pieces (memory does not grow with the file).
  Result<Bytes> HashFile(const std::string& path) const {
    std::ifstream in(path, std::ios::binary);
    if (!in) return NotFoundError("cannot read " + path);
    Hasher hasher(digest_);
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      auto n = static_cast<std::size_t>(in.gcount());
      if (n > 0) {
        QSEAL_RETURN_IF_ERROR(
            hasher.Update(ByteSpan(reinterpret_cast<const std::uint8_t*>(buf.data()), n)));
      }
    }
    if (in.bad()) return UnavailableError("read error in " + path);
    return hasher.Final();
  }

  DocumentOutcome SubmitOne(const std::string& path) {
    DocumentOutcome o;
    o.name = fs::path(path).filename().string();
    HttpClient client(endpoint_.server, endpoint_.token, kRequestTimeout, endpoint_.tls);
    std::string target = std::string(options_.digest_only ? "/v1/digests" : "/v1/documents") +
                         "?profile=" + UrlEncode(options_.profile);
    bool wait = options_.wait || !options_.out_dir.empty();
    if (wait) target += "&wait=30";
    std::map<std::string, std::string> headers = {{"X-Filename", HeaderSafe(o.name)},
                                                  {"Idempotency-Key", RandomKey()}};
    std::string digest_body;
    if (options_.digest_only) {
      Result<Bytes> digest = HashFile(path);
      if (!digest.ok()) return Fail(o, kExitIoErr, digest.status().message());
      json body;
      body["algorithm"] = std::string(DigestName(digest_));
      body["digest_hex"] = HexEncode(*digest);
      body["filename"] = o.name;
      digest_body = body.dump();
      headers.erase("X-Filename");
      headers["Content-Type"] = "application/json";
    }
    int busy = 0;
    int transport_failures = 0;
    HttpReply reply;
    while (true) {
      auto r = options_.digest_only ? client.Request("POST", target, digest_body, headers)
                                    : client.UploadFile("POST", target, path, headers);
      if (!r.ok()) {
        // The same Idempotency-Key makes a resend after a lost reply safe.
        if (!IsLocalFileError(r.status()) && ++transport_failures < 3) {
          std::this_thread::sleep_for(std::chrono::seconds(1));
          continue;
        }
        return Fail(o, ExitForTransport(r.status()), r.status().message());
      }
      reply = std::move(*r);
      if ((reply.status == 503 || reply.status == 429) && ++busy <= options_.max_busy_retries) {
        std::this_thread::sleep_for(RetryAfter(reply, options_.max_retry_after));
        continue;
      }
      break;
    }
    if (reply.status != 200 && reply.status != 201 && reply.status != 202) {
      std::string hint;
      if (reply.status == 401 && endpoint_.token.empty()) {
        hint = " (no API token found: use --token-file, $QSEAL_TOKEN or $QSEAL_VAR/api-token)";
      }
      return Fail(o, ExitForHttp(reply.status), Describe(reply) + hint);
    }
    json j;
    try {
      j = json::parse(reply.body);
      o.id = j.at("id").get<std::string>();
      o.status = j.value("status", "queued");
    } catch (const std::exception& e) {
      return Fail(o, kExitUnavailable, std::string("unexpected reply: ") + e.what());
    }
    if (!wait) return o;

    auto deadline = std::chrono::steady_clock::now() + options_.wait_timeout;
    auto delay = std::chrono::milliseconds(100);
    while (!IsFinal(o.status)) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return Fail(o, kExitUnavailable, "still " + o.status + " after the wait timeout");
      }
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, std::chrono::milliseconds(1000));
      auto r = client.Request("GET", "/v1/documents/" + UrlEncode(o.id));
      if (!r.ok()) continue;  // transient; the deadline bounds it
      if (r->status != 200) {
        if (ExitForHttp(r->status) == kExitUnavailable) continue;
        return Fail(o, ExitForHttp(r->status), Describe(*r));
      }
      try {
        j = json::parse(r->body);
        o.status = j.value("status", o.status);
      } catch (const std::exception&) {
      }
    }
    if (o.status == "failed") {
      std::string why;
      if (j.contains("error") && j["error"].is_object()) {
        why = j["error"].value("code", "") + ": " + j["error"].value("message", "");
      }
      o.status = "failed" + (why.empty() ? "" : " (" + why + ")");
      o.exit_code = kExitDataErr;
      return o;
    }
    if (!options_.out_dir.empty()) return FetchSeal(client, std::move(o));
    return o;
  }

  static constexpr std::chrono::milliseconds kRequestTimeout{120'000};

  // Batches stay well under the server's default limits (1000 parts, 64 MiB).
  static constexpr std::size_t kBatchMaxFiles = 200;
  static constexpr std::uint64_t kBatchMaxBytes = 16ull << 20;
  static constexpr std::uint64_t kBatchFileMaxBytes = 1ull << 20;

  std::vector<DocumentOutcome> SubmitBatch(const std::vector<std::string>& paths) {
    std::vector<DocumentOutcome> out(paths.size());
    std::string boundary = "qsealctl-" + RandomKey();
    std::string body;
    for (std::size_t i = 0; i < paths.size(); ++i) {
      out[i].name = fs::path(paths[i]).filename().string();
      auto data = ReadFileBytes(paths[i]);
      if (!data.ok()) {
        // Unreadable now: submitted alone, which reports the local error as before.
        return SubmitEachAlone(paths);
      }
      body += "--" + boundary + "\r\nX-Filename: " + HeaderSafe(out[i].name) +
              "\r\nIdempotency-Key: " + RandomKey() + "\r\n\r\n";
      body += *data;
      body += "\r\n";
    }
    body += "--" + boundary + "--\r\n";
    HttpClient client(endpoint_.server, endpoint_.token, kRequestTimeout, endpoint_.tls);
    std::map<std::string, std::string> headers = {
        {"Content-Type", "multipart/mixed; boundary=" + boundary}};
    std::string target = "/v1/batches?profile=" + UrlEncode(options_.profile);
    int busy = 0;
    int transport_failures = 0;
    HttpReply reply;
    while (true) {
      auto r = client.Request("POST", target, body, headers);
      if (!r.ok()) {
        // Every part carries its Idempotency-Key: a resend after a lost reply is safe.
        if (++transport_failures < 3) {
          std::this_thread::sleep_for(std::chrono::seconds(1));
          continue;
        }
        for (auto& o : out) o = Fail(o, ExitForTransport(r.status()), r.status().message());
        return out;
      }
      reply = std::move(*r);
      if ((reply.status == 503 || reply.status == 429) && ++busy <= options_.max_busy_retries) {
        std::this_thread::sleep_for(RetryAfter(reply, options_.max_retry_after));
        continue;
      }
      break;
    }
    if (reply.status == 404 && reply.body.find("no such resource") != std::string::npos) {
      return SubmitEachAlone(paths);  // a server without the batch endpoint
    }
    if (reply.status != 202 && reply.status != 200) {
      std::string hint;
      if (reply.status == 401 && endpoint_.token.empty()) {
        hint = " (no API token found: use --token-file, $QSEAL_TOKEN or $QSEAL_VAR/api-token)";
      }
      for (auto& o : out) o = Fail(o, ExitForHttp(reply.status), Describe(reply) + hint);
      return out;
    }
    try {
      json j = json::parse(reply.body);
      const json& docs = j.at("documents");
      for (std::size_t i = 0; i < out.size() && i < docs.size(); ++i) {
        const json& d = docs[i];
        if (d.contains("id")) {
          out[i].id = d["id"].get<std::string>();
          out[i].status = d.value("status", "queued");
        } else {
          const json& e = d.at("error");
          int st = e.value("status", 400);
          out[i] = Fail(out[i], ExitForHttp(st),
                        std::to_string(st) + " " + e.value("title", std::string()) + ": " +
                            e.value("detail", std::string()));
        }
      }
    } catch (const std::exception& e) {
      for (auto& o : out)
        o = Fail(o, kExitUnavailable, std::string("unexpected reply: ") + e.what());
      return out;
    }
    if (!(options_.wait || !options_.out_dir.empty())) return out;
    WaitForBatch(client, out);
    for (auto& o : out) {
      if (o.exit_code == kExitOk && o.status == "sealed" && !options_.out_dir.empty()) {
        o = FetchSeal(client, std::move(o));
      }
    }
    return out;
  }

  std::vector<DocumentOutcome> SubmitEachAlone(const std::vector<std::string>& paths) {
    std::vector<DocumentOutcome> out;
    for (const auto& p : paths) out.push_back(SubmitOne(p));
    return out;
  }

  static Result<std::string> ReadFileBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return NotFoundError("cannot read " + path);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return UnavailableError("read error in " + path);
    return data;
  }

  // Long-polls POST /v1/batches/status until every accepted document is final or the wait
  // timeout passes; failed ones get their reason.
  void WaitForBatch(HttpClient& client, std::vector<DocumentOutcome>& out) {
    auto deadline = std::chrono::steady_clock::now() + options_.wait_timeout;
    while (true) {
      json ids = json::array();
      std::map<std::string, std::size_t> where;
      for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i].exit_code == kExitOk && out[i].id != "-" && !IsFinal(out[i].status)) {
          ids.push_back(out[i].id);
          where[out[i].id] = i;
        }
      }
      if (ids.empty()) break;
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        for (auto& [id, i] : where) {
          out[i] =
              Fail(out[i], kExitUnavailable, "still " + out[i].status + " after the wait timeout");
        }
        return;
      }
      auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - now).count();
      json req;
      req["ids"] = ids;
      auto r = client.Request("POST",
                              "/v1/batches/status?wait=" +
                                  std::to_string(std::clamp<long>(static_cast<long>(left), 1, 30)),
                              req.dump(), {{"Content-Type", "application/json"}});
      if (!r.ok() || r->status != 200) {
        if (r.ok() && ExitForHttp(r->status) != kExitUnavailable) {
          for (auto& [id, i] : where) out[i] = Fail(out[i], ExitForHttp(r->status), Describe(*r));
          return;
        }
        std::this_thread::sleep_for(std::chrono::seconds(1));  // transient; the deadline bounds it
        continue;
      }
      try {
        json j = json::parse(r->body);
        for (const json& d : j.at("documents")) {
          auto it = where.find(d.value("id", std::string()));
          if (it == where.end()) continue;
          DocumentOutcome& o = out[it->second];
          if (d.contains("error") && !d.contains("status")) {
            o = Fail(o, kExitDataErr, "document no longer known to the server");
            continue;
          }
          o.status = d.value("status", o.status);
          if (o.status == "failed") {
            std::string why;
            if (d.contains("error") && d["error"].is_object()) {
              why = d["error"].value("code", "") + ": " + d["error"].value("message", "");
            }
            o.status = "failed" + (why.empty() ? "" : " (" + why + ")");
            o.exit_code = kExitDataErr;
          }
        }
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
  }

  DocumentOutcome FetchSeal(HttpClient& client, DocumentOutcome o) {
    std::string tmp = (fs::path(options_.out_dir) / ("." + o.name + ".qsealctl.tmp")).string();
    auto r = client.Download("/v1/documents/" + UrlEncode(o.id) + "/seal", tmp);
    if (!r.ok()) return Fail(o, ExitForTransport(r.status()), r.status().message());
    if (r->status != 200) return Fail(o, ExitForHttp(r->status), Describe(*r));
    std::string final_path =
        (fs::path(options_.out_dir) /
         SealFileName(r->Header("content-disposition"), r->Header("content-type"), o.name))
            .string();
    std::error_code ec;
    fs::rename(tmp, final_path, ec);
    if (ec) return Fail(o, kExitIoErr, "cannot write " + final_path + ": " + ec.message());
    o.status += "\t" + final_path;
    return o;
  }

  DocumentOutcome Fail(DocumentOutcome o, int code, const std::string& message) {
    o.exit_code = code;
    o.status = "error: " + message;
    return o;
  }

  const Endpoint& endpoint_;
  const SubmitOptions& options_;
  std::ostream& out_;
  std::ostream& err_;
  std::atomic<std::size_t> next_{0};
  std::mutex mu_;
  std::size_t done_ = 0;
  std::size_t total_ = 0;
  int exit_code_ = kExitOk;
  DigestAlgorithm digest_ = DigestAlgorithm::kSha256;  // digest-only: set by Run before uploads
};

}  // namespace

int RunSubmit(const Endpoint& endpoint, const SubmitOptions& options, std::ostream& out,
              std::ostream& err) {
  std::vector<std::string> files;
  for (const auto& p : options.paths) {
    std::error_code ec;
    auto st = fs::status(p, ec);
    if (ec || !fs::exists(st)) {
      err << "qsealctl: " << p << ": no such file or directory\n";
      return kExitIoErr;
    }
    if (fs::is_directory(st)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
           it.increment(ec)) {
        if (it->is_regular_file(ec)) found.push_back(it->path().string());
      }
      if (ec) {
        err << "qsealctl: " << p << ": " << ec.message() << "\n";
        return kExitIoErr;
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(st)) {
      files.push_back(p);
    } else {
      err << "qsealctl: " << p << ": not a regular file or directory\n";
      return kExitDataErr;
    }
  }
  if (files.empty()) {
    err << "qsealctl: nothing to submit\n";
    return kExitDataErr;
  }
  SubmitOptions effective = options;
  if (effective.digest_only && effective.out_dir.empty()) effective.out_dir = ".";
  if (!effective.out_dir.empty()) {
    std::error_code ec;
    fs::create_directories(effective.out_dir, ec);
    if (ec) {
      err << "qsealctl: cannot create " << effective.out_dir << ": " << ec.message() << "\n";
      return kExitIoErr;
    }
  }
  Submitter submitter(endpoint, effective, out, err);
  return submitter.Run(files);
}

}  // namespace qseal::cli
