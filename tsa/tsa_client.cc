#include "tsa/tsa_client.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <list>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "common/mutex.h"
#include "tsa/detail/breaker.h"
#include "tsa/detail/connection.h"
#include "tsa/detail/ts_codec.h"

namespace qseal::tsa {

namespace asio = boost::asio;
using detail::Connection;

std::string_view BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half-open";
  }
  return "unknown";
}

namespace {

struct Job {
  DigestAlgorithm algorithm = DigestAlgorithm::kSha256;
  Bytes digest;
  detail::PreparedRequest request;  // of the current attempt: each attempt has a fresh nonce
  StampCallback done;
  int attempts = 0;
  int last_tsa = -1;
  std::string last_error;
  std::chrono::steady_clock::time_point sent_at{};
};

struct Tsa {
  Tsa(asio::io_context& io, const Clock& clock, const TsaClientOptions& o, TsaEndpoint e)
      : endpoint(std::move(e)),
        breaker(clock, o.breaker_failures, o.breaker_cooldown),
        bucket(clock, endpoint.rate_per_second, endpoint.burst),
        rate_timer(io) {}

  TsaEndpoint endpoint;
  detail::Url url;
  std::shared_ptr<detail::TrustStore> trust;
  std::unique_ptr<asio::ssl::context> tls;
  detail::CircuitBreaker breaker;
  detail::TokenBucket bucket;
  std::deque<std::shared_ptr<Job>> queue;
  std::vector<std::shared_ptr<Connection>> idle;
  std::size_t open = 0;  // connections made and not yet dropped, idle or busy
  asio::steady_timer rate_timer;
  bool rate_timer_armed = false;
  std::uint64_t requests = 0;
  std::uint64_t tokens = 0;
  std::uint64_t failures = 0;
  double request_seconds_sum = 0;
};

// With a manual clock a token appears only when the test moves time; a bounded re-check keeps
// the pump polling instead of sleeping for a computed real-time wait.
constexpr std::chrono::milliseconds kMaxRateWait{20};

}  // namespace

// Every member below `io_` is touched only on the I/O thread.
class TsaClient::Impl {
 public:
  Impl(TsaClientOptions options, Clock& clock)
      : options_(std::move(options)), clock_(clock), work_(asio::make_work_guard(io_)) {}

  Status Init() {
    if (options_.tsas.empty()) return InvalidArgumentError("no TSA configured");
    if (options_.max_attempts < 1) return InvalidArgumentError("max_attempts must be >= 1");
    if (options_.breaker_failures < 1) return InvalidArgumentError("breaker_failures must be >= 1");
    for (const TsaEndpoint& e : options_.tsas) {
      auto tsa = std::make_unique<Tsa>(io_, clock_, options_, e);
      QSEAL_ASSIGN_OR_RETURN(tsa->url, detail::ParseUrl(e.url));
      if (e.ca_file.empty()) return InvalidArgumentError("TSA " + e.name + ": no ca_file");
      QSEAL_ASSIGN_OR_RETURN(tsa->trust, detail::TrustStore::Load(e.ca_file));
      Bytes probe(32);
      if (auto r = detail::BuildRequest(DigestAlgorithm::kSha256, probe, e.policy_oid); !r.ok()) {
        return r.status().WithContext("TSA " + e.name);
      }
      if (e.connections < 1) return InvalidArgumentError("TSA " + e.name + ": connections < 1");
      if (tsa->url.tls) {
        if (e.tls_ca_file.empty()) {
          return InvalidArgumentError("TSA " + e.name + ": an https URL needs tls_ca_file");
        }
        tsa->tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
        boost::system::error_code ec;
        tsa->tls->load_verify_file(e.tls_ca_file, ec);
        if (ec) {
          return InvalidArgumentError("TSA " + e.name + ": cannot load tls_ca_file '" +
                                      e.tls_ca_file + "': " + ec.message());
        }
        tsa->tls->set_verify_mode(asio::ssl::verify_peer);
      }
      tsas_.push_back(std::move(tsa));
    }
    thread_ = std::thread([this] { io_.run(); });
    return Status::Ok();
  }

