#include "common/algorithms.h"

namespace qseal {

std::string_view DigestName(DigestAlgorithm d) {
  switch (d) {
    case DigestAlgorithm::kSha256:
      return "sha256";
    case DigestAlgorithm::kSha384:
      return "sha384";
    case DigestAlgorithm::kSha512:
      return "sha512";
  }
  return "sha256";
}

std::string_view SchemeName(SignatureScheme s) {
  switch (s) {
    case SignatureScheme::kRsaPkcs1v15:
      return "rsa-pkcs1";
    case SignatureScheme::kRsaPss:
      return "rsa-pss";
    case SignatureScheme::kEcdsa:
      return "ecdsa";
  }
  return "ecdsa";
}

std::size_t DigestSize(DigestAlgorithm d) {
  switch (d) {
    case DigestAlgorithm::kSha256:
      return 32;
    case DigestAlgorithm::kSha384:
      return 48;
    case DigestAlgorithm::kSha512:
      return 64;
  }
  return 32;
}

std::optional<DigestAlgorithm> ParseDigest(std::string_view name) {
  for (auto d : {DigestAlgorithm::kSha256, DigestAlgorithm::kSha384, DigestAlgorithm::kSha512}) {
    if (name == DigestName(d)) return d;
  }
  return std::nullopt;
}

std::optional<SignatureScheme> ParseScheme(std::string_view name) {
  for (auto s :
       {SignatureScheme::kRsaPkcs1v15, SignatureScheme::kRsaPss, SignatureScheme::kEcdsa}) {
    if (name == SchemeName(s)) return s;
  }
  return std::nullopt;
}

}  // namespace qseal
