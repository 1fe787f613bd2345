#include "audit/detail/checkpoint_key.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/detail/record.h"
#include "common/bytes.h"
#include "common/secret.h"
#include "common/sha256.h"

namespace qseal::audit::detail {
namespace {

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* k) { return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free); }

Result<std::string> KeyId(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return InvalidArgumentError("cannot encode the checkpoint public key");
  std::string id = Sha256Hex(ByteSpan(der, static_cast<std::size_t>(len)));
  OPENSSL_free(der);
  return id;
}

Status CheckP256(EVP_PKEY* key, const std::string& path) {
  char group[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
      EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) !=
          1 ||
      std::string_view(group, len) != "prime256v1") {
    return InvalidArgumentError(path + ": the checkpoint key must be ECDSA P-256");
  }
  return Status::Ok();
}

Status WritePem(const std::string& path, EVP_PKEY* key, bool is_private) {
  ::mode_t old = ::umask(is_private ? 077 : 022);
  std::FILE* f = std::fopen(path.c_str(), "wx");
  ::umask(old);
  if (f == nullptr) return UnavailableError("cannot create " + path);
  int ok = is_private ? PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr)
                      : PEM_write_PUBKEY(f, key);
  bool flushed = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  std::fclose(f);
  if (ok != 1 || !flushed) return UnavailableError("cannot write " + path);
  return Status::Ok();
}

}  // namespace

Result<CheckpointKey> CheckpointKey::LoadPrivate(const std::string& path, bool create) {
  std::error_code ec;
  if (create && !std::filesystem::exists(path, ec)) {
    std::shared_ptr<EVP_PKEY> k = Own(EVP_EC_gen("P-256"));
    if (!k) return InternalError("cannot generate the checkpoint key");
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    QSEAL_RETURN_IF_ERROR(WritePem(path, k.get(), true));
    std::string pub = path + ".pub.pem";
    std::filesystem::remove(pub, ec);
    QSEAL_RETURN_IF_ERROR(WritePem(pub, k.get(), false));
  }
  // A key others may read can be copied, one others may write can be swapped: refused either way.
  QSEAL_RETURN_IF_ERROR(CheckSecretFileMode(path, "checkpoint key"));
  BioPtr bio(BIO_new_file(path.c_str(), "r"), &BIO_free);
  if (!bio) return InvalidArgumentError("cannot read the checkpoint key " + path);
  std::shared_ptr<EVP_PKEY> key =
      Own(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return InvalidArgumentError(path + ": not a PEM private key");
  QSEAL_RETURN_IF_ERROR(CheckP256(key.get(), path));
  CheckpointKey out;
  QSEAL_ASSIGN_OR_RETURN(out.key_id_, KeyId(key.get()));
  out.key_ = std::move(key);
  return out;
}

Result<CheckpointKey> CheckpointKey::LoadPublic(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"), &BIO_free);
  if (!bio) return InvalidArgumentError("cannot read the checkpoint public key " + path);
  std::shared_ptr<EVP_PKEY> key = Own(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    BIO_reset(bio.get());
    key = Own(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  }
  if (!key) {
    BIO_reset(bio.get());
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert != nullptr) {
      key = Own(X509_get_pubkey(cert));
      X509_free(cert);
    }
  }
  if (!key) return InvalidArgumentError(path + ": no PEM public key, private key or certificate");
  QSEAL_RETURN_IF_ERROR(CheckP256(key.get(), path));
  CheckpointKey out;
  QSEAL_ASSIGN_OR_RETURN(out.key_id_, KeyId(key.get()));
  out.key_ = std::move(key);
  return out;
}

Result<CheckpointKey> CheckpointKey::External(ByteSpan spki_der, DigestSigner sign) {
  const unsigned char* p = spki_der.data();
  std::shared_ptr<EVP_PKEY> key = Own(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size())));
  if (!key) return InvalidArgumentError("the HSM checkpoint key's public key does not parse");
  QSEAL_RETURN_IF_ERROR(CheckP256(key.get(), "the HSM checkpoint key"));
  CheckpointKey out;
  QSEAL_ASSIGN_OR_RETURN(out.key_id_, KeyId(key.get()));
  out.key_ = std::move(key);
  out.external_ = std::move(sign);
  return out;
}

Result<std::string> CheckpointKey::Sign(std::string_view message) const {
  if (external_) {
    QSEAL_ASSIGN_OR_RETURN(Bytes digest, Digest(DigestAlgorithm::kSha256, AsBytes(message)));
    QSEAL_ASSIGN_OR_RETURN(Bytes sig, external_(digest));
    std::string hex = HexEncode(sig);
    // The trail must never hold a checkpoint its key_id does not verify.
    if (!Verify(message, hex)) {
      return InternalError("the HSM's checkpoint signature does not verify with key_id " + key_id_);
    }
    return hex;
  }
  MdCtxPtr ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return InternalError("checkpoint signing failed");
  }
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return InternalError("checkpoint signing failed");
  }
  sig.resize(len);
  return HexEncode(sig);
}

bool CheckpointKey::Verify(std::string_view message, std::string_view signature_hex) const {
  Result<Bytes> sig = HexDecode(signature_hex);
  if (!sig.ok() || sig->empty()) return false;
  MdCtxPtr ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), sig->data(), sig->size(),
                          reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

}  // namespace qseal::audit::detail