  ~Impl() { Shutdown(); }

  Status Submit(DigestAlgorithm algorithm, ByteSpan digest, StampCallback done, bool try_only) {
    if (try_only && pending_.load() >= options_.max_pending) {
      return ResourceExhaustedError("TSA client: " + std::to_string(options_.max_pending) +
                                    " requests outstanding");
    }
    if (digest.size() != DigestSize(algorithm)) {
      done(InvalidArgumentError("a " + std::string(DigestName(algorithm)) + " digest has " +
                                std::to_string(DigestSize(algorithm)) + " bytes, not " +
                                std::to_string(digest.size())));
      return Status::Ok();
    }
    auto job = std::make_shared<Job>();
    job->algorithm = algorithm;
    job->digest.assign(digest.begin(), digest.end());
    job->done = std::move(done);
    {
      // Under post_mu_ so that no post can follow the shutdown handler: every accepted job is
      // then reported, if only as kCancelled.
      MutexLock lock(post_mu_);
      if (!stopped_.load()) {
        ++pending_;
        asio::post(io_, [this, job] { Route(job); });
        return Status::Ok();
      }
    }
    job->done(CancelledError("the TSA client is shut down"));
    return Status::Ok();
  }

  std::vector<TsaHealth> Health() {
    auto collect = [this] {
      std::vector<TsaHealth> out;
      for (const auto& t : tsas_) {
        TsaHealth h;
        h.name = t->endpoint.name;
        h.state = t->breaker.state();
        h.consecutive_failures = t->breaker.consecutive_failures();
        h.open_connections = t->open;
        h.queued = t->queue.size();
        h.requests = t->requests;
        h.tokens = t->tokens;
        h.failures = t->failures;
        h.request_seconds_sum = t->request_seconds_sum;
        out.push_back(std::move(h));
      }
      return out;
    };
    if (io_.get_executor().running_in_this_thread()) return collect();
    std::promise<std::vector<TsaHealth>> promise;
    auto future = promise.get_future();
    {
      MutexLock lock(post_mu_);
      if (stopped_.load()) return {};
      asio::post(io_, [&] { promise.set_value(collect()); });
    }
    return future.get();
  }

  std::size_t pending() const { return pending_.load(); }

  void Shutdown() {
    MutexLock join_lock(join_mu_);
    {
      MutexLock lock(post_mu_);
      if (stopped_.exchange(true)) return;
    }
    asio::post(io_, [this] {
      for (auto& t : tsas_) {
        for (auto& job : t->queue) Finish(job, CancelledError("the TSA client is shut down"));
        t->queue.clear();
        for (auto& c : t->idle) c->Close();
        t->idle.clear();
        t->rate_timer.cancel();
      }
      for (auto& c : busy_) c->Close();
      for (auto& timer : backoff_timers_) timer->cancel();
      work_.reset();
    });
    if (thread_.joinable()) thread_.join();
    verify_pool_.join();
  }

 private:
  // Picks the first TSA, in configuration order, whose breaker admits a request, preferring one
  // the job has not just failed on.
  void Route(const std::shared_ptr<Job>& job) {
    if (stopped_.load()) return Finish(job, CancelledError("the TSA client is shut down"));
    int chosen = -1;
    for (int pass = 0; pass < 2 && chosen < 0; ++pass) {
      for (int i = 0; i < static_cast<int>(tsas_.size()); ++i) {
        if (pass == 0 && i == job->last_tsa) continue;
        if (tsas_[static_cast<std::size_t>(i)]->breaker.WouldAdmit()) {
          chosen = i;
          break;
        }
      }
    }
    if (chosen < 0) {
      std::string reason = "no TSA available: every circuit breaker is open";
      if (!job->last_error.empty()) reason += "; last error: " + job->last_error;
      return Finish(job, UnavailableError(reason));
    }
    Tsa& tsa = *tsas_[static_cast<std::size_t>(chosen)];
    tsa.queue.push_back(job);
    Pump(chosen);
  }

