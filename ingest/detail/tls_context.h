// The server side of TLS for the HTTP API: one OpenSSL context built from certificate and key
// files with a fixed policy, and the identity of a client that presented a certificate.
//
// Policy (docs/security.md): TLS 1.2 minimum (1.3 is negotiated whenever the client offers it),
// only AEAD cipher suites with forward secrecy (AES-GCM, ChaCha20-Poly1305 over ECDHE), no
// compression, no renegotiation, the server's suite order. With a client CA, a client
// certificate is requested and, when one is sent, verified against that CA file (CRLs in the
// same file are checked for the leaf); an invalid one fails the handshake.
//
// Contexts are immutable once built and shared by the connections made from them: a reload makes
// a new context, connections already open keep theirs. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "common/bytes.h"
#include "common/status.h"

typedef struct ssl_st SSL;

namespace qseal::ingest::detail {

struct TlsServerFiles {
  std::string certificate_file;  // PEM: the server certificate, then its chain
  std::string key_file;          // PEM private key of the certificate
  std::string client_ca_file;    // PEM trust anchors (and CRLs) for client certificates; "": none
  bool require_client_certificate = false;  // with client_ca_file: refuse clients without one
};

// Reads the files and builds a context. kInvalidArgument naming the file when one cannot be read
// or parsed, or the key does not match the certificate (OpenSSL's reason in the message).
Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const TlsServerFiles& files);

// What a verified client certificate says, for AccessControl.
struct PeerCertificate {
  bool present = false;
  std::string subject;  // RFC 2253 form, e.g. "CN=billing,O=Example Bank,C=DE"
  Bytes spki_sha256;    // SHA-256 of the DER SubjectPublicKeyInfo (the pin)
};

// The certificate the peer of a completed handshake sent (verified by then), if any.
PeerCertificate PeerCertificateOf(SSL* ssl);

}  // namespace qseal::ingest::detail
