// Streaming message digests (SHA-256/384/512 through OpenSSL 3), the one hasher every component
// uses for document hashes, record hashes and checksums. Every EVP call's return is checked: a
// failure is kInternal and sticks, so Final() reports it even when Update() was not checked.
// Thread-compatible (one hasher per thread).
#pragma once

#include <memory>
#include <string>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"

namespace qseal {

class Hasher {
 public:
  explicit Hasher(DigestAlgorithm digest = DigestAlgorithm::kSha256);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  // Feeds bytes. Returns the sticky status (OK unless an EVP call failed).
  Status Update(ByteSpan data);
  // The digest of everything fed so far; the hasher is spent afterwards (a second call fails).
  Result<Bytes> Final();
  // Final() as lower-case hex.
  Result<std::string> FinalHex();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  Status status_ = Status::Ok();
};

// One-shot digest of a buffer.
Result<Bytes> Digest(DigestAlgorithm digest, ByteSpan data);
// Lower-case hex SHA-256 of a buffer. An EVP failure (which only a broken OpenSSL install could
// cause) yields "" so that it never matches a real digest.
std::string Sha256Hex(ByteSpan data);

}  // namespace qseal
