#include "common/sha256.h"

#include <openssl/evp.h>

namespace qseal {
namespace {

// DigestName() spells the OpenSSL names ("sha256", ...), so one lookup serves every digest.
const EVP_MD* DigestMd(DigestAlgorithm d) { return EVP_get_digestbyname(DigestName(d).data()); }

}  // namespace

struct Hasher::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Hasher::Hasher(DigestAlgorithm digest) : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  const EVP_MD* md = DigestMd(digest);
  if (ctx_->md == nullptr || md == nullptr || EVP_DigestInit_ex2(ctx_->md, md, nullptr) != 1) {
    status_ = InternalError("cannot start " + std::string(DigestName(digest)));
  }
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

Status Hasher::Update(ByteSpan data) {
  if (status_.ok() && !ctx_) status_ = InternalError("hasher used after it was moved from");
  if (status_.ok() && EVP_DigestUpdate(ctx_->md, data.data(), data.size()) != 1) {
    status_ = InternalError("EVP_DigestUpdate failed");
  }
  return status_;
}

Result<Bytes> Hasher::Final() {
  if (status_.ok() && !ctx_) status_ = InternalError("hasher used after it was moved from");
  if (!status_.ok()) return status_;
  Bytes out(static_cast<std::size_t>(EVP_MAX_MD_SIZE));
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_->md, out.data(), &len) != 1) {
    status_ = InternalError("EVP_DigestFinal failed");
    return status_;
  }
  // The context is finalised: a further Update or Final would be undefined in OpenSSL.
  status_ = FailedPreconditionError("hasher already finalised");
  out.resize(len);
  return out;
}

Result<std::string> Hasher::FinalHex() {
  QSEAL_ASSIGN_OR_RETURN(Bytes digest, Final());
  return HexEncode(digest);
}

Result<Bytes> Digest(DigestAlgorithm digest, ByteSpan data) {
  Hasher hasher(digest);
  QSEAL_RETURN_IF_ERROR(hasher.Update(data));
  return hasher.Final();
}

std::string Sha256Hex(ByteSpan data) {
  Hasher hasher(DigestAlgorithm::kSha256);
  (void)hasher.Update(data);
  Result<std::string> hex = hasher.FinalHex();
  return hex.ok() ? *hex : std::string();
}

}  // namespace qseal
