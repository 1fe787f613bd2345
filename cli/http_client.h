// A small blocking HTTP/1.1 client for qsealctl (one request per connection, loopback or LAN).
// Thread-compatible: one HttpClient per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"

namespace qseal::cli {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class HttpClient {
 public:
  // `server` is "host:port"; `token` is the bearer token ("" for none).
  HttpClient(std::string server, std::string token,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(120'000));

  // kUnavailable when the server cannot be reached or the exchange fails.
  Result<HttpReply> Request(const std::string& method, const std::string& target,
                            const std::string& body = "",
                            const std::map<std::string, std::string>& headers = {});

 private:
  std::string host_;
  std::string port_;
  std::string token_;
  std::chrono::milliseconds timeout_;
};

}  // namespace qseal::cli
