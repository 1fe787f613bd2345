#include "publish/result_headers.h"

namespace qseal::publish {
namespace {

// Header values are single lines: a reason with a newline must not end the header block.
std::string HeaderValue(std::string_view v) {
  std::string out(v);
  for (char& c : out) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ResultHeaders(const queue::Record& record,
                                                               std::string_view content_type,
                                                               const Status* error) {
  // A message refused before it reached the queue has no document id.
  const std::string id = record.id.IsZero() ? "" : record.id.ToString();
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Qseal-Status", error == nullptr ? "sealed" : "failed"},
      {"Qseal-Document-Id", id},
      {"Qseal-Idempotency-Key", HeaderValue(record.idempotency_key)},
      {"Qseal-Source", HeaderValue(record.source_ref)},
      {"Qseal-Profile", HeaderValue(record.profile)},
      {"Qseal-Sha256", record.sha256_hex},
      {"Qseal-Filename", HeaderValue(record.name)},
      {"Content-Type", std::string(content_type)},
  };
  if (error != nullptr) {
    headers.push_back({"Qseal-Error-Code", std::string(StatusCodeName(error->code()))});
    headers.push_back({"Qseal-Error-Message", HeaderValue(error->message())});
  }
  std::erase_if(headers, [](const auto& h) { return h.second.empty(); });
  return headers;
}

}  // namespace qseal::publish
