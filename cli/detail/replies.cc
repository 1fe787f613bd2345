#include "cli/detail/replies.h"

#include <cctype>
#include <exception>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/exit_codes.h"

namespace qseal::cli::detail {

using json = nlohmann::json;

int Worse(int a, int b) {
  auto rank = [](int c) {
    switch (c) {
      case kExitOk:
        return 0;
      case kExitDataErr:
        return 1;
      case kExitIoErr:
        return 2;
      case kExitUnavailable:
        return 3;
      default:
        return 4;
    }
  };
  return rank(a) >= rank(b) ? a : b;
}

int ExitForTransport(const Status& s) {
  return IsLocalFileError(s) ? kExitIoErr : kExitUnavailable;
}

int ExitForHttp(int status) {
  if (status >= 200 && status < 300) return kExitOk;
  if (status == 429 || status >= 500) return kExitUnavailable;
  return kExitDataErr;
}

std::string Describe(const HttpReply& reply) {
  std::string text = std::to_string(reply.status);
  try {
    json j = json::parse(reply.body);
    if (j.contains("title") && j["title"].is_string()) text += " " + j["title"].get<std::string>();
    if (j.contains("detail") && j["detail"].is_string()) {
      text += ": " + j["detail"].get<std::string>();
    }
    return text;
  } catch (const std::exception&) {
  }
  std::string body = reply.body.substr(0, 200);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body.empty() ? text : text + ": " + body;
}

std::string UrlEncode(const std::string& s) {
  std::ostringstream o;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      o << c;
    } else {
      o << '%' << std::uppercase << std::hex << std::setw(2) << std::setfill('0')
        << static_cast<int>(c) << std::nouppercase << std::dec;
    }
  }
  return o.str();
}

}  // namespace qseal::cli::detail