  void Pump(int index) {
    Tsa& tsa = *tsas_[static_cast<std::size_t>(index)];
    while (!tsa.queue.empty() && !stopped_.load()) {
      if (tsa.idle.empty() && tsa.open >= tsa.endpoint.connections) return;
      if (!tsa.breaker.WouldAdmit()) {
        // Opened (or probing) since these jobs were queued: send them elsewhere.
        std::deque<std::shared_ptr<Job>> moved;
        moved.swap(tsa.queue);
        for (auto& job : moved) {
          job->last_tsa = index;
          Route(job);
        }
        return;
      }
      if (!tsa.bucket.TryTake()) {
        if (!tsa.rate_timer_armed) {
          tsa.rate_timer_armed = true;
          auto wait = std::min<std::chrono::nanoseconds>(tsa.bucket.TimeToNext(), kMaxRateWait);
          tsa.rate_timer.expires_after(wait);
          tsa.rate_timer.async_wait([this, index](boost::system::error_code) {
            tsas_[static_cast<std::size_t>(index)]->rate_timer_armed = false;
            Pump(index);
          });
        }
        return;
      }
      tsa.breaker.Admit();
      std::shared_ptr<Job> job = tsa.queue.front();
      tsa.queue.pop_front();
      auto request = detail::BuildRequest(job->algorithm, job->digest, tsa.endpoint.policy_oid);
      if (!request.ok()) {
        Finish(job, request.status());
        continue;
      }
      job->request = std::move(request).value();
      std::shared_ptr<Connection> conn;
      if (!tsa.idle.empty()) {
        conn = tsa.idle.back();
        tsa.idle.pop_back();
      } else {
        conn = detail::MakeConnection(io_, tsa.url, tsa.tls.get());
        ++tsa.open;
      }
      busy_.push_back(conn);
      ++tsa.requests;
      // Latency is real time even under a manual clock: it measures the network, not policy.
      job->sent_at = std::chrono::steady_clock::now();
      conn->Send(job->request.der, tsa.endpoint.timeout,
                 [this, index, conn, job](Result<Bytes> body) {
                   OnAnswer(index, conn, job, std::move(body));
                 });
    }
  }

  void OnAnswer(int index, const std::shared_ptr<Connection>& conn, const std::shared_ptr<Job>& job,
                Result<Bytes> body) {
    Tsa& tsa = *tsas_[static_cast<std::size_t>(index)];
    busy_.erase(std::find(busy_.begin(), busy_.end(), conn));
    if (stopped_.load()) {
      --tsa.open;
      return Finish(job, CancelledError("the TSA client is shut down"));
    }
    if (conn->is_open()) {
      tsa.idle.push_back(conn);
    } else {
      --tsa.open;
    }
    const std::chrono::nanoseconds took = std::chrono::steady_clock::now() - job->sent_at;
    tsa.request_seconds_sum += std::chrono::duration<double>(took).count();
    if (options_.on_attempt) options_.on_attempt(tsa.endpoint.name, took);
    if (!body.ok()) {
      OnVerified(index, job, body.status());
    } else {
      // Verifying a token (its signature, the TSA's chain, ESS) costs about a millisecond of
      // CPU: done on the verify pool so this thread only moves bytes, then reported back here.
      // The work guard keeps the I/O thread running until the result is back.
      detail::VerifyParams params;
      params.request = &job->request;
      params.trust = tsa.trust.get();
      params.now = clock_.Now();
      params.max_clock_skew = options_.max_clock_skew;
      asio::post(verify_pool_, [this, index, job, params, answer = std::move(body).value(),
                                guard = asio::make_work_guard(io_)] {
        Result<TimeStampToken> token = detail::VerifyResponse(answer, params);
        asio::post(io_, [this, index, job, token = std::move(token)]() mutable {
          OnVerified(index, job, std::move(token));
        });
      });
    }
    Pump(index);
  }

