#include "formats/cades/cades_format.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "common/sha256.h"
#include "formats/cades/timestamp.h"

namespace qseal::formats::cades {
namespace {

// What Prepare keeps for Assemble: cades's own first half.
struct CadesToBeSigned final : formats::ToBeSigned {
  cades::ToBeSigned cades;
};

class CadesFormat final : public Format {
 public:
  CadesFormat(Packaging packaging, std::shared_ptr<const SignerContext> context)
      : packaging_(packaging), context_(std::move(context)) {}

  std::string_view name() const override {
    return packaging_ == Packaging::kDetached ? "cades-detached" : "cades-enveloping";
  }
  std::string_view media_type() const override {
    return packaging_ == Packaging::kDetached ? "application/pkcs7-signature"
                                              : "application/pkcs7-mime";
  }
  std::string OutputName(std::string_view document_name) const override {
    return SafeOutputStem(document_name) + (packaging_ == Packaging::kDetached ? ".p7s" : ".p7m");
  }
  bool embeds_document() const override { return packaging_ == Packaging::kEnveloping; }

  Result<std::unique_ptr<formats::ToBeSigned>> Prepare(
      const Content& content, std::chrono::system_clock::time_point signing_time) const override {
    Bytes digest;
    if (!content.precomputed_digest.empty()) {
      // Digest-only: the submitter hashed the document. An enveloping seal must carry the
      // document, which is not here.
      if (packaging_ == Packaging::kEnveloping) {
        return InvalidArgumentError(
            "cades-enveloping embeds the document: a digest-only document needs a "
            "cades-detached profile");
      }
      digest = content.precomputed_digest;  // BuildToBeSigned refuses a wrong length
    } else {
      Hasher hasher(context_->digest());
      QSEAL_RETURN_IF_ERROR(
          StreamContent(content, [&hasher](ByteSpan piece) { return hasher.Update(piece); }));
      QSEAL_ASSIGN_OR_RETURN(digest, hasher.Final());
    }
    QSEAL_ASSIGN_OR_RETURN(cades::ToBeSigned tbs, BuildToBeSigned(*context_, digest, signing_time));
    auto out = std::make_unique<CadesToBeSigned>();
    out->digest = tbs.digest;
    out->content_digest = tbs.content_digest;
    out->signing_time = tbs.signing_time;
    out->cades = std::move(tbs);
    return std::unique_ptr<formats::ToBeSigned>(std::move(out));
  }

  Status Assemble(const formats::ToBeSigned& tbs, ByteSpan signature, const Content& content,
                  const WriteFn& write) const override {
    const auto* ours = dynamic_cast<const CadesToBeSigned*>(&tbs);
    if (ours == nullptr) return InvalidArgumentError("to-be-signed not made by a CAdES format");
    QSEAL_ASSIGN_OR_RETURN(Bytes revocation_info, RevocationInfo(tbs));
    if (packaging_ == Packaging::kDetached) {
      QSEAL_ASSIGN_OR_RETURN(Bytes seal,
                             AssembleDetached(*context_, ours->cades, signature,
                                              tbs.signature_timestamp_token, revocation_info));
      return write(seal);
    }
    QSEAL_ASSIGN_OR_RETURN(ReadFn read, content.open());
    return AssembleEnveloping(*context_, ours->cades, signature, content.size, read, write,
                              tbs.signature_timestamp_token, revocation_info);
  }

  bool has_validation_data() const override { return true; }

  bool has_timestamps() const override { return true; }
  Result<Bytes> TimestampImprint(const formats::ToBeSigned&, ByteSpan signature) const override {
    return SignatureTimeStampImprint(context_->digest(), signature);
  }

  std::uint64_t OutputSizeHint(const formats::ToBeSigned& tbs, std::size_t signature_size,
                               std::uint64_t content_size) const override {
    const auto* ours = dynamic_cast<const CadesToBeSigned*>(&tbs);
    if (ours == nullptr || packaging_ == Packaging::kDetached) return 0;
    Result<Bytes> revocation_info = RevocationInfo(tbs);
    return EnvelopingSealSize(*context_, ours->cades, signature_size, content_size,
                              tbs.signature_timestamp_token.size(),
                              revocation_info.ok() ? revocation_info->size() : 0);
  }

 private:
  // B-LT: the `crls` field for the seal's validation data; empty without any. Encoded per seal
  // (a copy of about a kilobyte) so that the snapshot stays format-neutral.
  static Result<Bytes> RevocationInfo(const formats::ToBeSigned& tbs) {
    if (tbs.validation_data == nullptr) return Bytes();
    return EncodeRevocationInfo(*tbs.validation_data);
  }

  const Packaging packaging_;
  const std::shared_ptr<const SignerContext> context_;
};

}  // namespace

Result<std::unique_ptr<const Format>> CreateCadesFormat(Packaging packaging,
                                                        const FormatOptions& options) {
  QSEAL_ASSIGN_OR_RETURN(
      std::shared_ptr<const SignerContext> context,
      SignerContext::Create(options.certificate_chain_der, options.digest, options.scheme));
  return std::unique_ptr<const Format>(
      std::make_unique<const CadesFormat>(packaging, std::move(context)));
}

}  // namespace qseal::formats::cades
