// Offline verification of a XAdES B-B seal (ETSI EN 319 132-1), enveloped or detached: each
// requirement is checked and reported. formats::VerifySeal (formats/verify.h) calls it for an XML
// seal; call it directly when the seal is known to be XAdES. Pure CPU apart from the content
// callback; thread-safe.
#pragma once

#include <optional>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "formats/verify.h"

namespace qseal::formats::xades {

// Verifies the first ds:Signature of `seal` (an enveloped document or a detached signature
// document; parsed with the hardened parser of formats/xades, so a DOCTYPE is refused).
// Supported shape: SignedInfo with exactly one data Reference -- URI="" with the
// enveloped-signature transform and optionally one C14N transform (enveloped), or an external
// URI without transforms (detached: `detached_content` streams the document) -- and one
// Reference of Type SignedProperties to a unique Id inside the signature.
// Checks, each reported: "structure" (the shape above, known algorithms), "signer-certificate"
// (the KeyInfo certificate SigningCertificateV2 names), "reference-digest" (the document),
// "signed-properties-digest", "signing-time" (present once, within the certificate's validity),
// "signing-certificate-v2" (certificate digest and IssuerSerialV2), "data-object-format" (one
// for the data reference, with a MimeType), "signature" (SignatureValue over the canonical
// SignedInfo), "chain" (to a trust anchor at the validation time), "key-usage"
// (digitalSignature or nonRepudiation). Returns a report (ok=false with reasons; `format` is
// "xades-enveloped" or "xades-detached") for a seal that fails; an error Status only when
// `detached_content` fails to read (its Status), a detached seal comes without content or an
// enveloped one with it, or a trust anchor does not parse (kInvalidArgument).
Result<formats::VerifyReport> Verify(ByteSpan seal, const std::optional<ReadFn>& detached_content,
                                     const std::vector<Bytes>& trust_anchors_der,
                                     const formats::VerifyOptions& options = {});

// True when `seal` looks like XML (optional UTF-8 BOM, whitespace, then '<'): how
// formats::VerifySeal recognises a XAdES seal.
bool LooksLikeXml(ByteSpan seal);

}  // namespace qseal::formats::xades
