#include "revocation/revocation_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <thread>
#include <utility>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/sha256.h"
#include "revocation/detail/status_fetch.h"

namespace qseal::revocation {
namespace {

using Clock = std::chrono::system_clock;

struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};

// One certificate of the chain whose status the cache keeps.
struct Entry {
  detail::X509Ptr cert;
  X509* issuer = nullptr;  // the next certificate of the chain (owned by Impl::chain)
  std::string subject;     // for messages
  std::string ocsp_url, crl_url;
  std::optional<detail::CertStatus> status;  // the last accepted one
  Clock::time_point refresh_at{};            // epoch: at once
  std::string stored;                        // store_dir/<sha256 of the certificate>, or ""
};

std::string StoredPath(const Entry& e, bool crl) { return e.stored + (crl ? ".crl" : ".ocsp"); }

Result<Bytes> ReadStored(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// `data` as `path`, complete or not at all: a synced temporary file renamed over it.
Status WriteStored(const std::string& path, ByteSpan data) {
  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoStatus("create " + tmp, errno);
  QSEAL_RETURN_IF_ERROR(WriteAll(fd.get(), data, tmp));
  QSEAL_RETURN_IF_ERROR(FsyncFd(fd.get(), tmp));
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("rename " + tmp, errno);
  return FsyncDir(std::filesystem::path(path).parent_path().string());
}

// When a status stops counting as current.
Clock::time_point ExpiresAt(const detail::CertStatus& s, std::chrono::milliseconds max_age) {
  return s.next_update.value_or(s.this_update + max_age);
}

}  // namespace

class RevocationCache::Impl {
 public:
  RevocationOptions options;
  std::vector<detail::X509Ptr> chain;
  std::unique_ptr<X509_STORE, StoreFree> trusted;
  // Written only by the fetch thread; read under mu_ by Stats (counts) and Current (snapshot).
  std::vector<Entry> entries;

  mutable Mutex mu;
  CondVar wake;
  bool stopping QSEAL_GUARDED_BY(mu) = false;
  std::shared_ptr<const formats::ValidationData> snapshot QSEAL_GUARDED_BY(mu);
  Clock::time_point snapshot_expires QSEAL_GUARDED_BY(mu){};
  Status last_error QSEAL_GUARDED_BY(mu) = UnavailableError("revocation data not fetched yet");
  std::optional<Status> revoked QSEAL_GUARDED_BY(mu);
  std::uint64_t fetches QSEAL_GUARDED_BY(mu) = 0;
  std::uint64_t fetch_errors QSEAL_GUARDED_BY(mu) = 0;
  std::thread thread;

  void Run() {
    for (;;) {
      Clock::time_point next = FetchDue();
      MutexLock lock(mu);
      while (!stopping && Clock::now() < next) wake.WaitUntil(mu, next);
      if (stopping) return;
    }
  }

  // Fetches every status that is due; returns when the next one is. Publishes a new snapshot
  // when every entry has a status.
  Clock::time_point FetchDue() {
    const detail::FetchLimits limits{options.fetch_timeout, options.max_response_bytes};
    bool changed = false;
    for (Entry& e : entries) {
      const Clock::time_point now = Clock::now();
      if (now < e.refresh_at) continue;
      Result<detail::CertStatus> got = UnavailableError("no OCSP responder");
      if (!e.ocsp_url.empty()) {
        got = detail::FetchOcsp(e.cert.get(), e.issuer, trusted.get(), e.ocsp_url, limits);
      }
      if (!got.ok() && got.status().code() != StatusCode::kFailedPrecondition &&
          !e.crl_url.empty()) {
        Result<detail::CertStatus> crl =
            detail::FetchCrl(e.cert.get(), e.issuer, e.crl_url, limits);
        // The CRL's verdict counts when it has one (good or revoked), else OCSP's error stays.
        if (crl.ok() || crl.status().code() == StatusCode::kFailedPrecondition ||
            e.ocsp_url.empty()) {
          got = std::move(crl);
        }
      }
      if (got.ok()) Store(e, *got);
      MutexLock lock(mu);
      if (got.ok()) {
        fetches++;
        const Clock::time_point expires = ExpiresAt(*got, options.max_age);
        // Halfway through its validity, at the latest max_age from now, at the earliest in 1 s.
        Clock::time_point half = got->this_update + (expires - got->this_update) / 2;
        e.refresh_at = std::clamp(half, now + std::chrono::seconds(1), now + options.max_age);
        e.status = std::move(got).value();
        changed = true;
        continue;
      }
      fetch_errors++;
      Status why = got.status().WithContext("revocation status of " + e.subject);
      if (got.status().code() == StatusCode::kFailedPrecondition) {
        if (!revoked)
          LogError("seal certificate chain revoked",
                   {{"key", options.name}, {"reason", why.ToString()}});
        revoked = why;
      } else {
        LogWarn("revocation fetch failed", {{"key", options.name}, {"reason", why.ToString()}});
      }
      last_error = why;
      e.refresh_at = now + options.retry_interval;
    }
    Clock::time_point next = Clock::time_point::max();
    for (const Entry& e : entries) next = std::min(next, e.refresh_at);
    if (changed) Publish();
    return next;
  }

