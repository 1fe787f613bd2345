// The XML-DSig / XAdES vocabulary formats/xades writes and reads: algorithm URIs, where an
// enveloped signature goes in each invoice syntax, and the text of the ds:Signature element the
// builder writes (the verifier reads any equivalent one). Pure; thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <libxml/tree.h>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"
#include "formats/xades/detail/xml.h"

namespace qseal::formats::xades::detail {

inline constexpr std::string_view kEnvelopedTransformUri =
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
inline constexpr std::string_view kSignedPropertiesType =
    "http://uri.etsi.org/01903#SignedProperties";
inline constexpr std::string_view kUblExtensionNs =
    "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2";

// XML-DSig / RFC 6931 URIs.
std::string_view DigestUri(DigestAlgorithm digest);
std::string_view SignatureUri(DigestAlgorithm digest, SignatureScheme scheme);
std::string_view C14nUri(C14nMode mode);
std::optional<DigestAlgorithm> ParseDigestUri(std::string_view uri);
std::optional<std::pair<DigestAlgorithm, SignatureScheme>> ParseSignatureUri(std::string_view uri);
std::optional<C14nMode> ParseC14nUri(std::string_view uri);

// Where an enveloped signature goes: at byte `offset` of the document, wrapped in
// `open` ... `close` (the UBL extension elements, or nothing for CII and FatturaPA).
struct Insertion {
  std::size_t offset = 0;
  std::string open;
  std::string close;
  std::string syntax;  // "UBL", "CII", "FatturaPA"
  // The same place in the tree: `open` ... `close` become children of `parent`, before its
  // child `before` (appended when null).
  xmlNode* parent = nullptr;
  xmlNode* before = nullptr;
};

// Finds the insertion point in `doc`, parsed from `bytes`: UBL 2.1 (any document whose root is in
// a urn:oasis:names:specification:ubl:schema:xsd: namespace) inside
// ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent (a new UBLExtension appended to an
// existing UBLExtensions, else a new UBLExtensions as the root's first child); CII
// (rsm:CrossIndustryInvoice) and FatturaPA (FatturaElettronica) as the root's last child.
// kInvalidArgument for another root, an empty root, or an empty UBLExtensions written <a/>.
Result<Insertion> PlanInsertion(xmlDoc* doc, ByteSpan bytes);

// What goes into the ds:Signature the builder writes.
struct SignatureFields {
  std::string id;            // the Signature's Id; the other Ids derive from it
  bool enveloped = true;     // Reference URI="" with the enveloped transform, else `document_uri`
  std::string document_uri;  // detached: the (URI-escaped) document name
  std::string mime_type;     // DataObjectFormat/MimeType
  DigestAlgorithm digest = DigestAlgorithm::kSha256;
  SignatureScheme scheme = SignatureScheme::kEcdsa;
  C14nMode c14n = C14nMode::kExclusive10;
  std::string document_digest;     // base64; empty before it is known
  std::string properties_digest;   // base64; empty before it is known
  std::string signing_time;        // xsd:dateTime, UTC, whole seconds
  std::string cert_digest;         // base64 digest of the signer certificate
  std::string issuer_serial;       // base64 DER IssuerSerial (RFC 5035)
  std::vector<std::string> chain;  // base64 DER certificates, signer first
};

// The ds:Signature text, split around the SignatureValue's (base64) text.
struct SignatureText {
  std::string head;  // up to and including <ds:SignatureValue ...>
  std::string tail;  // from </ds:SignatureValue> to the end of </ds:Signature>
};
SignatureText BuildSignatureText(const SignatureFields& fields);

// The Ids BuildSignatureText derives from fields.id.
inline std::string DocumentReferenceId(std::string_view id) { return std::string(id) + "-ref0"; }
inline std::string SignedPropertiesId(std::string_view id) {
  return std::string(id) + "-signedprops";
}

// xsd:dateTime "YYYY-MM-DDTHH:MM:SSZ" of `t` (whole seconds) and its inverse (which also accepts
// fractional seconds and a +hh:mm/-hh:mm offset).
std::string FormatDateTime(std::chrono::system_clock::time_point t);
Result<std::chrono::system_clock::time_point> ParseDateTime(std::string_view text);

// An XML-DSig ECDSA SignatureValue (r || s, each `coordinate_size` bytes) from a DER
// ECDSA-Sig-Value, and back. kInvalidArgument for malformed input.
Result<Bytes> EcdsaDerToRaw(ByteSpan der, std::size_t coordinate_size);
Result<Bytes> EcdsaRawToDer(ByteSpan raw);

// Escapes &, <, >, " for text and attribute values.
std::string XmlEscape(std::string_view text);

}  // namespace qseal::formats::xades::detail
