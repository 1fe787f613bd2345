// Offline verification of a CAdES B-B seal (ETSI EN 319 122-1): each requirement is checked and
// reported. formats::VerifySeal (formats/verify.h) calls it for a DER CMS seal; call it directly
// when the seal is known to be CAdES. Pure CPU apart from the content callback; thread-safe.
#pragma once

#include <optional>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "formats/cades/cades.h"
#include "formats/verify.h"

namespace qseal::formats::cades {

// Verifies `seal` (DER or BER-with-definite-lengths ContentInfo). For a detached seal,
// `detached_content` streams the document; for an enveloping seal it must be nullopt.
// `trust_anchors_der`: root (or intermediate) certificates the chain must end in. Checks, each
// reported: structure (SignedData, one SignerInfo, issuerAndSerialNumber), the signer certificate
// found in `certificates`, content-type / message-digest / signing-time / signing-certificate-v2
// each present exactly once, content-type = id-data, message-digest equals the content digest,
// signing-certificate-v2 hashes the signer certificate and names its issuer and serial,
// signing-time within the certificate validity, the signature over the signed attributes, the chain
// to a trust anchor at the validation time, key usage (digitalSignature or nonRepudiation). Returns
// a report (ok=false with reasons; `format` is "cades-detached" or "cades-enveloping") for a
// seal that fails; an error Status only when
// `detached_content` fails to read (its Status), when a detached seal comes without content or an
// enveloping one with it, or a trust anchor does not parse (kInvalidArgument). Pure CPU apart from
// the callback; thread-safe.
// `signing_time_attribute` kAbsent (PAdES, whose time is the PDF's /M) turns the signing-time
// check around: it holds when the attribute is absent and fails when it is present; the
// report's signing_time is then left for the caller to set.
Result<formats::VerifyReport> Verify(
    ByteSpan seal, const std::optional<ReadFn>& detached_content,
    const std::vector<Bytes>& trust_anchors_der, const formats::VerifyOptions& options = {},
    SigningTimeAttribute signing_time_attribute = SigningTimeAttribute::kPresent);

}  // namespace qseal::formats::cades
