// XAdES baseline B-B seals (ETSI EN 319 132-1) behind formats::Format:
//   - "xades-enveloped" (NAME.signed.xml, application/xml, embeds the document): the
//     ds:Signature is inserted into the invoice itself -- UBL 2.1 inside
//     ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent (created when absent), CII and
//     FatturaPA as the root's last child -- with one Reference URI="" (enveloped-signature
//     transform + the profile's C14N). Every other byte of the document is kept as received.
//   - "xades-detached" (NAME.xades.xml, application/xml): a separate signature document whose
//     Reference names the document (URI = its escaped file name) and digests its raw bytes; any
//     content, XML or not.
// Both carry SignedProperties (SigningTime, SigningCertificateV2 with IssuerSerialV2,
// DataObjectFormat with the MimeType) referenced from SignedInfo, and KeyInfo/X509Data with the
// whole chain. SignatureMethod: rsa-sha*, RFC 6931 sha*-rsa-MGF1 (RSASSA-PSS) or ecdsa-sha*
// (r || s) per the profile's scheme. The HSM signs the digest of the canonical SignedInfo.
//
// Parsing and canonicalisation use libxml2 (its C14N); hostile or unsupported documents are
// refused (formats/xades/detail/xml.h lists what). See docs/xades.md. Use formats::CreateFormat()
// to make them by name; this header is what formats/format.cc calls.
#pragma once

#include <memory>

#include "common/status.h"
#include "formats/format.h"

namespace qseal::formats::xades {

enum class Packaging { kEnveloped, kDetached };

// Makes the XAdES format with `packaging` for one profile.
// Errors: kInvalidArgument for a chain the CAdES SignerContext refuses (empty, unparsable, key
// not fitting the scheme, no digitalSignature/nonRepudiation) or an unknown options.c14n. The
// result is immutable and thread-safe.
Result<std::unique_ptr<const Format>> CreateXadesFormat(Packaging packaging,
                                                        const FormatOptions& options);

}  // namespace qseal::formats::xades
