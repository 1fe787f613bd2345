#include "formats/cades/cades.h"

#include <algorithm>
#include <utility>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "formats/cades/detail/cms.h"
#include "formats/cades/detail/der.h"
#include "formats/cades/detail/openssl_util.h"

namespace qseal::formats::cades {
namespace {

using detail::AppendHeader;
using detail::ContextTag;
using detail::HeaderSize;
using detail::kTagOctetString;
using detail::kTagSequence;
using detail::kTagSet;
using detail::Tlv;
using detail::TlvSize;

constexpr std::uint8_t kVersion1[] = {detail::kTagInteger, 0x01, 0x01};
// SignedData version 5: `crls` holds an "other" RevocationInfoChoice (RFC 5652 §5.1).
constexpr std::uint8_t kVersion5[] = {detail::kTagInteger, 0x01, 0x05};
// id-ri-ocsp-response, 1.3.6.1.5.5.7.16.2 (RFC 5940 §4.1), DER.
constexpr std::uint8_t kOcspResponseOid[] = {0x06, 0x08, 0x2B, 0x06, 0x01,
                                             0x05, 0x05, 0x07, 0x10, 0x02};
constexpr std::size_t kStreamBufferSize = 64 * 1024;

// Byte counts of the nested SignedData structure, computed before anything is written so the
// output can be DER (definite lengths) even when the content is streamed.
struct Layout {
  std::uint64_t signer_info_content = 0;
  std::uint64_t signer_infos_content = 0;
  std::uint64_t econtent_octets = 0;  // OCTET STRING TLV size (enveloping)
  std::uint64_t encap_content = 0;
  std::uint64_t signed_data_content = 0;
  std::uint64_t explicit_content = 0;
  std::uint64_t content_info_content = 0;
  std::uint64_t total = 0;
  std::size_t revocation_info = 0;  // the `crls` field's size, 0: absent
};

// id-aa-signatureTimeStampToken, 1.2.840.113549.1.9.16.2.14 (RFC 3161 appendix A), DER.
constexpr std::uint8_t kSignatureTimeStampOid[] = {0x06, 0x0B, 0x2A, 0x86, 0x48, 0x86, 0xF7,
                                                   0x0D, 0x01, 0x09, 0x10, 0x02, 0x0E};

// The Attribute SEQUENCE's content for a signature-time-stamp token: its OID and SET { token }.
std::uint64_t TimestampAttributeContent(std::size_t token_size) {
  return sizeof(kSignatureTimeStampOid) + TlvSize(token_size);
}
// unsignedAttrs [1] IMPLICIT SET OF Attribute holding the token; 0 bytes without one.
std::uint64_t UnsignedAttrsSize(std::size_t token_size) {
  return token_size == 0 ? 0 : TlvSize(TlvSize(TimestampAttributeContent(token_size)));
}

Layout ComputeLayout(const SignerContext::Impl& c, std::size_t signed_attrs_content,
                     std::size_t signature_size, std::optional<std::uint64_t> content_size,
                     std::size_t token_size, std::size_t revocation_info_size) {
  const auto& oids = detail::GetOids();
  Layout l;
  l.revocation_info = revocation_info_size;
  l.signer_info_content = sizeof(kVersion1) + c.signer_identifier.size() +
                          c.digest_algorithm_id.size() + TlvSize(signed_attrs_content) +
                          c.signature_algorithm_id.size() + TlvSize(signature_size) +
                          UnsignedAttrsSize(token_size);
  l.signer_infos_content = TlvSize(l.signer_info_content);
  l.encap_content = oids.data.size();
  if (content_size.has_value()) {
    l.econtent_octets = TlvSize(*content_size);
    l.encap_content += TlvSize(l.econtent_octets);
  }
  l.signed_data_content = sizeof(kVersion1) + c.digest_algorithms_set.size() +
                          TlvSize(l.encap_content) + c.certificates_field.size() +
                          l.revocation_info + TlvSize(l.signer_infos_content);
  l.explicit_content = TlvSize(l.signed_data_content);
  l.content_info_content = oids.signed_data.size() + TlvSize(l.explicit_content);
  l.total = TlvSize(l.content_info_content);
  return l;
}

// Everything before the content octets (or, detached, before `certificates`).
void EmitHead(Bytes& out, const SignerContext::Impl& c, const Layout& l,
              std::optional<std::uint64_t> content_size) {
  const auto& oids = detail::GetOids();
  AppendHeader(out, kTagSequence, l.content_info_content);
  detail::Append(out, oids.signed_data);
  AppendHeader(out, ContextTag(0), l.explicit_content);
  AppendHeader(out, kTagSequence, l.signed_data_content);
  // Only OCSP responses are "other" choices; a `crls` field always holds at least one of them or
  // a CRL, and version 5 is required only for the former, but allowed for both.
  detail::Append(out, l.revocation_info > 0 ? ByteSpan(kVersion5) : ByteSpan(kVersion1));
  detail::Append(out, c.digest_algorithms_set);
  AppendHeader(out, kTagSequence, l.encap_content);
  detail::Append(out, oids.data);
  if (content_size.has_value()) {
    AppendHeader(out, ContextTag(0), l.econtent_octets);
    AppendHeader(out, kTagOctetString, *content_size);
  }
}

// `certificates`, `crls` and `signerInfos`.
void EmitTail(Bytes& out, const SignerContext::Impl& c, const Layout& l,
              ByteSpan signed_attrs_content, ByteSpan signature, ByteSpan token,
              ByteSpan revocation_info) {
  detail::Append(out, c.certificates_field);
  detail::Append(out, revocation_info);
  AppendHeader(out, kTagSet, l.signer_infos_content);
  AppendHeader(out, kTagSequence, l.signer_info_content);
  detail::Append(out, kVersion1);
  detail::Append(out, c.signer_identifier);
  detail::Append(out, c.digest_algorithm_id);
  // signedAttrs [0] IMPLICIT: the signed SET OF with its tag replaced.
  AppendHeader(out, ContextTag(0), signed_attrs_content.size());
  detail::Append(out, signed_attrs_content);
  detail::Append(out, c.signature_algorithm_id);
  AppendHeader(out, kTagOctetString, signature.size());
  detail::Append(out, signature);
  if (!token.empty()) {
    const std::uint64_t attribute = TimestampAttributeContent(token.size());
    AppendHeader(out, ContextTag(1), TlvSize(attribute));
    AppendHeader(out, kTagSequence, attribute);
    detail::Append(out, kSignatureTimeStampOid);
    AppendHeader(out, kTagSet, token.size());
    detail::Append(out, token);
  }
}

// Whether `der` is exactly one DER SEQUENCE.
bool IsOneSequence(ByteSpan der) {
  detail::Reader r(der);
  auto seq = r.Expect(kTagSequence, "element");
  return seq.ok() && r.empty();
}

// A token must be one DER SEQUENCE (a TimeStampToken ContentInfo); empty means none.
Status CheckToken(ByteSpan token) {
  if (token.empty() || IsOneSequence(token)) return Status::Ok();
  return InvalidArgumentError("the time-stamp token is not one DER SEQUENCE");
}

// The `crls` field must be [1] IMPLICIT SET OF, as EncodeRevocationInfo makes it; empty: none.
Status CheckRevocationInfo(ByteSpan field) {
  if (field.empty()) return Status::Ok();
  detail::Reader r(field);
  auto set = r.Expect(ContextTag(1), "crls");
  if (set.ok() && r.empty()) return Status::Ok();
  return InvalidArgumentError("the revocation info is not one [1] IMPLICIT SET OF");
}

// The contents octets of tbs.signed_attributes_der, checked to be one SET.
Result<ByteSpan> SignedAttributesContent(const SignerContext::Impl& c, const ToBeSigned& tbs,
                                         ByteSpan signature) {
  if (signature.empty()) return InvalidArgumentError("empty signature");
  detail::Reader r(tbs.signed_attributes_der);
  auto set = r.Expect(kTagSet, "signed attributes");
  if (!set.ok() || !r.empty()) {
    return InvalidArgumentError("ToBeSigned.signed_attributes_der is not one DER SET");
  }
  if (tbs.content_digest.size() != DigestSize(c.digest)) {
    return InvalidArgumentError("ToBeSigned.content_digest has the wrong length");
  }
  return set->value;
}

}  // namespace

SignerContext::SignerContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SignerContext::~SignerContext() = default;

DigestAlgorithm SignerContext::digest() const { return impl_->digest; }
SignatureScheme SignerContext::scheme() const { return impl_->scheme; }
const Bytes& SignerContext::signer_certificate_der() const { return impl_->chain_der.front(); }
std::chrono::system_clock::time_point SignerContext::not_before() const {
  return impl_->not_before;
}
std::chrono::system_clock::time_point SignerContext::not_after() const { return impl_->not_after; }

Result<std::shared_ptr<const SignerContext>> SignerContext::Create(
    std::vector<Bytes> certificate_chain_der, DigestAlgorithm digest, SignatureScheme scheme) {
  if (certificate_chain_der.empty()) return InvalidArgumentError("empty certificate chain");
  auto impl = std::make_unique<Impl>();
  impl->digest = digest;
  impl->scheme = scheme;
  for (std::size_t i = 0; i < certificate_chain_der.size(); ++i) {
    auto cert = detail::ParseCertificate(certificate_chain_der[i]);
    if (!cert.ok()) return cert.status().WithContext("chain[" + std::to_string(i) + "]");
    if (i == 0) impl->leaf = std::move(cert).value();
  }
  impl->chain_der = std::move(certificate_chain_der);
  X509* leaf = impl->leaf.get();

  EVP_PKEY* key = X509_get0_pubkey(leaf);
  if (key == nullptr) {
    return InvalidArgumentError("signer certificate key: " + detail::DrainOpenSslErrors());
  }
  int type = EVP_PKEY_get_base_id(key);
  bool fits = scheme == SignatureScheme::kEcdsa
                  ? type == EVP_PKEY_EC
                  : (type == EVP_PKEY_RSA ||
                     (type == EVP_PKEY_RSA_PSS && scheme == SignatureScheme::kRsaPss));
  if (!fits) {
    return InvalidArgumentError("signer certificate key type " + std::string(OBJ_nid2sn(type)) +
                                " does not fit scheme " + std::string(SchemeName(scheme)));
  }
  if (auto ku = detail::KeyUsage(leaf);
      !ku.has_value() || (*ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) == 0) {
    return InvalidArgumentError(
        "signer certificate keyUsage lacks digitalSignature and nonRepudiation");
  }
  impl->not_before = detail::NotBefore(leaf);
  impl->not_after = detail::NotAfter(leaf);

  const Bytes& leaf_der = impl->chain_der.front();
  QSEAL_ASSIGN_OR_RETURN(detail::CertificateIds ids, detail::ParseCertificateIds(leaf_der));
  const auto& oids = detail::GetOids();

  impl->digest_algorithm_id = detail::DigestAlgorithmId(digest, /*null_parameters=*/false);
  impl->digest_algorithms_set = Tlv(kTagSet, {impl->digest_algorithm_id});
  impl->signature_algorithm_id = detail::SignatureAlgorithmId(digest, scheme);
  std::vector<ByteSpan> certs(impl->chain_der.begin(), impl->chain_der.end());
  impl->certificates_field = detail::SetOf(ContextTag(0), std::move(certs));
  impl->signer_identifier = Tlv(kTagSequence, {ids.issuer, ids.serial});

  impl->content_type_attribute = Tlv(kTagSequence, {oids.content_type, Tlv(kTagSet, {oids.data})});

  // ESSCertIDv2 (RFC 5035): hashAlgorithm DEFAULT sha256 is omitted when it is sha256.
  QSEAL_ASSIGN_OR_RETURN(Bytes cert_hash, detail::Digest(digest, leaf_der));
  Bytes issuer_serial =
      Tlv(kTagSequence, {Tlv(kTagSequence, {Tlv(ContextTag(4), {ids.issuer})}), ids.serial});
  Bytes hash_octets = Tlv(kTagOctetString, {cert_hash});
  Bytes ess_cert_id =
      digest == DigestAlgorithm::kSha256
          ? Tlv(kTagSequence, {hash_octets, issuer_serial})
          : Tlv(kTagSequence, {impl->digest_algorithm_id, hash_octets, issuer_serial});
  Bytes signing_certificate = Tlv(kTagSequence, {Tlv(kTagSequence, {ess_cert_id})});
  impl->signing_certificate_v2_attribute =
      Tlv(kTagSequence, {oids.signing_certificate_v2, Tlv(kTagSet, {signing_certificate})});

  std::size_t n = DigestSize(digest);
  std::size_t set_content = 2 + n;
  std::size_t attr_content = oids.message_digest.size() + 2 + set_content;
  Bytes& p = impl->message_digest_prefix;
  p.push_back(kTagSequence);
  p.push_back(static_cast<std::uint8_t>(attr_content));
  detail::Append(p, oids.message_digest);
  p.push_back(kTagSet);
  p.push_back(static_cast<std::uint8_t>(set_content));
  p.push_back(kTagOctetString);
  p.push_back(static_cast<std::uint8_t>(n));

  return std::shared_ptr<const SignerContext>(new SignerContext(std::move(impl)));
}

Status SignerContext::VerifySignature(ByteSpan signed_attributes_der, ByteSpan signature) const {
  return detail::VerifySignature(X509_get0_pubkey(impl_->leaf.get()), impl_->digest, impl_->scheme,
                                 DigestSize(impl_->digest), signed_attributes_der, signature);
}

Result<ToBeSigned> BuildToBeSigned(const SignerContext& context, ByteSpan content_digest,
                                   std::chrono::system_clock::time_point signing_time,
                                   SigningTimeAttribute signing_time_attribute) {
  const SignerContext::Impl& c = context.impl();
  if (content_digest.size() != DigestSize(c.digest)) {
    return InvalidArgumentError("content digest is " + std::to_string(content_digest.size()) +
                                " bytes, " + std::string(DigestName(c.digest)) + " needs " +
                                std::to_string(DigestSize(c.digest)));
  }
  ToBeSigned tbs;
  tbs.signing_time = std::chrono::floor<std::chrono::seconds>(signing_time);
  if (tbs.signing_time < c.not_before || tbs.signing_time > c.not_after) {
    return FailedPreconditionError("signing time is outside the signer certificate's validity");
  }
  QSEAL_ASSIGN_OR_RETURN(Bytes time_tlv, detail::EncodeTime(tbs.signing_time));
  const auto& oids = detail::GetOids();

  Bytes message_digest;
  message_digest.reserve(c.message_digest_prefix.size() + content_digest.size());
  detail::Append(message_digest, c.message_digest_prefix);
  detail::Append(message_digest, content_digest);
  Bytes signing_time_attr = Tlv(kTagSequence, {oids.signing_time, Tlv(kTagSet, {time_tlv})});

  tbs.signed_attributes_der =
      signing_time_attribute == SigningTimeAttribute::kPresent
          ? detail::SetOf(kTagSet, {c.content_type_attribute, message_digest, signing_time_attr,
                                    c.signing_certificate_v2_attribute})
          : detail::SetOf(kTagSet, {c.content_type_attribute, message_digest,
                                    c.signing_certificate_v2_attribute});
  QSEAL_ASSIGN_OR_RETURN(tbs.digest, detail::Digest(c.digest, tbs.signed_attributes_der));
  tbs.content_digest.assign(content_digest.begin(), content_digest.end());
  return tbs;
}

Result<Bytes> AssembleDetached(const SignerContext& context, const ToBeSigned& tbs,
                               ByteSpan signature, ByteSpan timestamp_token,
                               ByteSpan revocation_info) {
  const SignerContext::Impl& c = context.impl();
  QSEAL_ASSIGN_OR_RETURN(ByteSpan attrs, SignedAttributesContent(c, tbs, signature));
  QSEAL_RETURN_IF_ERROR(CheckToken(timestamp_token));
  QSEAL_RETURN_IF_ERROR(CheckRevocationInfo(revocation_info));
  Layout l = ComputeLayout(c, attrs.size(), signature.size(), std::nullopt, timestamp_token.size(),
                           revocation_info.size());
  Bytes out;
  out.reserve(static_cast<std::size_t>(l.total));
  EmitHead(out, c, l, std::nullopt);
  EmitTail(out, c, l, attrs, signature, timestamp_token, revocation_info);
  return out;
}

Result<Bytes> EncodeRevocationInfo(const formats::ValidationData& data) {
  std::vector<Bytes> others;
  others.reserve(data.ocsp_responses.size());
  std::vector<ByteSpan> choices;
  for (const Bytes& crl : data.crls) {
    if (!IsOneSequence(crl)) return InvalidArgumentError("a CRL is not one DER SEQUENCE");
    choices.emplace_back(crl);
  }
  for (const Bytes& ocsp : data.ocsp_responses) {
    if (!IsOneSequence(ocsp)) {
      return InvalidArgumentError("an OCSP response is not one DER SEQUENCE");
    }
    // other [1] IMPLICIT OtherRevocationInfoFormat { otherRevInfoFormat, otherRevInfo }
    others.push_back(Tlv(ContextTag(1), {ByteSpan(kOcspResponseOid), ByteSpan(ocsp)}));
    choices.emplace_back(others.back());
  }
  if (choices.empty()) return Bytes();
  return detail::SetOf(ContextTag(1), std::move(choices));
}

std::uint64_t EnvelopingSealSize(const SignerContext& context, const ToBeSigned& tbs,
                                 std::size_t signature_size, std::uint64_t content_size,
                                 std::size_t timestamp_token_size,
                                 std::size_t revocation_info_size) {
  detail::Reader r(tbs.signed_attributes_der);
  auto set = r.Next();
  std::size_t attrs = set.ok() ? set->value.size() : 0;
  return ComputeLayout(context.impl(), attrs, signature_size, content_size, timestamp_token_size,
                       revocation_info_size)
      .total;
}

Status AssembleEnveloping(const SignerContext& context, const ToBeSigned& tbs, ByteSpan signature,
                          std::uint64_t content_size, const ReadFn& read, const WriteFn& write,
                          ByteSpan timestamp_token, ByteSpan revocation_info) {
  const SignerContext::Impl& c = context.impl();
  QSEAL_ASSIGN_OR_RETURN(ByteSpan attrs, SignedAttributesContent(c, tbs, signature));
  QSEAL_RETURN_IF_ERROR(CheckToken(timestamp_token));
  QSEAL_RETURN_IF_ERROR(CheckRevocationInfo(revocation_info));
  Layout l = ComputeLayout(c, attrs.size(), signature.size(), content_size, timestamp_token.size(),
                           revocation_info.size());
  Bytes head;
  head.reserve(64);
  EmitHead(head, c, l, content_size);
  QSEAL_RETURN_IF_ERROR(write(head));

  detail::StreamDigest hasher(c.digest);
  QSEAL_RETURN_IF_ERROR(hasher.status());
  Bytes buffer(static_cast<std::size_t>(
      std::min<std::uint64_t>(kStreamBufferSize, std::max<std::uint64_t>(content_size, 1))));
  std::uint64_t remaining = content_size;
  while (remaining > 0) {
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), remaining));
    QSEAL_ASSIGN_OR_RETURN(std::size_t got, read(std::span<std::uint8_t>(buffer.data(), want)));
    if (got == 0) {
      return DataLossError("content ended " + std::to_string(remaining) +
                           " bytes before the announced size " + std::to_string(content_size));
    }
    if (got > want) return InternalError("ReadFn returned more bytes than asked for");
    ByteSpan piece(buffer.data(), got);
    hasher.Update(piece);
    QSEAL_RETURN_IF_ERROR(write(piece));
    remaining -= got;
  }
  // The content must end exactly here.
  QSEAL_ASSIGN_OR_RETURN(std::size_t extra, read(std::span<std::uint8_t>(buffer.data(), 1)));
  if (extra != 0) {
    return DataLossError("content is longer than the announced size " +
                         std::to_string(content_size));
  }
  QSEAL_ASSIGN_OR_RETURN(Bytes digest, hasher.Final());
  if (digest != tbs.content_digest) {
    return DataLossError(
        "streamed content does not match the message-digest it was signed "
        "with (the document changed after hashing)");
  }
  Bytes tail;
  tail.reserve(static_cast<std::size_t>(l.total - head.size() - content_size));
  EmitTail(tail, c, l, attrs, signature, timestamp_token, revocation_info);
  return write(tail);
}

}  // namespace qseal::formats::cades
