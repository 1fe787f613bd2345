#include "formats/cades/detail/openssl_util.h"

#include <algorithm>
#include <array>
#include <cstdlib>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

// OpenSSL's STACK_OF and some accessor macros expand to C casts; they stay in this file.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace qseal::formats::cades::detail {
namespace {

struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};

std::chrono::system_clock::time_point FromAsn1Time(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  using namespace std::chrono;
  year_month_day ymd{year{tm.tm_year + 1900}, month{static_cast<unsigned>(tm.tm_mon + 1)},
                     day{static_cast<unsigned>(tm.tm_mday)}};
  return sys_days{ymd} + hours{tm.tm_hour} + minutes{tm.tm_min} + seconds{tm.tm_sec};
}

}  // namespace

Result<X509Ptr> ParseCertificate(ByteSpan der) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (cert == nullptr) {
    return InvalidArgumentError("certificate does not parse: " + DrainOpenSslErrors());
  }
  if (p != der.data() + der.size()) {
    return InvalidArgumentError("certificate has trailing bytes");
  }
  return cert;
}

const EVP_MD* Md(DigestAlgorithm digest) {
  static const std::array<EVP_MD*, 3> kMds = {
      EVP_MD_fetch(nullptr, "SHA2-256", nullptr),
      EVP_MD_fetch(nullptr, "SHA2-384", nullptr),
      EVP_MD_fetch(nullptr, "SHA2-512", nullptr),
  };
  const EVP_MD* md = kMds[static_cast<std::size_t>(digest)];
  if (md == nullptr) std::abort();  // the default provider lacks SHA-2: a broken installation
  return md;
}

Result<Bytes> Digest(DigestAlgorithm digest, ByteSpan data) {
  Bytes out(DigestSize(digest));
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, Md(digest), nullptr) != 1 ||
      len != out.size()) {
    return InternalError("EVP_Digest failed: " + DrainOpenSslErrors());
  }
  return out;
}

StreamDigest::StreamDigest(DigestAlgorithm digest) : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex2(ctx_.get(), Md(digest), nullptr) != 1) {
    status_ = InternalError("EVP_DigestInit failed: " + DrainOpenSslErrors());
  }
}

void StreamDigest::Update(ByteSpan data) {
  if (status_.ok() && EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) {
    status_ = InternalError("EVP_DigestUpdate failed: " + DrainOpenSslErrors());
  }
}

Result<Bytes> StreamDigest::Final() {
  QSEAL_RETURN_IF_ERROR(status_);
  Bytes out(static_cast<std::size_t>(EVP_MD_CTX_get_size(ctx_.get())));
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), out.data(), &len) != 1 || len != out.size()) {
    return InternalError("EVP_DigestFinal failed: " + DrainOpenSslErrors());
  }
  return out;
}

Status VerifySignature(EVP_PKEY* key, DigestAlgorithm digest, SignatureScheme scheme,
                       std::size_t pss_salt_length, ByteSpan data, ByteSpan signature) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (ctx == nullptr || EVP_DigestVerifyInit_ex(ctx.get(), &pctx, EVP_MD_get0_name(Md(digest)),
                                                nullptr, nullptr, key, nullptr) != 1) {
    return InvalidArgumentError("cannot set up verification: " + DrainOpenSslErrors());
  }
  if (scheme == SignatureScheme::kRsaPss) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, static_cast<int>(pss_salt_length)) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, Md(digest)) != 1) {
      return InvalidArgumentError("cannot set up RSASSA-PSS: " + DrainOpenSslErrors());
    }
  } else if (scheme == SignatureScheme::kRsaPkcs1v15) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
      return InvalidArgumentError("cannot set up RSASSA-PKCS1-v1_5: " + DrainOpenSslErrors());
    }
  }
  int rc =
      EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), data.data(), data.size());
  if (rc != 1) {
    std::string why = DrainOpenSslErrors();
    return InvalidArgumentError("signature does not verify" + (why.empty() ? "" : ": " + why));
  }
  return Status::Ok();
}

std::chrono::system_clock::time_point NotBefore(const X509* cert) {
  return FromAsn1Time(X509_get0_notBefore(cert));
}
std::chrono::system_clock::time_point NotAfter(const X509* cert) {
  return FromAsn1Time(X509_get0_notAfter(cert));
}

std::optional<std::uint32_t> KeyUsage(X509* cert) {
  std::uint32_t ku = X509_get_key_usage(cert);  // also caches the extensions
  if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) == 0) return std::nullopt;
  return ku;
}

bool SameName(ByteSpan a, ByteSpan b) {
  if (std::equal(a.begin(), a.end(), b.begin(), b.end())) return true;
  const unsigned char* pa = a.data();
  const unsigned char* pb = b.data();
  X509_NAME* na = d2i_X509_NAME(nullptr, &pa, static_cast<long>(a.size()));
  X509_NAME* nb = d2i_X509_NAME(nullptr, &pb, static_cast<long>(b.size()));
  bool same = na != nullptr && nb != nullptr && X509_NAME_cmp(na, nb) == 0;
  X509_NAME_free(na);
  X509_NAME_free(nb);
  ERR_clear_error();
  return same;
}

Status VerifyChain(X509* leaf, const std::vector<X509*>& untrusted,
                   const std::vector<X509*>& anchors, std::chrono::system_clock::time_point at) {
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  std::unique_ptr<STACK_OF(X509), StackFree> chain(sk_X509_new_null());
  if (store == nullptr || ctx == nullptr || chain == nullptr) {
    return InternalError("out of memory: " + DrainOpenSslErrors());
  }
  for (X509* a : anchors) {
    if (X509_STORE_add_cert(store.get(), a) != 1) {
      return InternalError("X509_STORE_add_cert: " + DrainOpenSslErrors());
    }
  }
  for (X509* u : untrusted) {
    if (sk_X509_push(chain.get(), u) <= 0) return InternalError("sk_X509_push failed");
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, chain.get()) != 1) {
    return InternalError("X509_STORE_CTX_init: " + DrainOpenSslErrors());
  }
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_PARTIAL_CHAIN);
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(at));
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    DrainOpenSslErrors();
    return InvalidArgumentError(std::string(X509_verify_cert_error_string(err)) + " (depth " +
                                std::to_string(X509_STORE_CTX_get_error_depth(ctx.get())) + ")");
  }
  return Status::Ok();
}

}  // namespace qseal::formats::cades::detail