  // Statuses kept by an earlier run, checked again as if just fetched: those still current stand
  // in until the first fetch replaces them (which still happens at once).
  void LoadStored() {
    if (options.store_dir.empty()) return;
    std::int64_t loaded = 0;
    for (Entry& e : entries) {
      for (bool crl : {false, true}) {
        Result<Bytes> der = ReadStored(StoredPath(e, crl));
        if (!der.ok()) continue;
        Result<detail::CertStatus> s =
            crl ? detail::CheckCrl(e.cert.get(), e.issuer, std::move(*der))
                : detail::CheckOcsp(e.cert.get(), e.issuer, trusted.get(), std::move(*der));
        if (s.ok() && Clock::now() < ExpiresAt(*s, options.max_age)) {
          e.status = std::move(s).value();
          ++loaded;
          break;
        }
      }
    }
    LogInfo("revocation statuses read back from the store",
            {{"key", options.name},
             {"current", loaded},
             {"certificates", static_cast<std::int64_t>(entries.size())}});
    if (loaded > 0) Publish();
  }

  void Store(const Entry& e, const detail::CertStatus& status) {
    if (options.store_dir.empty()) return;
    Status written = WriteStored(StoredPath(e, status.is_crl), status.der);
    if (!written.ok()) {
      LogWarn("revocation status not stored",
              {{"key", options.name}, {"error", written.ToString()}});
      return;
    }
    std::error_code ec;
    std::filesystem::remove(StoredPath(e, !status.is_crl), ec);  // the other kind is older
  }

  void Publish() {
    auto data = std::make_shared<formats::ValidationData>();
    Clock::time_point expires = Clock::time_point::max();
    for (const Entry& e : entries) {
      if (!e.status) return;  // not complete yet
      (e.status->is_crl ? data->crls : data->ocsp_responses).push_back(e.status->der);
      expires = std::min(expires, ExpiresAt(*e.status, options.max_age));
    }
    MutexLock lock(mu);
    snapshot = std::move(data);
    snapshot_expires = expires;
  }
};

RevocationCache::RevocationCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RevocationCache::~RevocationCache() { Stop(); }

Result<std::unique_ptr<RevocationCache>> RevocationCache::Create(RevocationOptions options) {
  auto impl = std::make_unique<Impl>();
  const std::string where = "revocation for key " + options.name + ": ";
  for (const Bytes& der : options.chain_der) {
    const unsigned char* p = der.data();
    detail::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (!cert || p != der.data() + der.size()) {
      ERR_clear_error();
      return InvalidArgumentError(where + "a certificate of the chain does not parse");
    }
    impl->chain.push_back(std::move(cert));
  }
  if (impl->chain.empty() ||
      X509_check_issued(impl->chain.back().get(), impl->chain.back().get()) != X509_V_OK) {
    return InvalidArgumentError(where +
                                "b-lt needs the chain up to its self-signed root (add the root "
                                "to the key's certificate chain file)");
  }
  impl->trusted.reset(X509_STORE_new());
  if (!impl->trusted || X509_STORE_add_cert(impl->trusted.get(), impl->chain.back().get()) != 1) {
    ERR_clear_error();
    return InternalError(where + "making the trust store failed");
  }
  for (std::size_t i = 0; i + 1 < impl->chain.size(); ++i) {
    X509* cert = impl->chain[i].get();
    X509* issuer = impl->chain[i + 1].get();
    char name[256];
    X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof(name));
    if (X509_check_issued(issuer, cert) != X509_V_OK) {
      return InvalidArgumentError(where + std::string(name) +
                                  " is not issued by the next certificate of the chain");
    }
    Entry e;
    X509_up_ref(cert);
    e.cert.reset(cert);
    e.issuer = issuer;
    e.subject = name;
    e.ocsp_url = detail::OcspUrl(cert);
    e.crl_url = detail::CrlUrl(cert);
    if (e.ocsp_url.empty() && e.crl_url.empty()) {
      return InvalidArgumentError(where + e.subject +
                                  " names neither an http OCSP responder (authorityInfoAccess) "
                                  "nor an http CRL distribution point");
    }
    impl->entries.push_back(std::move(e));
  }
  if (impl->entries.empty()) {
    return InvalidArgumentError(where + "a self-signed seal certificate has no revocation status");
  }
  if (!options.store_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.store_dir, ec);
    if (ec) {
      return UnavailableError(where + "cannot create " + options.store_dir + ": " + ec.message());
    }
    for (Entry& e : impl->entries) {
      unsigned char* der = nullptr;
      int n = i2d_X509(e.cert.get(), &der);
      if (n <= 0) return InternalError(where + "cannot encode " + e.subject);
      e.stored = options.store_dir + "/" + Sha256Hex(ByteSpan(der, static_cast<std::size_t>(n)));
      OPENSSL_free(der);
    }
  }
  impl->options = std::move(options);
  return std::unique_ptr<RevocationCache>(new RevocationCache(std::move(impl)));
}

void RevocationCache::Start() {
  if (impl_->thread.joinable()) return;
  impl_->LoadStored();
  impl_->thread = std::thread([this] { impl_->Run(); });
}

void RevocationCache::Stop() {
  {
    MutexLock lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.SignalAll();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<std::shared_ptr<const formats::ValidationData>> RevocationCache::Current() const {
  MutexLock lock(impl_->mu);
  if (impl_->revoked) return *impl_->revoked;
  if (impl_->snapshot == nullptr) return impl_->last_error;
  if (Clock::now() >= impl_->snapshot_expires) {
    return UnavailableError("the revocation data expired: " + impl_->last_error.ToString());
  }
  return impl_->snapshot;
}

RevocationStats RevocationCache::Stats() const {
  MutexLock lock(impl_->mu);
  RevocationStats s;
  s.fetches = impl_->fetches;
  s.fetch_errors = impl_->fetch_errors;
  s.revoked = impl_->revoked.has_value();
  if (impl_->snapshot != nullptr) {
    s.seconds_to_expiry =
        std::chrono::duration<double>(impl_->snapshot_expires - Clock::now()).count();
    s.current = !s.revoked && s.seconds_to_expiry > 0;
  }
  return s;
}

}  // namespace qseal::revocation
