#include "tests/formats/cades_test_util.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tests/testing/testing.h"

// OpenSSL macros (BIO_*, EVP_PKEY_CTX_*) expand to C casts in test helpers.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace qseal::formats::testing {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f != nullptr) std::fclose(f);
  }
};

const EVP_MD* MdOf(DigestAlgorithm d) {
  switch (d) {
    case DigestAlgorithm::kSha256:
      return EVP_sha256();
    case DigestAlgorithm::kSha384:
      return EVP_sha384();
    case DigestAlgorithm::kSha512:
      return EVP_sha512();
  }
  return nullptr;
}

void SetTime(ASN1_TIME* t, std::chrono::system_clock::time_point tp) {
  ASN1_TIME_set(t, std::chrono::system_clock::to_time_t(tp));
}

}  // namespace

void PseudoRandomStream::Fill(std::span<std::uint8_t> out) {
  std::size_t i = 0;
  while (i < out.size()) {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    for (int b = 0; b < 8 && i < out.size(); ++b, ++i) {
      out[i] = static_cast<std::uint8_t>(z >> (8 * b));
    }
  }
}

Status WritePseudoRandomFile(const std::string& path, std::uint64_t size, std::uint64_t seed) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
  if (!f) return UnavailableError("cannot create " + path);
  PseudoRandomStream stream(seed);
  Bytes buf(1 << 20);
  while (size > 0) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, buf.size()));
    stream.Fill(std::span<std::uint8_t>(buf.data(), n));
    if (std::fwrite(buf.data(), 1, n, f.get()) != n) return UnavailableError("write " + path);
    size -= n;
  }
  if (std::fflush(f.get()) != 0) return UnavailableError("flush " + path);
  return Status::Ok();
}

Result<Bytes> DigestFile(const std::string& path, DigestAlgorithm digest) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) return UnavailableError("cannot open " + path);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, MdOf(digest), nullptr);
  Bytes buf(1 << 20);
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) {
    EVP_DigestUpdate(ctx, buf.data(), n);
  }
  Bytes out(DigestSize(digest));
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, out.data(), &len);
  EVP_MD_CTX_free(ctx);
  return out;
}

cades::ReadFn FileReader(const std::string& path) {
  std::shared_ptr<std::FILE> f(std::fopen(path.c_str(), "rb"), FileCloser());
  return [f, path](std::span<std::uint8_t> buf) -> Result<std::size_t> {
    if (!f) return UnavailableError("cannot open " + path);
    std::size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    if (n == 0 && std::ferror(f.get())) return UnavailableError("read " + path);
    return n;
  };
}

cades::ReadFn SpanReader(ByteSpan data) {
  auto pos = std::make_shared<std::size_t>(0);
  return [data, pos](std::span<std::uint8_t> buf) -> Result<std::size_t> {
    std::size_t n = std::min(buf.size(), data.size() - *pos);
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(*pos), n, buf.begin());
    *pos += n;
    return n;
  };
}

cades::WriteFn FileWriter(const std::string& path) {
  std::shared_ptr<std::FILE> f(std::fopen(path.c_str(), "wb"), FileCloser());
  return [f, path](ByteSpan bytes) -> Status {
    if (!f) return UnavailableError("cannot create " + path);
    if (std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size() ||
        std::fflush(f.get()) != 0) {
      return UnavailableError("write " + path);
    }
    return Status::Ok();
  };
}

Bytes ReadBinaryFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  Bytes out(static_cast<std::size_t>(in.tellg()));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size()));
  return out;
}

void WriteBinaryFile(const std::string& path, ByteSpan data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

std::vector<Bytes> LoadPemCertificates(const std::string& path) {
  std::vector<Bytes> out;
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) return out;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    int len = i2d_X509(x, nullptr);
    Bytes der(static_cast<std::size_t>(len));
    unsigned char* p = der.data();
    i2d_X509(x, &p);
    out.push_back(std::move(der));
    X509_free(x);
  }
  ERR_clear_error();
  BIO_free(bio);
  return out;
}

std::string CertificateToPem(ByteSpan der) {
  const unsigned char* p = der.data();
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  X509_free(x);
  return pem;
}

PkeyPtr GenerateKey(const std::string& type) {
  if (type == "ec-p256") return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (type == "ec-p384") return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  if (type == "rsa-2048") {
    return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  }
  std::abort();
}

Bytes IssueCertificate(EVP_PKEY* subject_key, const CertSpec& spec, const SoftwareSigner* issuer) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), static_cast<long>(spec.serial));
  SetTime(X509_getm_notBefore(x), spec.not_before);
  SetTime(X509_getm_notAfter(x), spec.not_after);
  X509_set_pubkey(x, subject_key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("qseal tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                             -1, 0);
  X509* issuer_cert = nullptr;
  if (issuer != nullptr) {
    const unsigned char* p = issuer->certificate_der.data();
    issuer_cert = d2i_X509(nullptr, &p, static_cast<long>(issuer->certificate_der.size()));
    X509_set_issuer_name(x, X509_get_subject_name(issuer_cert));
  } else {
    X509_set_issuer_name(x, name);
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer_cert != nullptr ? issuer_cert : x, x, nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  };
  if (spec.ca) add(NID_basic_constraints, "critical,CA:TRUE");
  if (!spec.key_usage.empty()) add(NID_key_usage, spec.key_usage);
  add(NID_subject_key_identifier, "hash");
  EVP_PKEY* signing_key = issuer != nullptr ? issuer->key.get() : subject_key;
  X509_sign(x, signing_key, EVP_sha256());
  int len = i2d_X509(x, nullptr);
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  i2d_X509(x, &p);
  X509_free(x);
  X509_free(issuer_cert);
  return der;
}

Bytes SoftwareSign(EVP_PKEY* key, ByteSpan digest, DigestAlgorithm algorithm,
                   SignatureScheme scheme) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key, nullptr);
  EVP_PKEY_sign_init(ctx);
  EVP_PKEY_CTX_set_signature_md(ctx, MdOf(algorithm));
  if (scheme == SignatureScheme::kRsaPss) {
    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, static_cast<int>(DigestSize(algorithm)));
    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, MdOf(algorithm));
  } else if (scheme == SignatureScheme::kRsaPkcs1v15) {
    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
  }
  std::size_t len = 0;
  EVP_PKEY_sign(ctx, nullptr, &len, digest.data(), digest.size());
  Bytes sig(len);
  if (EVP_PKEY_sign(ctx, sig.data(), &len, digest.data(), digest.size()) != 1) std::abort();
  sig.resize(len);
  EVP_PKEY_CTX_free(ctx);
  return sig;
}

Cmd Sh(const std::string& command) {
  auto r = qseal::testing::RunCommand(command);
  return Cmd{r.exit_code, r.output};
}

Pki MakePki(const std::string& key_type, CertSpec leaf_spec) {
  Pki pki;
  pki.ca.key = GenerateKey("ec-p256");
  CertSpec ca_spec;
  ca_spec.common_name = "qseal unit test CA";
  ca_spec.ca = true;
  ca_spec.key_usage = "critical,keyCertSign,cRLSign";
  pki.ca.certificate_der = IssueCertificate(pki.ca.key.get(), ca_spec, nullptr);
  pki.leaf.key = GenerateKey(key_type);
  if (leaf_spec.serial == 1) leaf_spec.serial = 7;
  pki.leaf.certificate_der = IssueCertificate(pki.leaf.key.get(), leaf_spec, &pki.ca);
  return pki;
}

}  // namespace qseal::formats::testing
