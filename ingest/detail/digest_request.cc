#include "ingest/detail/digest_request.h"

#include <nlohmann/json.hpp>

namespace qseal::ingest::detail {
namespace {

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::optional<Bytes> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=')
    pad = (text.size() >= 2 && text[text.size() - 2] == '=') ? 2 : 1;
  Bytes out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::uint32_t v = 0;
    const bool last = i + 4 == text.size();
    for (std::size_t k = 0; k < 4; ++k) {
      char c = text[i + k];
      int d = 0;
      if (c == '=') {
        if (!last || k < 4 - pad) return std::nullopt;
      } else {
        d = Base64Value(c);
        if (d < 0) return std::nullopt;
      }
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    const std::size_t n = last ? 3 - pad : 3;
    for (std::size_t k = 0; k < n; ++k) {
      out.push_back(static_cast<std::uint8_t>((v >> (16 - 8 * k)) & 0xFFU));
    }
    // Canonical form only: the bits the padding drops must be zero.
    if (last && pad > 0 && (v & ((1U << (8 * pad)) - 1)) != 0) return std::nullopt;
  }
  return out;
}

std::optional<DigestAlgorithm> ParseClientDigestName(std::string_view name) {
  std::string n;
  for (char c : name) n += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (n.rfind("sha-", 0) == 0) n.erase(3, 1);
  return ParseDigest(n);
}

Result<DigestRequest> ParseDigestRequest(std::string_view body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError(
        "body: must be a JSON object {\"digest\", \"algorithm\", [\"profile\"], [\"filename\"], "
        "[\"media_type\"]}");
  }
  auto string_field = [&j](const char* key) -> Result<std::optional<std::string>> {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::optional<std::string>();
    if (!it->is_string()) return FailedPreconditionError(std::string(key) + " must be a string");
    return std::optional<std::string>(it->get<std::string>());
  };
  DigestRequest r;
  QSEAL_ASSIGN_OR_RETURN(std::optional<std::string> alg, string_field("algorithm"));
  if (!alg) return FailedPreconditionError("algorithm is required (sha256, sha384 or sha512)");
  std::optional<DigestAlgorithm> parsed = ParseClientDigestName(*alg);
  if (!parsed) {
    return FailedPreconditionError("unknown digest algorithm \"" + alg->substr(0, 40) +
                                   "\" (sha256, sha384 or sha512)");
  }
  r.algorithm = *parsed;
  QSEAL_ASSIGN_OR_RETURN(std::optional<std::string> b64, string_field("digest"));
  QSEAL_ASSIGN_OR_RETURN(std::optional<std::string> hex, string_field("digest_hex"));
  if (b64.has_value() == hex.has_value()) {
    return FailedPreconditionError("exactly one of digest (base64) and digest_hex is required");
  }
  if (b64) {
    std::optional<Bytes> d = Base64Decode(*b64);
    if (!d) return FailedPreconditionError("digest is not base64 (RFC 4648, padded)");
    r.digest = std::move(*d);
  } else {
    Result<Bytes> d = HexDecode(*hex);
    if (!d.ok()) return FailedPreconditionError("digest_hex is not hexadecimal");
    r.digest = std::move(*d);
  }
  const std::size_t want = DigestSize(r.algorithm);
  if (r.digest.size() != want) {
    return FailedPreconditionError("digest is " + std::to_string(r.digest.size()) + " bytes; " +
                                   std::string(DigestName(r.algorithm)) + " digests are " +
                                   std::to_string(want));
  }
  QSEAL_ASSIGN_OR_RETURN(r.profile, string_field("profile"));
  QSEAL_ASSIGN_OR_RETURN(std::optional<std::string> name, string_field("filename"));
  if (name) r.filename = std::move(*name);
  QSEAL_ASSIGN_OR_RETURN(std::optional<std::string> media, string_field("media_type"));
  if (media) r.media_type = media->substr(0, 200);
  return r;
}

}  // namespace qseal::ingest::detail
