#include "formats/pades/pades_format.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/sha256.h"
#include "formats/cades/cades.h"
#include "formats/cades/timestamp.h"
#include "formats/pades/detail/incremental_update.h"

namespace qseal::formats::pades {
namespace {

// Room beyond the largest CMS measured at creation: DER length fields that grow by a byte.
constexpr std::size_t kContentsSlack = 32;

struct PadesToBeSigned final : formats::ToBeSigned {
  cades::ToBeSigned cades;
  detail::IncrementalUpdate update;
  std::uint64_t original_size = 0;
};

// NAME.signed.pdf for NAME.pdf (or NAME): never the document's own name, since the watched
// folder's outbox keeps the original beside its seal (format.h: never a path, never hidden).
std::string PdfName(std::string_view document_name) {
  std::string name = SafeOutputStem(document_name);
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.size() > 4 && lower.compare(lower.size() - 4, 4, ".pdf") == 0) {
    name.resize(name.size() - 4);
  }
  return name + ".signed.pdf";
}

// The largest signature the leaf's key can make (RSA: the modulus; ECDSA: the longest DER
// ECDSA-Sig-Value), as OpenSSL reports it for output buffers.
Result<std::size_t> MaxSignatureSize(const Bytes& leaf_der) {
  const unsigned char* p = leaf_der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(leaf_der.size()));
  if (cert == nullptr) return InvalidArgumentError("signer certificate does not parse");
  int size = EVP_PKEY_get_size(X509_get0_pubkey(cert));
  X509_free(cert);
  if (size <= 0) return InvalidArgumentError("signer certificate key has no signature size");
  return static_cast<std::size_t>(size);
}

// Bytes reserved for the CMS in /Contents: the CMS this context makes with the largest
// signature its key can give, measured once by assembling it with a dummy signature.
Result<std::size_t> ContentsCapacity(const cades::SignerContext& context) {
  QSEAL_ASSIGN_OR_RETURN(std::size_t sig_size, MaxSignatureSize(context.signer_certificate_der()));
  Bytes zero_digest(DigestSize(context.digest()), 0);
  QSEAL_ASSIGN_OR_RETURN(cades::ToBeSigned tbs,
                         cades::BuildToBeSigned(context, zero_digest, context.not_before(),
                                                cades::SigningTimeAttribute::kAbsent));
  QSEAL_ASSIGN_OR_RETURN(Bytes cms, cades::AssembleDetached(context, tbs, Bytes(sig_size, 0x5a)));
  return cms.size() + kContentsSlack;
}

// Feeds the signed parts of `update` (all but the /Contents hex string) to `hasher`.
Status HashUpdate(Hasher& hasher, const detail::IncrementalUpdate& update) {
  std::size_t gap_end = update.contents_offset + 2 * update.contents_capacity + 2;
  QSEAL_RETURN_IF_ERROR(hasher.Update(ByteSpan(update.bytes.data(), update.contents_offset)));
  return hasher.Update(ByteSpan(update.bytes.data() + gap_end, update.bytes.size() - gap_end));
}

class PadesFormat final : public Format {
 public:
  PadesFormat(std::shared_ptr<const cades::SignerContext> context, std::vector<Bytes> chain,
              std::size_t capacity, std::uint64_t max_document_bytes, std::size_t timestamp_reserve)
      : context_(std::move(context)),
        chain_(std::move(chain)),
        contents_capacity_(capacity + timestamp_reserve),
        max_document_bytes_(max_document_bytes),
        timestamp_reserve_(timestamp_reserve) {}

  std::string_view name() const override { return "pades"; }
  std::string_view media_type() const override { return "application/pdf"; }
  std::string OutputName(std::string_view document_name) const override {
    return PdfName(document_name);
  }
  bool embeds_document() const override { return true; }

  // PAdES B-T (EN 319 142-1 §5.4): the signature time-stamp unsigned attribute of the CMS in
  // /Contents, as CAdES B-T; only with room reserved for it.
  bool has_timestamps() const override { return timestamp_reserve_ > 0; }
  Result<Bytes> TimestampImprint(const formats::ToBeSigned& tbs,
                                 ByteSpan signature) const override {
    if (!has_timestamps()) return Format::TimestampImprint(tbs, signature);
    return cades::SignatureTimeStampImprint(context_->digest(), signature);
  }

  // PAdES B-LT (EN 319 142-1 §5.4): the chain and the revocation data in a DSS dictionary, in
  // an incremental update after the sealed revision (it is known only once the TSA and the cache
  // have answered, and adding it there leaves the signature valid).
  bool has_validation_data() const override { return true; }

