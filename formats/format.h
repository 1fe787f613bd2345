// The one interface every seal format implements (CAdES now; XAdES and PAdES next), so that the
// engine, the outbox and qsealctl handle every format the same way.
//
// A seal is made in two halves around the HSM dispatcher:
//   1. Prepare(): read the document (streamed through Content) and build what is signed; its
//      digest, ToBeSigned::digest, is the DTBS/R the HSM signs (one C_Sign per document).
//   2. Assemble(): from the prepared state, the HSM's signature and (when the output embeds the
//      document) the document read once more, write the seal through a WriteFn.
// Verifying a seal needs no format object: formats/verify.h dispatches on the seal's bytes.
//
// Rules every format keeps (DESIGN.md §1): no file or HSM I/O (bytes come through callbacks);
// the seal covers exactly the bytes read (a format that embeds or wraps the document never
// rewrites it: PAdES appends an incremental update, enveloped XAdES inserts only the signature
// element); output is deterministic for the same inputs (document, chain, algorithms, time,
// signature).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"

namespace qseal::formats {

// Reads up to buffer.size() bytes into `buffer`; returns how many, 0 at the end.
using ReadFn = std::function<Result<std::size_t>(std::span<std::uint8_t> buffer)>;
// Consumes the next piece of the output.
using WriteFn = std::function<Status(ByteSpan bytes)>;

// The document as a format sees it: its size, its metadata, and a way to read it from the first
// byte, as many times as the format needs (the queue's payload can be opened again). A plain
// value; thread-compatible (each Open() gives an independent reader).
struct Content {
  // Exact size in bytes; a format reading more or fewer fails with kDataLoss.
  std::uint64_t size = 0;
  // The document's file name as submitted (X-Filename or the watched file's name); may be empty.
  std::string name;
  // Media type when the submitter gave one (e.g. "application/xml"); may be empty.
  std::string media_type;
  // A fresh reader positioned at the first byte; its errors are returned as they are.
  std::function<Result<ReadFn>()> open;
  // Optional random access: reads up to buffer.size() bytes at `offset` (0 at or past the end),
  // safe from several threads. Formats whose parser needs random access (PAdES) use it when set
  // and otherwise hold the document in memory. Empty when the caller cannot provide it.
  std::function<Result<std::size_t>(std::uint64_t offset, std::span<std::uint8_t> buffer)> read_at;
  // Read size for streaming (bounded memory per document). Default: 256 KiB.
  std::size_t read_chunk_bytes = 256 << 10;
  // Digest-only sealing: when non-empty, the document's digest made by the submitter with the
  // format's DigestAlgorithm; the document itself is not available (open and read_at must not be
  // relied on). Formats that sign over a digest of the document (cades-detached) use it instead
  // of hashing, and refuse one of the wrong length with kInvalidArgument; formats that embed or
  // parse the document refuse every digest-only document with kInvalidArgument. Default: empty.
  Bytes precomputed_digest;
};

// B-LT (EN 319 122-1 §5.5 for CAdES, EN 319 132-1 §5.5 for XAdES, EN 319 142-1 §5.4 for PAdES's
// DSS): the revocation data of the seal certificate's chain that a seal embeds so that it can be
// validated after the certificate has expired, all DER. Made by revocation::RevocationCache;
// shared and immutable.
struct ValidationData {
  std::vector<Bytes> ocsp_responses;  // OCSPResponse (RFC 6960), each verified and "good"
  std::vector<Bytes> crls;            // CertificateList (RFC 5280)
};

// The first half of a seal. Formats derive from it to keep what Assemble needs (signed
// attributes, canonical SignedInfo, a PDF's incremental update, ...); only the format that made
// it reads it back. Immutable once returned; thread-compatible.
struct ToBeSigned {
  virtual ~ToBeSigned() = default;
  // The DTBS/R for C_Sign: a digest made with the format's DigestAlgorithm (for RSASSA-PKCS1-v1_5
  // the signer wraps it in a DigestInfo; RSASSA-PSS and ECDSA sign it as is).
  Bytes digest;
  // The digest of the document's bytes as the seal records it (CAdES message-digest, XAdES
  // reference digest of the raw document, PAdES ByteRange digest). For logs and the audit trail.
  Bytes content_digest;
  // The signing time the seal states, in whole seconds.
  std::chrono::system_clock::time_point signing_time{};
  // B-T (CAdES formats only): an RFC 3161 TimeStampToken over digest(signature value) that
  // Assemble writes as the signature-time-stamp unsigned attribute. Set by the caller between
  // signing and Assemble; empty: none (B-B).
  Bytes signature_timestamp_token;
  // B-LT (formats with has_validation_data()): the revocation data Assemble embeds. Set by the
  // caller before Assemble; null: none (B-B, B-T).
  std::shared_ptr<const ValidationData> validation_data;
};

// What a format needs to know once, at startup, for one profile.
struct FormatOptions {
  // The seal certificate first, then its issuers (DER); all go into the seal.
  std::vector<Bytes> certificate_chain_der;
  DigestAlgorithm digest = DigestAlgorithm::kSha256;
  SignatureScheme scheme = SignatureScheme::kEcdsa;
  // XAdES only: the canonicalisation of the enveloped document, SignedInfo and SignedProperties,
  // "exc-c14n" (Exclusive XML Canonicalization 1.0) or "c14n11" (Canonical XML 1.1); anything
  // else is refused by CreateFormat. Default: "exc-c14n".
  std::string c14n = "exc-c14n";
  // XAdES enveloped only: the largest document accepted, in bytes. It is parsed in memory: Prepare
  // peaks at about 12 times the document for element-dense invoices (docs/xades.md). Larger
  // documents fail with kInvalidArgument. Default: 16 MiB.
  std::uint64_t max_xml_bytes = 16ull << 20;
  // PAdES only: extra bytes reserved in /Contents for a signature time-stamp token (B-T); 0: the
  // PDF gets no room for one (B-B) and has_timestamps() is false. The engine sets it for b-t
  // profiles. Default: 0.
  std::size_t timestamp_reserve_bytes = 0;
};

// One seal format bound to one profile's key and algorithms. Created once per profile; immutable
// after creation. Thread-safe: any number of threads may Prepare and Assemble at once.
class Format {
 public:
  virtual ~Format() = default;

