// CAdES baseline B-B seals (ETSI EN 319 122-1) built around an external signer.
//
// A seal is made in two halves around the HSM dispatcher:
//   1. BuildToBeSigned(): from the content digest (computed by the caller, streamed) and the
//   signing
//      time, DER-encode the signed attributes -- content-type (id-data), message-digest,
//      signing-time, signing-certificate-v2 -- as the SET OF that is signed, and digest it. That
//      digest is the DTBS/R the HSM signs (for RSASSA-PKCS1-v1_5 the signer wraps it in a
//      DigestInfo; for RSASSA-PSS and ECDSA it is signed as is).
//   2. AssembleDetached() / AssembleEnveloping(): wrap the signed attributes and the signature in a
//      CMS SignedData ContentInfo, DER (definite lengths only): detached (.p7s, no eContent) or
//      enveloping (.p7m, eContent = the document, streamed from a reader into a writer).
// Verify() (formats/cades/verify.h) checks a seal against its content and trust anchors.
//
// The library does no file or HSM I/O: bytes come in through spans and callbacks. Output is
// byte-for-byte deterministic for the same inputs (same chain, algorithms, digest, time,
// signature, content).
//
// Encoding choices (see docs/cades.md): SignedData and SignerInfo version 1; the signer is named
// by issuerAndSerialNumber; digest AlgorithmIdentifiers carry no parameters (RFC 5754);
// signatureAlgorithm is sha{256,384,512}WithRSAEncryption (NULL parameters), RSASSA-PSS with
// explicit parameters (hash, MGF1 with the same hash, salt length = hash length, trailer field 1
// left at its DER default) or ecdsa-with-SHA{256,384,512}; `certificates` holds the whole chain
// given (DER SET OF order); signing-time is UTCTime up to 2049 and GeneralizedTime from 2050, in
// whole seconds; signing-certificate-v2 holds one ESSCertIDv2 for the signer certificate, hashed
// with the profile digest, with issuerSerial.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"
#include "formats/format.h"

namespace qseal::formats::cades {

enum class Packaging { kDetached, kEnveloping };

// Everything about a seal that depends only on the key and the profile, computed once: the parsed
// chain, the encoded `certificates` field, the SignerIdentifier (issuerAndSerialNumber), the
// signing-certificate-v2 attribute, the algorithm identifiers and the signer's public key.
//
// Immutable after Create(): every field is set there and never written again, and the signer's
// public key is only read by OpenSSL 3 verify operations, which may run concurrently on one key.
// Thread-safe: share it (shared_ptr<const>) between any number of threads and formats.
class SignerContext {
 public:
  // `certificate_chain_der`: the signer (leaf) certificate first, then its issuers up to (and
  // optionally including) the root; every one goes into the seal's `certificates`.
  // Errors: kInvalidArgument when the chain is empty or a certificate does not parse, when the leaf
  // key does not fit `scheme` (RSA for kRsaPkcs1v15/kRsaPss, EC for kEcdsa), or when the leaf has
  // no keyUsage extension or one with neither digitalSignature nor nonRepudiation. Does not check
  // validity dates (BuildToBeSigned checks the signing time against them) nor the chain (Verify
  // does).
  static Result<std::shared_ptr<const SignerContext>> Create(
      std::vector<Bytes> certificate_chain_der, DigestAlgorithm digest, SignatureScheme scheme);

  ~SignerContext();
  SignerContext(const SignerContext&) = delete;
  SignerContext& operator=(const SignerContext&) = delete;

  DigestAlgorithm digest() const;
  SignatureScheme scheme() const;
  // The signer certificate (DER), as given.
  const Bytes& signer_certificate_der() const;
  // Validity window of the signer certificate.
  std::chrono::system_clock::time_point not_before() const;
  std::chrono::system_clock::time_point not_after() const;

  // Verifies `signature` (DER ECDSA-Sig-Value for ECDSA) over `signed_attributes_der` with the
  // signer certificate's public key, as the seal will be verified. Use it to check every HSM
  // signature before it is released (RSA-CRT fault attack). kInvalidArgument when it does not
  // verify. Pure CPU; thread-safe.
  Status VerifySignature(ByteSpan signed_attributes_der, ByteSpan signature) const;