  // The outcome of one attempt (on the I/O thread): the token, or a retry or the final error.
  void OnVerified(int index, const std::shared_ptr<Job>& job, Result<TimeStampToken> token) {
    Tsa& tsa = *tsas_[static_cast<std::size_t>(index)];
    if (stopped_.load()) return Finish(job, CancelledError("the TSA client is shut down"));
    if (token.ok()) {
      tsa.breaker.RecordSuccess();
      ++tsa.tokens;
      token.value().tsa = tsa.endpoint.name;
      Finish(job, std::move(token));
    } else {
      tsa.breaker.RecordFailure();
      ++tsa.failures;
      ++job->attempts;
      job->last_tsa = index;
      job->last_error = "TSA " + tsa.endpoint.name + ": " + token.status().message();
      if (job->attempts >= options_.max_attempts) {
        Finish(job, UnavailableError(job->last_error + " (after " + std::to_string(job->attempts) +
                                     " attempts)"));
      } else {
        Backoff(job);
      }
    }
    Pump(index);
  }

  void Backoff(const std::shared_ptr<Job>& job) {
    auto delay = options_.backoff_initial * (1LL << std::min(job->attempts - 1, 20));
    delay = std::min<std::chrono::milliseconds>(delay, options_.backoff_max);
    auto timer = std::make_shared<asio::steady_timer>(io_, delay);
    backoff_timers_.push_back(timer);
    auto it = std::prev(backoff_timers_.end());
    timer->async_wait([this, job, it](boost::system::error_code) {
      backoff_timers_.erase(it);
      Route(job);
    });
  }

  void Finish(const std::shared_ptr<Job>& job, Result<TimeStampToken> result) {
    StampCallback done = std::move(job->done);
    job->done = nullptr;
    --pending_;
    if (done) done(std::move(result));
  }

  const TsaClientOptions options_;
  Clock& clock_;
  Mutex post_mu_;  // orders posts against the shutdown handler
  Mutex join_mu_;  // one Shutdown joins; a concurrent one waits for it
  std::atomic<bool> stopped_{false};
  std::atomic<std::size_t> pending_{0};
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::unique_ptr<Tsa>> tsas_;
  std::vector<std::shared_ptr<Connection>> busy_;
  std::list<std::shared_ptr<asio::steady_timer>> backoff_timers_;
  std::thread thread_;
  // Token verification, off the I/O thread (one thread per core).
  asio::thread_pool verify_pool_{std::max(1u, std::thread::hardware_concurrency())};
};

Result<std::unique_ptr<TsaClient>> TsaClient::Create(TsaClientOptions options, Clock& clock) {
  auto impl = std::make_unique<Impl>(std::move(options), clock);
  QSEAL_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<TsaClient>(new TsaClient(std::move(impl)));
}

TsaClient::TsaClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TsaClient::~TsaClient() { impl_->Shutdown(); }

void TsaClient::Stamp(DigestAlgorithm algorithm, ByteSpan digest, StampCallback done) {
  impl_->Submit(algorithm, digest, std::move(done), false).IgnoreError();
}

Status TsaClient::TryStamp(DigestAlgorithm algorithm, ByteSpan digest, StampCallback done) {
  return impl_->Submit(algorithm, digest, std::move(done), true);
}

std::future<Result<TimeStampToken>> TsaClient::Stamp(DigestAlgorithm algorithm, ByteSpan digest) {
  auto promise = std::make_shared<std::promise<Result<TimeStampToken>>>();
  auto future = promise->get_future();
  Stamp(algorithm, digest,
        [promise](Result<TimeStampToken> result) { promise->set_value(std::move(result)); });
  return future;
}

std::vector<TsaHealth> TsaClient::Health() const { return impl_->Health(); }
std::size_t TsaClient::pending() const { return impl_->pending(); }
void TsaClient::Shutdown() { impl_->Shutdown(); }

}  // namespace qseal::tsa