  // The profile's format name as written in the config, e.g. "cades-detached".
  virtual std::string_view name() const = 0;
  // Media type of the seal output, e.g. "application/pkcs7-signature".
  virtual std::string_view media_type() const = 0;
  // File name of the seal for a document named `document_name` (e.g. "invoice.xml.p7s"). Never
  // empty and never a path (a name with '/' or a leading '.' is replaced by "document").
  virtual std::string OutputName(std::string_view document_name) const = 0;
  // True when the seal contains the document (CAdES enveloping, enveloped XAdES, PAdES): then the
  // outbox does not put the original beside it.
  virtual bool embeds_document() const = 0;

  // The first half: reads `content` (streamed; a format that must parse the document may hold it
  // in memory up to its own documented limit) and builds what the HSM signs, at `signing_time`.
  // Errors: kInvalidArgument for a document the format refuses (not XML, not a PDF, encrypted,
  // ..., a digest-only content the format cannot seal: permanent, the message says why),
  // kFailedPrecondition when signing_time is outside the
  // certificate's validity, kDataLoss when the content's length differs from content.size, and
  // the reader's own errors as returned. Pure CPU apart from the reads.
  virtual Result<std::unique_ptr<ToBeSigned>> Prepare(
      const Content& content, std::chrono::system_clock::time_point signing_time) const = 0;

  // The second half: writes the seal for `tbs` (made by this object's Prepare) and the HSM's
  // `signature` over tbs.digest (ECDSA: DER ECDSA-Sig-Value, as hsm::Signer returns it) through
  // `write`. Formats that embed the document read `content` again and fail with kDataLoss when it
  // no longer has the digest Prepare saw (the output written so far must then be discarded).
  // Errors: kInvalidArgument for an empty signature or a foreign tbs, those of the callbacks.
  // Does not verify the signature (hsm::Signer does, before it returns it).
  virtual Status Assemble(const ToBeSigned& tbs, ByteSpan signature, const Content& content,
                          const WriteFn& write) const = 0;

  // The output's size in bytes if known before Assemble (to reserve memory), else 0.
  virtual std::uint64_t OutputSizeHint(const ToBeSigned& tbs, std::size_t signature_size,
                                       std::uint64_t content_size) const = 0;

  // B-T: what a TSA must time-stamp for the seal of `tbs` signed with `signature`, hashed with
  // the profile's digest (CAdES: the signature value, EN 319 122-1 §5.3; XAdES: the canonical
  // ds:SignatureValue element, EN 319 132-1 §5.3); Assemble then writes
  // tbs.signature_timestamp_token into the seal. has_timestamps(): whether the format does B-T;
  // TimestampImprint is kInvalidArgument for those that do not.
  virtual bool has_timestamps() const { return false; }
  virtual Result<Bytes> TimestampImprint(const ToBeSigned& tbs, ByteSpan signature) const {
    (void)tbs;
    (void)signature;
    return InvalidArgumentError(std::string(name()) + " seals have no signature time-stamp yet");
  }
  // B-LT: whether Assemble embeds ToBeSigned::validation_data (CAdES, XAdES, PAdES); formats that
  // do not ignore it, and a b-lt profile of theirs is refused at startup.
  virtual bool has_validation_data() const { return false; }
};

// Helpers every format shares.

// Reads `content` from its first byte in pieces of at most content.read_chunk_bytes (one buffer,
// never larger than the document) and hands each piece to `each`. Errors: those of open, the
// reader and `each`, as returned; kDataLoss when the content's length differs from content.size.
Status StreamContent(const Content& content, const std::function<Status(ByteSpan piece)>& each);

// `document_name` when it can be used as a file name's stem, else "document" (empty, hidden, or
// containing '/').
std::string SafeOutputStem(std::string_view document_name);

// The format of the CSC API's signHash (formats/raw/raw_format.h): the bare signature over a
// client's digest. Made by the daemon for its CSC profiles, never named in the config, so it is
// not among FormatNames().
inline constexpr std::string_view kRawSignatureFormat = "raw-signature";

// Every format name a profile of the config may use, in the order the config documents them.
std::vector<std::string_view> FormatNames();

// Makes the format called `name` (one of FormatNames(), or kRawSignatureFormat) for one profile.
// Errors: kInvalidArgument for an unknown name (the message lists the known ones) or options the
// format refuses (a chain that does not parse, a key that does not fit the scheme, a certificate
// without digitalSignature/nonRepudiation).
Result<std::unique_ptr<const Format>> CreateFormat(std::string_view name,
                                                   const FormatOptions& options);

}  // namespace qseal::formats
