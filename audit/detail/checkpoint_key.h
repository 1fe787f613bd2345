// The checkpoint key: an ECDSA P-256 key in a local PEM file (OpenSSL 3 EVP), or one held in an
// HSM and reached through a signing function. Signs checkpoint messages for the writer; verifies
// them for the verifier with the public half only.
// Not a public interface.
//
// Thread-compatible (EVP_PKEY operations use a fresh context per call).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/status.h"

struct evp_pkey_st;

namespace qseal::audit::detail {

class CheckpointKey {
 public:
  // The private key from a PEM file; with `create`, a missing file is generated (mode 0600) with
  // `<path>.pub.pem` beside it. kInvalidArgument for an unreadable file or a key that is not
  // EC P-256.
  static Result<CheckpointKey> LoadPrivate(const std::string& path, bool create);
  // A public key from a PEM file holding a public key, a private key or a certificate.
  static Result<CheckpointKey> LoadPublic(const std::string& path);
  // A key held elsewhere (an HSM): `sign` returns the DER ECDSA signature of a SHA-256 digest, and
  // `spki_der` (its SubjectPublicKeyInfo, P-256) names it and checks every signature it returns.
  using DigestSigner = std::function<Result<Bytes>(ByteSpan sha256)>;
  static Result<CheckpointKey> External(ByteSpan spki_der, DigestSigner sign);

  // Hex SHA-256 of the SubjectPublicKeyInfo DER: names the key in checkpoint records.
  const std::string& key_id() const { return key_id_; }
  // Hex DER ECDSA-SHA256 signature of `message`.
  Result<std::string> Sign(std::string_view message) const;
  bool Verify(std::string_view message, std::string_view signature_hex) const;

 private:
  std::shared_ptr<evp_pkey_st> key_;
  std::string key_id_;
  DigestSigner external_;  // set: key_ is the public half only
};

}  // namespace qseal::audit::detail
