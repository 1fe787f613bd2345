// A small blocking HTTP/1.1 client for qsealctl (loopback or LAN). The connection is kept open
// between requests (HTTP/1.1 keep-alive) and reused while the server keeps it: a connection idle
// for more than a few seconds, closed by the server, or left mid-reply by an error is replaced by a
// new one before the next request, so a request is never sent twice.
//
// Uploads and downloads of documents and seals are streamed between the socket and a file, so
// memory stays bounded whatever the document size. Every exchange has one overall deadline (the
// timeout given at construction).
//
// Errors: kUnavailable when the server cannot be reached or the exchange fails (reset, timeout,
// malformed reply); kNotFound / kPermissionDenied / kUnavailable (I/O) when a local file cannot be
// opened, read or written, with "local file" in the message. An HTTP error status is not an error
// Status: it is in HttpReply::status.
//
// HTTPS when the server is given as "https://host:port": TLS 1.2 or 1.3, the server's certificate
// verified against TlsClientFiles::ca_file (else the system's trust store) and matched to the host
// name or IP address; a client certificate and key for mTLS when given. A bad CA, certificate or
// key file is a local file error.
//
// Thread-compatible: one HttpClient per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"

namespace qseal::cli {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;  // empty when the body went to a file (Download with status 200)

  // The header's value or "" when absent; `name` in lower case.
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Raised only for local file errors in UploadFile/Download, so callers can tell them from
// network errors (exit code 74 versus 69).
bool IsLocalFileError(const Status& status);

// Files for HTTPS; all optional.
struct TlsClientFiles {
  std::string ca_file;    // PEM trust anchors for the server certificate; "": the system's
  std::string cert_file;  // PEM client certificate (chain after it) for mTLS; "": none
  std::string key_file;   // PEM key of cert_file; "": cert_file holds it
};

class HttpClient {
 public:
  // `server` is "https://host:port" (TLS) or "host:port" / "http://host:port" (plaintext); a
  // trailing "/" is accepted. `token` is the bearer token ("" for none); `tls` is used for https.
  HttpClient(std::string server, std::string token,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(120'000),
             TlsClientFiles tls = {});
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Sends `body` from memory; the reply body is read into memory (replies are small JSON).
  Result<HttpReply> Request(const std::string& method, const std::string& target,
                            const std::string& body = "",
                            const std::map<std::string, std::string>& headers = {});

  // Streams the file at `path` as the request body (Content-Length = its size).
  Result<HttpReply> UploadFile(const std::string& method, const std::string& target,
                               const std::string& path,
                               const std::map<std::string, std::string>& headers = {});

  // GET `target`; a 200 body is streamed into `path` (created or truncated), any other status's
  // body is read into HttpReply::body and `path` is left untouched.
  Result<HttpReply> Download(const std::string& target, const std::string& path);

  const std::string& host() const { return host_; }
  const std::string& port() const { return port_; }
  bool tls() const { return tls_; }

 private:
  // Builds the TLS context on first use (so a bad file is reported by the call that needs it).
  Status PrepareTls();

  std::string host_;
  std::string port_;
  bool tls_ = false;
  TlsClientFiles tls_files_;
  std::string token_;
  std::chrono::milliseconds timeout_;
  struct Connection;  // the kept-alive connection, if any
  std::unique_ptr<Connection> conn_;
};

}  // namespace qseal::cli
