// The JSON bodies the HTTP API answers with (DESIGN.md §5, contract): a document's status and the
// per-item problem objects inside batch answers. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <boost/beast/http/status.hpp>
#include <nlohmann/json.hpp>

#include "queue/queue.h"

namespace qseal::ingest::detail {

// The state a client sees: "queued", "sealing" (leased), "sealed" or "failed".
std::string_view ApiState(queue::State s);

// Sealed and failed are final: a document in them never changes state again.
bool IsFinal(queue::State s);

// {"id","status","profile","sha256","size",["name"],["digest_algorithm"],"created_at",["sealed_at"],
//  ["error"|"last_error":{"code","message"}],"attempts"}: "error" once failed, "last_error" for
// the failure of an attempt that will be retried. A digest-only document (POST /v1/digests) has
// "digest_algorithm"; its "sha256" and "size" are of the submitted digest's bytes.
nlohmann::ordered_json StatusJson(const queue::Record& r);

// A problem object inside a larger body: {"status","title","detail"}.
nlohmann::ordered_json ProblemJson(boost::beast::http::status status, std::string_view detail);

// Compact text with a trailing newline; invalid UTF-8 (a client's file name) is replaced, never
// thrown on.
std::string Dump(const nlohmann::ordered_json& j);

}  // namespace qseal::ingest::detail