  // The precomputed encodings (formats/cades/detail/cms.h); opaque outside the component.
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit SignerContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The first half of a seal: what the HSM signs. A plain value; thread-compatible.
struct ToBeSigned {
  // The signed attributes, DER-encoded as the SET OF Attribute (tag 0x31) that is signed.
  Bytes signed_attributes_der;
  // Digest of signed_attributes_der with the context's digest algorithm: the DTBS/R for C_Sign.
  Bytes digest;
  // The message-digest attribute value (the content digest given to BuildToBeSigned).
  Bytes content_digest;
  // The signing time (the signing-time attribute value when present), truncated to whole seconds.
  std::chrono::system_clock::time_point signing_time;
};

// Whether the signed attributes carry signing-time. CAdES B-B: present. PAdES B-B (ETSI EN 319
// 142-1) forbids it: the time is the PDF signature dictionary's /M entry.
enum class SigningTimeAttribute { kPresent, kAbsent };

// Builds the signed attributes for a document whose digest (context.digest() algorithm) is
// `content_digest`, signed at `signing_time` (with `signing_time_attribute` kAbsent the attributes
// are content-type, message-digest and signing-certificate-v2 only; signing_time is still checked
// against the certificate and returned in ToBeSigned).
// Errors: kInvalidArgument when content_digest has the wrong length or signing_time is before
// year 1950 or after 9999; kFailedPrecondition when signing_time is outside the signer
// certificate's validity. Pure CPU, no blocking; safe to call concurrently with one context.
Result<ToBeSigned> BuildToBeSigned(
    const SignerContext& context, ByteSpan content_digest,
    std::chrono::system_clock::time_point signing_time,
    SigningTimeAttribute signing_time_attribute = SigningTimeAttribute::kPresent);

// Assembles a detached seal (.p7s: CMS SignedData ContentInfo without eContent), DER.
// `signature`: the HSM signature over tbs.digest (ECDSA: DER ECDSA-Sig-Value, not r||s).
// Errors: kInvalidArgument for an empty signature or a tbs not made by BuildToBeSigned.
// Does not verify the signature (SignerContext::VerifySignature does). Pure CPU.
// `timestamp_token` (CAdES-B-T): an RFC 3161 TimeStampToken over digest(signature), written as
// the signature-time-stamp unsigned attribute (id-aa-signatureTimeStampToken); empty: none.
// kInvalidArgument when it is not one DER SEQUENCE.
// `revocation_info` (CAdES-B-LT): the SignedData `crls` field as EncodeRevocationInfo makes it;
// empty: none.
Result<Bytes> AssembleDetached(const SignerContext& context, const ToBeSigned& tbs,
                               ByteSpan signature, ByteSpan timestamp_token = {},
                               ByteSpan revocation_info = {});

// The content reader and output writer of every format (formats/format.h).
using ReadFn = formats::ReadFn;
using WriteFn = formats::WriteFn;

// Assembles an enveloping seal (.p7m: eContent = the document), DER with definite lengths, writing
// it through `write` in pieces while the `content_size` content bytes are streamed from `read`
// (bounded memory: one 64 KiB buffer; the document is never held whole). The streamed content is
// hashed on the way and must equal tbs.content_digest: the seal then covers exactly the bytes
// written.
// Errors: those of `read` and `write` as returned; kDataLoss when the content is shorter or longer
// than content_size or its digest differs from tbs.content_digest (the output written so far is
// then invalid and must be discarded); kInvalidArgument as AssembleDetached. Blocks only inside
// the callbacks; safe to call concurrently with one context. `timestamp_token` as for
// AssembleDetached.
Status AssembleEnveloping(const SignerContext& context, const ToBeSigned& tbs, ByteSpan signature,
                          std::uint64_t content_size, const ReadFn& read, const WriteFn& write,
                          ByteSpan timestamp_token = {}, ByteSpan revocation_info = {});

// CAdES-B-LT: the SignedData field `crls [1] IMPLICIT RevocationInfoChoices` (RFC 5652 §10.2.1)
// holding `data`'s CRLs as they are and each OCSP response as an OtherRevocationInfoFormat
// id-ri-ocsp-response (RFC 5940 §4.1); a seal carrying one is written as SignedData version 5
// (RFC 5652 §5.1). Empty when `data` holds nothing. kInvalidArgument when an element is not one
// DER SEQUENCE.
Result<Bytes> EncodeRevocationInfo(const formats::ValidationData& data);

// The exact size in bytes AssembleEnveloping will write (e.g. to preallocate an output file).
std::uint64_t EnvelopingSealSize(const SignerContext& context, const ToBeSigned& tbs,
                                 std::size_t signature_size, std::uint64_t content_size,
                                 std::size_t timestamp_token_size = 0,
                                 std::size_t revocation_info_size = 0);

}  // namespace qseal::formats::cades