  Result<std::unique_ptr<formats::ToBeSigned>> Prepare(
      const Content& content, std::chrono::system_clock::time_point signing_time) const override {
    if (!content.precomputed_digest.empty()) {
      return InvalidArgumentError(
          "pades signs inside the PDF: a digest-only document needs a cades-detached profile");
    }
    auto tbs = std::make_unique<PadesToBeSigned>();
    tbs->original_size = content.size;
    tbs->signing_time = std::chrono::floor<std::chrono::seconds>(signing_time);
    const detail::UpdateRequest request{contents_capacity_, tbs->signing_time};
    Hasher hasher(context_->digest());
    if (content.read_at) {
      // Random access: qpdf reads the objects it needs by offset and the digest streams, so the
      // document is never held in memory whatever its size.
      QSEAL_RETURN_IF_ERROR(
          StreamContent(content, [&](ByteSpan piece) { return hasher.Update(piece); }));
      QSEAL_ASSIGN_OR_RETURN(
          tbs->update,
          detail::BuildIncrementalUpdate(detail::PdfBytes{content.size, content.read_at}, request));
    } else {
      if (content.size > max_document_bytes_) {
        return InvalidArgumentError(
            "PDF of " + std::to_string(content.size) + " bytes is over the PAdES limit of " +
            std::to_string(max_document_bytes_) + " for documents read without random access");
      }
      Bytes original;
      original.reserve(static_cast<std::size_t>(content.size));
      QSEAL_RETURN_IF_ERROR(StreamContent(content, [&](ByteSpan piece) {
        original.insert(original.end(), piece.begin(), piece.end());
        return hasher.Update(piece);
      }));
      QSEAL_ASSIGN_OR_RETURN(tbs->update, detail::BuildIncrementalUpdate(
                                              detail::PdfBytes::InMemory(original), request));
    }
    QSEAL_RETURN_IF_ERROR(HashUpdate(hasher, tbs->update));
    QSEAL_ASSIGN_OR_RETURN(Bytes byte_range_digest, hasher.Final());
    QSEAL_ASSIGN_OR_RETURN(tbs->cades,
                           cades::BuildToBeSigned(*context_, byte_range_digest, signing_time,
                                                  cades::SigningTimeAttribute::kAbsent));
    tbs->digest = tbs->cades.digest;
    tbs->content_digest = tbs->cades.content_digest;
    return std::unique_ptr<formats::ToBeSigned>(std::move(tbs));
  }

  Status Assemble(const formats::ToBeSigned& tbs, ByteSpan signature, const Content& content,
                  const WriteFn& write) const override {
    const auto* ours = dynamic_cast<const PadesToBeSigned*>(&tbs);
    if (ours == nullptr) return InvalidArgumentError("to-be-signed not made by the PAdES format");
    QSEAL_ASSIGN_OR_RETURN(Bytes cms, cades::AssembleDetached(*context_, ours->cades, signature,
                                                              tbs.signature_timestamp_token));
    const detail::IncrementalUpdate& update = ours->update;
    if (cms.size() > update.contents_capacity) {
      if (!tbs.signature_timestamp_token.empty()) {
        return InvalidArgumentError("the CMS with its time-stamp token (" +
                                    std::to_string(cms.size()) + " bytes) does not fit the " +
                                    std::to_string(update.contents_capacity) +
                                    " reserved in /Contents: the TSA's token is over the reserve");
      }
      return InternalError("CMS of " + std::to_string(cms.size()) + " bytes exceeds the " +
                           std::to_string(update.contents_capacity) + " reserved in /Contents");
    }

    // The original again, streamed and hashed: it must be what Prepare signed.
    if (content.size != ours->original_size) {
      return DataLossError("the PDF changed between Prepare and Assemble (its size differs)");
    }
    Hasher hasher(context_->digest());
    Status streamed = StreamContent(content, [&](ByteSpan piece) {
      QSEAL_RETURN_IF_ERROR(hasher.Update(piece));
      return write(piece);
    });
    QSEAL_RETURN_IF_ERROR(streamed);
    QSEAL_RETURN_IF_ERROR(HashUpdate(hasher, update));
    QSEAL_ASSIGN_OR_RETURN(Bytes digest, hasher.Final());
    if (digest != ours->content_digest) {
      return DataLossError(
          "the PDF changed between Prepare and Assemble (ByteRange digest differs)");
    }

    Bytes out = update.bytes;
    std::string hex = HexEncode(cms);
    std::copy(hex.begin(), hex.end(), out.begin() + static_cast<long>(update.contents_offset + 1));
    QSEAL_RETURN_IF_ERROR(write(out));
    if (tbs.validation_data == nullptr) return Status::Ok();
    return write(DssUpdate(*ours));
  }

  std::uint64_t OutputSizeHint(const formats::ToBeSigned& tbs, std::size_t,
                               std::uint64_t) const override {
    const auto* ours = dynamic_cast<const PadesToBeSigned*>(&tbs);
    if (ours == nullptr) return 0;
    std::uint64_t size = ours->original_size + ours->update.bytes.size();
    if (tbs.validation_data != nullptr) size += DssUpdate(*ours).size();
    return size;
  }

 private:
  // The B-LT update for a seal whose validation_data is set.
  Bytes DssUpdate(const PadesToBeSigned& tbs) const {
    detail::DssContent dss{chain_, tbs.validation_data->ocsp_responses, tbs.validation_data->crls};
    return detail::BuildDssUpdate(tbs.update.tail, tbs.original_size + tbs.update.bytes.size(),
                                  dss);
  }

  const std::shared_ptr<const cades::SignerContext> context_;
  const std::vector<Bytes> chain_;
  const std::size_t contents_capacity_;
  const std::uint64_t max_document_bytes_;
  const std::size_t timestamp_reserve_;
};

}  // namespace

Result<std::unique_ptr<const Format>> CreatePadesFormat(const FormatOptions& options,
                                                        std::uint64_t max_document_bytes) {
  QSEAL_ASSIGN_OR_RETURN(
      std::shared_ptr<const cades::SignerContext> context,
      cades::SignerContext::Create(options.certificate_chain_der, options.digest, options.scheme));
  QSEAL_ASSIGN_OR_RETURN(std::size_t capacity, ContentsCapacity(*context));
  return std::unique_ptr<const Format>(std::make_unique<const PadesFormat>(
      std::move(context), options.certificate_chain_der, capacity, max_document_bytes,
      options.timestamp_reserve_bytes));
}

}  // namespace qseal::formats::pades
