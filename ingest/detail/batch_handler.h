// The batch routes of the HTTP API (see ingest/api_server.h for the contract):
//   POST /v1/batches?profile=NAME[&wait=SECONDS]   multipart/mixed, one document per part, each
//        with its own outcome; the accepted parts are synced in one group commit.
//   POST /v1/batches/status[?wait=SECONDS]         {"ids":[...]} → each document's status.
// The request has been authenticated already; the profile grant is checked here, before any body
// is read. Blocking work (the synced commit, status reads) runs on the server's commit pool.
//
// BatchHandler is thread-safe: its routes are called from the HTTP server's threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "ingest/api_server.h"
#include "ingest/detail/http_server.h"
#include "queue/queue.h"

namespace qseal::ingest::detail {

class AccessControl;
class Waiters;

class BatchHandler {
 public:
  // Keeps references to everything; all must outlive this object. `queue` must be non-null when a
  // route is called. `stopped` tells whether the server is shutting down (503 then).
  BatchHandler(const ApiServerOptions& options, queue::Queue* queue, boost::asio::thread_pool& pool,
               Waiters& waiters, const AccessControl& access, std::function<bool()> stopped);

  // POST /v1/batches: refuses at once (403/404 profile, 400 wait, 415 not multipart/mixed, 413
  // over max_batch_bytes, 503 saturated or stopping) or reads the parts into the queue.
  // `source`: the caller's IP address, for refusals.
  Decision SubmitBatch(const RequestHeader& req, const ApiClient& client, const Query& query,
                       std::string_view source);

  // POST /v1/batches/status: reads up to max_status_ids ids and answers with their statuses;
  // another client's document is reported like an unknown one.
  Decision BatchStatus(const RequestHeader& req, const ApiClient& client, const Query& query);

 private:
  struct BatchPart;
  using BatchParts = std::vector<BatchPart>;
  class BatchSink;

  void CommitBatch(BatchParts& parts, const std::shared_ptr<RequestHeader>& req,
                   std::chrono::milliseconds wait, const std::string& client,
                   const std::string& profile, const std::string& source, Respond respond);
  HttpResponse BatchResponse(const BatchParts& parts, const RequestHeader& req,
                             const std::string& client, bool waited);
  void StatusOfMany(const std::string& body, const std::shared_ptr<RequestHeader>& req,
                    const std::string& client, std::chrono::milliseconds wait, Respond respond);
  // Long-poll for many documents: `answer` runs once (on the commit pool), when every id is
  // final (or unknown, or another client's) or when `wait` has passed.
  void WaitForAll(std::vector<queue::DocumentId> ids, const std::string& client,
                  std::chrono::milliseconds wait, std::function<void()> answer);
  HttpResponse Unavailable(const RequestHeader& req, http::status code,
                           std::string_view detail) const;

  const ApiServerOptions& options_;
  queue::Queue* const queue_;
  boost::asio::thread_pool& pool_;
  Waiters& waiters_;
  const AccessControl& access_;
  const std::function<bool()> stopped_;
};

}  // namespace qseal::ingest::detail
