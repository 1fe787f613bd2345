#include "formats/raw/raw_format.h"

#include <ctime>
#include <string>

#include <openssl/evp.h>
#include <openssl/x509.h>

namespace qseal::formats::raw {
namespace {

class RawSignatureFormat : public Format {
 public:
  RawSignatureFormat(const FormatOptions& options, std::chrono::system_clock::time_point not_before,
                     std::chrono::system_clock::time_point not_after)
      : digest_(options.digest), not_before_(not_before), not_after_(not_after) {}

  std::string_view name() const override { return kRawSignatureFormat; }
  std::string_view media_type() const override { return "application/octet-stream"; }
  std::string OutputName(std::string_view document_name) const override {
    return SafeOutputStem(document_name) + ".sig";
  }
  bool embeds_document() const override { return false; }

  Result<std::unique_ptr<ToBeSigned>> Prepare(
      const Content& content, std::chrono::system_clock::time_point signing_time) const override {
    if (content.precomputed_digest.empty()) {
      return InvalidArgumentError("raw-signature signs a client's digest only");
    }
    if (content.precomputed_digest.size() != DigestSize(digest_)) {
      return InvalidArgumentError("a " + std::string(DigestName(digest_)) + " digest has " +
                                  std::to_string(DigestSize(digest_)) + " bytes, not " +
                                  std::to_string(content.precomputed_digest.size()));
    }
    if (signing_time < not_before_ || signing_time > not_after_) {
      return FailedPreconditionError("the signing time is outside the certificate's validity");
    }
    auto tbs = std::make_unique<ToBeSigned>();
    tbs->digest = content.precomputed_digest;
    tbs->content_digest = content.precomputed_digest;
    tbs->signing_time = std::chrono::time_point_cast<std::chrono::seconds>(signing_time);
    return tbs;
  }

  Status Assemble(const ToBeSigned&, ByteSpan signature, const Content&,
                  const WriteFn& write) const override {
    if (signature.empty()) return InvalidArgumentError("empty signature");
    return write(signature);
  }

  std::uint64_t OutputSizeHint(const ToBeSigned&, std::size_t signature_size,
                               std::uint64_t) const override {
    return signature_size;
  }

 private:
  const DigestAlgorithm digest_;
  const std::chrono::system_clock::time_point not_before_;
  const std::chrono::system_clock::time_point not_after_;
};

Result<std::chrono::system_clock::time_point> ToTimePoint(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return InvalidArgumentError("certificate validity does not parse");
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

Result<std::unique_ptr<const Format>> CreateRawSignatureFormat(const FormatOptions& options) {
  if (options.certificate_chain_der.empty()) {
    return InvalidArgumentError("raw-signature needs the key's certificate");
  }
  const Bytes& leaf_der = options.certificate_chain_der.front();
  const unsigned char* p = leaf_der.data();
  X509* leaf = d2i_X509(nullptr, &p, static_cast<long>(leaf_der.size()));
  if (leaf == nullptr) return InvalidArgumentError("the seal certificate does not parse");
  const int key_id = EVP_PKEY_get_base_id(X509_get0_pubkey(leaf));
  Result<std::chrono::system_clock::time_point> not_before = ToTimePoint(X509_get0_notBefore(leaf));
  Result<std::chrono::system_clock::time_point> not_after = ToTimePoint(X509_get0_notAfter(leaf));
  X509_free(leaf);
  if (!not_before.ok()) return not_before.status();
  if (!not_after.ok()) return not_after.status();
  const bool ec_scheme = options.scheme == SignatureScheme::kEcdsa;
  if ((ec_scheme && key_id != EVP_PKEY_EC) || (!ec_scheme && key_id != EVP_PKEY_RSA)) {
    return InvalidArgumentError("the certificate's key does not fit the scheme " +
                                std::string(SchemeName(options.scheme)));
  }
  return std::unique_ptr<const Format>(
      std::make_unique<RawSignatureFormat>(options, *not_before, *not_after));
}

}  // namespace qseal::formats::raw
