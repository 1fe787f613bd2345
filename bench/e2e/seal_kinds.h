// The format scenarios' SealKinds (api_scenario.h), each with an independent check of its seals:
//   api_xades  profile invoice-xades (XAdES enveloped, the signed invoice comes back): `xmlsec1
//              --verify` against the daemon's CA, and the seal holds the document's own invoice
//              number;
//   api_pades  profile pdf-pades (the signed PDF comes back): the original a byte-identical
//              prefix, `pdfsig` says valid and trusted (an NSS database trusting the CA), and
//              `qpdf --check` passes.
//
// The checks run external tools and block; each may be called from one thread at a time.
#pragma once

#include <string>

#include "bench/e2e/api_scenario.h"

namespace qseal::bench::e2e {

SealKind XadesKind(const std::string& ca_pem);

// Creates the NSS database in `nss_dir` (certutil) first. Throws std::runtime_error when it
// cannot.
SealKind PadesKind(const std::string& ca_pem, const std::string& nss_dir);

// api_t: profile `profile` (CAdES-B-T detached): `openssl cms -verify` against `ca_pem`, and
// the seal's one signature-time-stamp token (read with OpenSSL's CMS API) by `openssl ts
// -verify` against `tsa_ca_pem` with the SHA-256 of the signature value as its imprint.
SealKind TimestampedKind(const std::string& profile, const std::string& ca_pem,
                         const std::string& tsa_ca_pem);

}  // namespace qseal::bench::e2e
