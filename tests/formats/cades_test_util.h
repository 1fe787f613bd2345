// Test-only helpers for formats tests: deterministic content streams, files, PEM chains,
// software keys and certificates (for the unit tests that need no HSM), and the openssl CLI.
// Thread-compatible.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <openssl/evp.h>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"
#include "formats/cades/cades.h"

namespace qseal::formats::testing {

// A deterministic pseudo-random byte stream (splitmix64), so large documents are generated on the
// fly rather than stored.
class PseudoRandomStream {
 public:
  explicit PseudoRandomStream(std::uint64_t seed) : state_(seed) {}
  void Fill(std::span<std::uint8_t> out);

 private:
  std::uint64_t state_;
};

// Writes `size` pseudo-random bytes (seed `seed`) to `path` in 1 MiB pieces.
Status WritePseudoRandomFile(const std::string& path, std::uint64_t size, std::uint64_t seed);

// Streams `path` through `digest`.
Result<Bytes> DigestFile(const std::string& path, DigestAlgorithm digest);

// A ReadFn over a file; the FILE is owned by the returned function.
cades::ReadFn FileReader(const std::string& path);
// A ReadFn over bytes in memory (the span must outlive the function).
cades::ReadFn SpanReader(ByteSpan data);
// A WriteFn appending to a file (opened truncating); the FILE is owned by the returned function.
cades::WriteFn FileWriter(const std::string& path);

Bytes ReadBinaryFile(const std::string& path);
void WriteBinaryFile(const std::string& path, ByteSpan data);

// All certificates of a PEM file, DER, in file order.
std::vector<Bytes> LoadPemCertificates(const std::string& path);
// DER certificate to PEM text.
std::string CertificateToPem(ByteSpan der);

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// A software key and its certificate, for unit tests.
struct SoftwareSigner {
  PkeyPtr key;
  Bytes certificate_der;
};

// "ec-p256", "ec-p384", "rsa-2048".
PkeyPtr GenerateKey(const std::string& type);

struct CertSpec {
  std::string common_name = "qseal unit test";
  // Fixed dates, so tests with a fixed signing time stay valid: 2020-01-01 .. 2070-01-01.
  std::chrono::system_clock::time_point not_before{
      std::chrono::sys_days(std::chrono::year{2020} / 1 / 1)};
  std::chrono::system_clock::time_point not_after{
      std::chrono::sys_days(std::chrono::year{2070} / 1 / 1)};
  std::string key_usage = "critical,nonRepudiation,digitalSignature";  // "" for none
  bool ca = false;
  std::uint32_t serial = 1;
};

// Issues a certificate for `subject_key` signed by `issuer` (self-signed when issuer is null).
Bytes IssueCertificate(EVP_PKEY* subject_key, const CertSpec& spec, const SoftwareSigner* issuer);

// A fixed signing time inside every test certificate's validity: 2026-11-25T12:00:00Z.
inline const std::chrono::system_clock::time_point kSigningTime =
    std::chrono::system_clock::time_point(
        std::chrono::sys_days(std::chrono::year{2026} / 11 / 25)) +
    std::chrono::hours(12);

// A software CA (EC P-256, 2020..2070) and a leaf it issued.
struct Pki {
  SoftwareSigner ca;
  SoftwareSigner leaf;
};

// A CA and a leaf of `key_type` (see GenerateKey) made from `leaf_spec` (serial 1 becomes 7, so
// the leaf's serial differs from the CA's).
Pki MakePki(const std::string& key_type, CertSpec leaf_spec = {});

// Signs a DTBS/R digest the way the HSM does (EVP_PKEY_sign with the digest declared: DigestInfo
// for PKCS#1 v1.5, PSS with salt = hash length, DER for ECDSA).
Bytes SoftwareSign(EVP_PKEY* key, ByteSpan digest, DigestAlgorithm algorithm,
                   SignatureScheme scheme);

// Runs a shell command; returns its exit code and output (stdout+stderr).
struct Cmd {
  int exit_code = -1;
  std::string output;
};
Cmd Sh(const std::string& command);

}  // namespace qseal::formats::testing
