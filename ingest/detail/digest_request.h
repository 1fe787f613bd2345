// The body of POST /v1/digests (digest-only sealing, docs/api-clients.md): a JSON object with the
// document's digest made by the client, its algorithm, and optionally the profile, file name and
// media type. Pure functions; thread-safe. The profile's own checks (granted, digest algorithm,
// format) are the API server's.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"

namespace qseal::ingest::detail {

struct DigestRequest {
  DigestAlgorithm algorithm = DigestAlgorithm::kSha256;
  Bytes digest;                        // exactly DigestSize(algorithm) bytes
  std::optional<std::string> profile;  // the body's "profile", when given
  std::string filename;                // as given (the caller sanitises it); may be empty
  std::string media_type;              // as given, at most 200 bytes; may be empty
};

// Parses {"digest": BASE64 | "digest_hex": HEX, "algorithm": "sha256"|"sha-256"|..., "profile",
// "filename", "media_type"}. Algorithm names are case-insensitive, with or without the dash
// (SHA-256, sha256; SHA-384, SHA-512). Errors: kInvalidArgument when the body is not a JSON
// object (the message starts "body:"; the API answers 400) and kFailedPrecondition for a
// well-formed body it refuses: no or both digest fields, bad base64/hex, an unknown algorithm, a
// digest whose length is not the algorithm's, a field of the wrong type (422).
Result<DigestRequest> ParseDigestRequest(std::string_view body);

// RFC 4648 base64 (standard alphabet, padding required, no whitespace). nullopt when malformed.
std::optional<Bytes> Base64Decode(std::string_view text);

// The algorithm a client names: DigestName spelled in any case, with or without a '-' after
// "sha" ("SHA-256"). nullopt for anything else (SHA-1 and SHA-224 included).
std::optional<DigestAlgorithm> ParseClientDigestName(std::string_view name);

}  // namespace qseal::ingest::detail
