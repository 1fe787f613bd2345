// CAdES B-T (ETSI EN 319 122-1 §5.3): the signature-time-stamp unsigned attribute
// (id-aa-signatureTimeStampToken, 1.2.840.113549.1.9.16.2.14), whose value is an RFC 3161
// TimeStampToken over the digest of the SignerInfo's signature value.
//
// The token comes from tsa::TsaClient (already verified there); this file only places it. The
// signed attributes and the signature are left untouched, so the seal verifies as before.
// Pure functions; thread-safe.
#pragma once

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"

namespace qseal::formats::cades {

// What the TSA must time-stamp for a seal signed with `signature`: digest(signature value), with
// the profile's digest algorithm. kInvalidArgument for an empty signature.
Result<Bytes> SignatureTimeStampImprint(DigestAlgorithm digest, ByteSpan signature);

// Returns `seal` (a DER CMS SignedData ContentInfo with exactly one SignerInfo, as
// AssembleDetached makes it) with `token_der` added as the signature-time-stamp unsigned
// attribute. kInvalidArgument when the seal does not parse, has not exactly one SignerInfo, or
// already carries a signature time-stamp, or when the token is not a DER SEQUENCE. Holds the seal
// in memory: for detached seals (enveloping B-T needs the streaming assembler, not done yet).
Result<Bytes> AddSignatureTimeStamp(ByteSpan seal, ByteSpan token_der);

}  // namespace qseal::formats::cades
