#include "ingest/detail/tls_context.h"

#include <cstdio>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace qseal::ingest::detail {
namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2 suites: ECDHE for forward secrecy, AEAD only (no CBC, no RSA key exchange). TLS 1.3
// defines AEAD suites only; the three standard ones are listed to keep CCM out.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
constexpr const char* kTls13Suites =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

Status Failed(const std::string& what, const boost::system::error_code& ec = {}) {
  std::string reason;
  unsigned long e = ERR_get_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    reason = buf;
  } else if (ec) {
    reason = ec.message();
  }
  ERR_clear_error();
  return InvalidArgumentError("TLS: " + what + (reason.empty() ? "" : ": " + reason));
}

// Whether a PEM file holds at least one CRL: only then is revocation checked (requiring a CRL
// that is not there would refuse every client).
bool HasCrl(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return false;
  X509_CRL* crl = PEM_read_X509_CRL(f, nullptr, nullptr, nullptr);
  // PEM_read_X509_CRL skips other objects (certificates) before the first CRL.
  std::fclose(f);
  ERR_clear_error();
  if (crl == nullptr) return false;
  X509_CRL_free(crl);
  return true;
}

}  // namespace

Result<std::shared_ptr<ssl::context>> MakeServerTlsContext(const TlsServerFiles& files) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* raw = ctx->native_handle();
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION) != 1) return Failed("minimum version");
  SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
  if (SSL_CTX_set_cipher_list(raw, kTls12Ciphers) != 1) return Failed("cipher list");
  if (SSL_CTX_set_ciphersuites(raw, kTls13Suites) != 1) return Failed("TLS 1.3 suites");
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(files.certificate_file, ec);
  if (ec) return Failed("certificate " + files.certificate_file, ec);
  ctx->use_private_key_file(files.key_file, ssl::context::pem, ec);
  if (ec) return Failed("key " + files.key_file, ec);
  if (SSL_CTX_check_private_key(raw) != 1) {
    return Failed("key " + files.key_file + " does not match " + files.certificate_file);
  }
  if (!files.client_ca_file.empty()) {
    ctx->load_verify_file(files.client_ca_file, ec);
    if (ec) return Failed("client CA " + files.client_ca_file, ec);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca_file.c_str());
    if (names == nullptr) return Failed("client CA " + files.client_ca_file + ": no certificate");
    SSL_CTX_set_client_CA_list(raw, names);
    if (HasCrl(files.client_ca_file)) {
      X509_STORE_set_flags(SSL_CTX_get_cert_store(raw), X509_V_FLAG_CRL_CHECK);
    }
    ssl::verify_mode mode = ssl::verify_peer;
    if (files.require_client_certificate) mode |= ssl::verify_fail_if_no_peer_cert;
    ctx->set_verify_mode(mode, ec);
    if (ec) return Failed("verify mode", ec);
  } else {
    ctx->set_verify_mode(ssl::verify_none, ec);
  }
  return ctx;
}

PeerCertificate PeerCertificateOf(SSL* ssl) {
  PeerCertificate out;
  if (ssl == nullptr) return out;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return out;
  out.present = true;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    if (len > 0) out.subject.assign(data, static_cast<std::size_t>(len));
    BIO_free(bio);
  }
  unsigned char* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (len > 0) {
    out.spki_sha256.resize(SHA256_DIGEST_LENGTH);
    SHA256(der, static_cast<std::size_t>(len), out.spki_sha256.data());
  }
  OPENSSL_free(der);
  return out;
}

}  // namespace qseal::ingest::detail
