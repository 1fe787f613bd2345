#include "ingest/detail/json_bodies.h"

#include "common/clock.h"

namespace qseal::ingest::detail {

namespace http = boost::beast::http;

std::string_view ApiState(queue::State s) {
  switch (s) {
    case queue::State::kQueued:
      return "queued";
    case queue::State::kLeased:
      return "sealing";
    case queue::State::kSealed:
      return "sealed";
    case queue::State::kFailed:
      return "failed";
  }
  return "queued";
}

bool IsFinal(queue::State s) { return s == queue::State::kSealed || s == queue::State::kFailed; }

nlohmann::ordered_json StatusJson(const queue::Record& r) {
  nlohmann::ordered_json j;
  j["id"] = r.id.ToString();
  j["status"] = std::string(ApiState(r.state));
  j["profile"] = r.profile;
  j["sha256"] = r.sha256_hex;
  j["size"] = r.size;
  if (!r.name.empty()) j["name"] = r.name;
  if (!r.digest_algorithm.empty()) j["digest_algorithm"] = r.digest_algorithm;
  j["created_at"] = FormatUtc(r.created_at);
  if (r.state == queue::State::kSealed) j["sealed_at"] = FormatUtc(r.sealed_at);
  if (!r.error_code.empty()) {
    j[r.state == queue::State::kFailed ? "error" : "last_error"] = {{"code", r.error_code},
                                                                    {"message", r.error_message}};
  }
  j["attempts"] = r.attempts;
  return j;
}

nlohmann::ordered_json ProblemJson(http::status status, std::string_view detail) {
  nlohmann::ordered_json j;
  j["status"] = static_cast<int>(status);
  j["title"] = std::string(http::obsolete_reason(status));
  j["detail"] = std::string(detail);
  return j;
}

std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace qseal::ingest::detail
