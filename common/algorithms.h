// The digest and signature-scheme vocabulary shared by hsm/ (which signs) and formats/ (which
// encodes algorithm identifiers), so the two never translate between private enums.
// Pure values and functions; thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace qseal {

enum class DigestAlgorithm { kSha256, kSha384, kSha512 };

enum class SignatureScheme {
  kRsaPkcs1v15,  // RSASSA-PKCS1-v1_5 (CKM_RSA_PKCS over a DigestInfo)
  kRsaPss,       // RSASSA-PSS, MGF1 with the same digest, salt length = digest length
  kEcdsa,        // ECDSA; signatures travel DER-encoded (ECDSA-Sig-Value)
};

// "sha256", "sha384", "sha512".
std::string_view DigestName(DigestAlgorithm d);
// "rsa-pkcs1", "rsa-pss", "ecdsa".
std::string_view SchemeName(SignatureScheme s);
// Digest size in bytes (32, 48, 64).
std::size_t DigestSize(DigestAlgorithm d);

// Inverse of DigestName / SchemeName; nullopt for unknown names (SHA-1 and SHA-224 are unknown on
// purpose: policy never allows them).
std::optional<DigestAlgorithm> ParseDigest(std::string_view name);
std::optional<SignatureScheme> ParseScheme(std::string_view name);

}  // namespace qseal
