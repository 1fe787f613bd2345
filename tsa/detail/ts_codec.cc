#include "tsa/detail/ts_codec.h"

#include <algorithm>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>
#include <string>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ess.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace qseal::tsa::detail {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using TsReqPtr = std::unique_ptr<TS_REQ, Deleter<TS_REQ, TS_REQ_free>>;
using TsRespPtr = std::unique_ptr<TS_RESP, Deleter<TS_RESP, TS_RESP_free>>;
using MsgImprintPtr = std::unique_ptr<TS_MSG_IMPRINT, Deleter<TS_MSG_IMPRINT, TS_MSG_IMPRINT_free>>;
using AlgorPtr = std::unique_ptr<X509_ALGOR, Deleter<X509_ALGOR, X509_ALGOR_free>>;
using ObjectPtr = std::unique_ptr<ASN1_OBJECT, Deleter<ASN1_OBJECT, ASN1_OBJECT_free>>;
using IntegerPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER, ASN1_INTEGER_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using EssCertPtr =
    std::unique_ptr<ESS_SIGNING_CERT, Deleter<ESS_SIGNING_CERT, ESS_SIGNING_CERT_free>>;
using EssCertV2Ptr =
    std::unique_ptr<ESS_SIGNING_CERT_V2, Deleter<ESS_SIGNING_CERT_V2, ESS_SIGNING_CERT_V2_free>>;

// The OpenSSL error queue as text, emptied; the TS_* reasons ("nonce mismatch", "certificate
// verify error") live there.
std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL reason" : out;
}

int DigestNid(DigestAlgorithm algorithm) {
  switch (algorithm) {
    case DigestAlgorithm::kSha256:
      return NID_sha256;
    case DigestAlgorithm::kSha384:
      return NID_sha384;
    case DigestAlgorithm::kSha512:
      return NID_sha512;
  }
  return NID_undef;
}

Status Refused(const std::string& reason) {
  return UnavailableError("time-stamp response refused: " + reason);
}

Bytes IntegerBytes(const ASN1_INTEGER* value) {
  BignumPtr bn(ASN1_INTEGER_to_BN(value, nullptr));
  if (!bn) return {};
  Bytes out(static_cast<std::size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), out.data());
  return out;
}

std::string PkiStatusName(long status) {
  switch (status) {
    case TS_STATUS_GRANTED:
      return "granted";
    case TS_STATUS_GRANTED_WITH_MODS:
      return "grantedWithMods";
    case TS_STATUS_REJECTION:
      return "rejection";
    case TS_STATUS_WAITING:
      return "waiting";
    case TS_STATUS_REVOCATION_WARNING:
      return "revocationWarning";
    case TS_STATUS_REVOCATION_NOTIFICATION:
      return "revocationNotification";
    default:
      return "unknown (" + std::to_string(status) + ")";
  }
}

// RFC 3161 §2.3 asks for a critical EKU holding timeStamping only. OpenSSL's timestamp purpose
// checks the same during chain verification, but its message says only "unsupported
// certificate purpose"; checking first gives the operator the real reason.
Status CheckSignerUsage(X509* signer) {
  if ((X509_get_extension_flags(signer) & EXFLAG_XKUSAGE) == 0 ||
      (X509_get_extended_key_usage(signer) & XKU_TIMESTAMP) == 0) {
    return Refused("the TSA certificate lacks the extended key usage timeStamping");
  }
  if (X509_get_extended_key_usage(signer) != XKU_TIMESTAMP) {
    return Refused("the TSA certificate has extended key usages besides timeStamping");
  }
  int index = X509_get_ext_by_NID(signer, NID_ext_key_usage, -1);
  if (index < 0 || X509_EXTENSION_get_critical(X509_get_ext(signer, index)) == 0) {
    return Refused("the TSA certificate's extended key usage timeStamping is not critical");
  }
  return Status::Ok();
}

std::time_t ToTimeT(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return -1;
  return timegm(&tm);
}

// The token's one signer certificate (certReq is always set, so the token carries it).
Result<X509*> SoleSigner(PKCS7* token) {
  STACK_OF(X509)* signers = PKCS7_get0_signers(token, nullptr, 0);
  if (signers == nullptr || sk_X509_num(signers) != 1) {
    sk_X509_free(signers);
    ERR_clear_error();
    return Refused("the token does not carry exactly one signer certificate (certReq was set)");
  }
  X509* signer = sk_X509_value(signers, 0);
  sk_X509_free(signers);
  return signer;
}

}  // namespace

// A TSA certificate whose chain to the anchors has verified for the purpose timeStamping: its own
// parsed copy (public key decoded) and the chain, leaf first.
struct VerifiedSigner {
  X509Ptr cert;
  STACK_OF(X509) * chain = nullptr;
  std::time_t not_before = 0;  // the latest notBefore of the chain
  std::time_t not_after = 0;   // the earliest notAfter of the chain
  ~VerifiedSigner() { sk_X509_pop_free(chain, X509_free); }
};

struct SignerCache {
  // More distinct TSA certificates than this (a renewal every few years) empties the cache.
  static constexpr std::size_t kMaxEntries = 64;
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const VerifiedSigner>> by_sha256;  // raw 32 bytes
};

namespace {

// The signer's verified chain: from the cache, re-checked against `now`, or built now with the
// token's certificates as intermediates (OpenSSL's X509_verify_cert, purpose timeStamping, at
// `now`) and cached.
Result<std::shared_ptr<const VerifiedSigner>> VerifiedChain(const TrustStore& trust, X509* signer,
                                                            PKCS7* token, std::time_t now) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(signer, EVP_sha256(), md, &len) != 1) {
    return InternalError("X509_digest: " + OpenSslErrors());
  }
  const std::string sha256(reinterpret_cast<const char*>(md), len);
  SignerCache& cache = trust.signers();
  std::shared_ptr<const VerifiedSigner> hit;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.by_sha256.find(sha256);
    if (it != cache.by_sha256.end()) hit = it->second;
  }
  if (hit) {
    if (now < hit->not_before) return Refused("the TSA certificate chain is not yet valid");
    if (now > hit->not_after) return Refused("the TSA certificate chain has expired");
    return hit;
  }
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), trust.get(), signer, token->d.sign->cert) != 1) {
    return InternalError("X509_STORE_CTX_init: " + OpenSslErrors());
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_TIMESTAMP_SIGN);
  X509_STORE_CTX_set_time(ctx.get(), 0, now);
  if (X509_verify_cert(ctx.get()) <= 0) {
    ERR_clear_error();
    return Refused(std::string("TSA certificate verify error: ") +
                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  }
  auto entry = std::make_shared<VerifiedSigner>();
  X509_up_ref(signer);
  entry->cert.reset(signer);
  entry->chain = X509_STORE_CTX_get1_chain(ctx.get());
  entry->not_after = std::numeric_limits<std::time_t>::max();
  for (int i = 0; i < sk_X509_num(entry->chain); ++i) {
    X509* c = sk_X509_value(entry->chain, i);
    entry->not_before = std::max(entry->not_before, ToTimeT(X509_get0_notBefore(c)));
    entry->not_after = std::min(entry->not_after, ToTimeT(X509_get0_notAfter(c)));
  }
  std::lock_guard<std::mutex> lock(cache.mu);
  if (cache.by_sha256.size() >= SignerCache::kMaxEntries) cache.by_sha256.clear();
  cache.by_sha256.emplace(sha256, entry);
  return std::shared_ptr<const VerifiedSigner>(entry);
}

// The ESS signing-certificate attribute (v1 or v2) must name the TSA certificate (RFC 3161 §2.4.1,
// RFC 5816): OpenSSL's own check, as TS_RESP_verify_response makes it.
Status CheckEssSigningCert(PKCS7_SIGNER_INFO* si, const STACK_OF(X509) * chain) {
  EssCertPtr v1;
  EssCertV2Ptr v2;
  if (ASN1_TYPE* a = PKCS7_get_signed_attribute(si, NID_id_smime_aa_signingCertificate);
      a != nullptr && a->type == V_ASN1_SEQUENCE) {
    const unsigned char* p = a->value.sequence->data;
    v1.reset(d2i_ESS_SIGNING_CERT(nullptr, &p, a->value.sequence->length));
  }
  if (ASN1_TYPE* a = PKCS7_get_signed_attribute(si, NID_id_smime_aa_signingCertificateV2);
      a != nullptr && a->type == V_ASN1_SEQUENCE) {
    const unsigned char* p = a->value.sequence->data;
    v2.reset(d2i_ESS_SIGNING_CERT_V2(nullptr, &p, a->value.sequence->length));
  }
  if (OSSL_ESS_check_signing_certs(v1.get(), v2.get(), chain, 1) <= 0) {
    return Refused("the ESS signing-certificate attribute does not name the TSA certificate: " +
                   OpenSslErrors());
  }
  return Status::Ok();
}

// The SignedData's signature over the TSTInfo, with the cached certificate's public key.
Status CheckTokenSignature(PKCS7* token, PKCS7_SIGNER_INFO* si, X509* cert) {
  BioPtr bio(PKCS7_dataInit(token, nullptr));
  if (!bio) return Refused("the token's content cannot be read: " + OpenSslErrors());
  char buf[4096];
  while (BIO_read(bio.get(), buf, sizeof(buf)) > 0) {
  }
  if (PKCS7_signatureVerify(bio.get(), token, si, cert) <= 0) {
    return Refused("the token's signature does not verify: " + OpenSslErrors());
  }
  return Status::Ok();
}

}  // namespace

Result<PreparedRequest> BuildRequest(DigestAlgorithm algorithm, ByteSpan digest,
                                     const std::string& policy_oid) {
  if (digest.size() != DigestSize(algorithm)) {
    return InvalidArgumentError("a " + std::string(DigestName(algorithm)) + " digest has " +
                                std::to_string(DigestSize(algorithm)) + " bytes, not " +
                                std::to_string(digest.size()));
  }
  PreparedRequest out;
  out.algorithm = algorithm;
  out.digest.assign(digest.begin(), digest.end());
  out.policy_oid = policy_oid;

  TsReqPtr req(TS_REQ_new());
  MsgImprintPtr imprint(TS_MSG_IMPRINT_new());
  AlgorPtr algor(X509_ALGOR_new());
  if (!req || !imprint || !algor || TS_REQ_set_version(req.get(), 1) != 1 ||
      X509_ALGOR_set0(algor.get(), OBJ_nid2obj(DigestNid(algorithm)), V_ASN1_NULL, nullptr) != 1 ||
      TS_MSG_IMPRINT_set_algo(imprint.get(), algor.get()) != 1 ||
      TS_MSG_IMPRINT_set_msg(imprint.get(), const_cast<unsigned char*>(digest.data()),
                             static_cast<int>(digest.size())) != 1 ||
      TS_REQ_set_msg_imprint(req.get(), imprint.get()) != 1 ||
      TS_REQ_set_cert_req(req.get(), 1) != 1) {
    return InternalError("building a TimeStampReq: " + OpenSslErrors());
  }
  if (!policy_oid.empty()) {
    ObjectPtr policy(OBJ_txt2obj(policy_oid.c_str(), 1));
    if (!policy) {
      ERR_clear_error();
      return InvalidArgumentError("not an OID: '" + policy_oid + "'");
    }
    if (TS_REQ_set_policy_id(req.get(), policy.get()) != 1) {
      return InternalError("setting reqPolicy: " + OpenSslErrors());
    }
  }
  // 63 random bits, top bit clear so the INTEGER is positive and 8 bytes long at most.
  out.nonce.resize(8);
  if (RAND_bytes(out.nonce.data(), 8) != 1) return InternalError("RAND_bytes: " + OpenSslErrors());
  out.nonce[0] = static_cast<std::uint8_t>((out.nonce[0] & 0x7f) | 0x40);
  BignumPtr bn(BN_bin2bn(out.nonce.data(), 8, nullptr));
  IntegerPtr nonce(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  if (!nonce || TS_REQ_set_nonce(req.get(), nonce.get()) != 1) {
    return InternalError("setting the nonce: " + OpenSslErrors());
  }
  int len = i2d_TS_REQ(req.get(), nullptr);
  if (len <= 0) return InternalError("encoding a TimeStampReq: " + OpenSslErrors());
  out.der.resize(static_cast<std::size_t>(len));
  unsigned char* p = out.der.data();
  i2d_TS_REQ(req.get(), &p);
  return out;
}

Result<std::shared_ptr<TrustStore>> TrustStore::Load(const std::string& ca_file) {
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr) return InternalError("X509_STORE_new: " + OpenSslErrors());
  std::shared_ptr<TrustStore> out(new TrustStore(store));
  if (X509_STORE_load_file(store, ca_file.c_str()) != 1) {
    return InvalidArgumentError("cannot load TSA trust anchors from '" + ca_file +
                                "': " + OpenSslErrors());
  }
  return out;
}

TrustStore::TrustStore(X509_STORE* store)
    : store_(store), signers_(std::make_unique<SignerCache>()) {}

TrustStore::~TrustStore() { X509_STORE_free(store_); }

Result<TimeStampToken> VerifyResponse(ByteSpan response, const VerifyParams& params) {
  ERR_clear_error();
  const PreparedRequest& request = *params.request;
  const unsigned char* p = response.data();
  TsRespPtr resp(d2i_TS_RESP(nullptr, &p, static_cast<long>(response.size())));
  if (!resp || p != response.data() + response.size()) {
    ERR_clear_error();
    return Refused("the body is not a DER TimeStampResp");
  }
  TS_STATUS_INFO* info = TS_RESP_get_status_info(resp.get());
  long status = ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(info));
  if (status != TS_STATUS_GRANTED && status != TS_STATUS_GRANTED_WITH_MODS) {
    std::string text;
    const STACK_OF(ASN1_UTF8STRING)* texts = TS_STATUS_INFO_get0_text(info);
    for (int i = 0; texts != nullptr && i < sk_ASN1_UTF8STRING_num(texts); ++i) {
      const ASN1_UTF8STRING* s = sk_ASN1_UTF8STRING_value(texts, i);
      text += (text.empty() ? " (" : ", ") +
              std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                          static_cast<std::size_t>(ASN1_STRING_length(s)));
    }
    if (!text.empty()) text += ")";
    return Refused("PKIStatus " + PkiStatusName(status) + text);
  }
  PKCS7* token = TS_RESP_get_token(resp.get());
  TS_TST_INFO* tst = TS_RESP_get_tst_info(resp.get());
  if (token == nullptr || tst == nullptr) return Refused("a granted response without a token");
  if (!PKCS7_type_is_signed(token) || token->d.sign == nullptr ||
      token->d.sign->contents == nullptr ||
      OBJ_obj2nid(token->d.sign->contents->type) != NID_id_smime_ct_TSTInfo) {
    return Refused("the token is not a SignedData over a TSTInfo");
  }
  if (TS_TST_INFO_get_version(tst) != 1) return Refused("TSTInfo version is not 1");

  // The checks TS_RESP_verify_response makes (version, imprint, nonce, policy, chain, ESS,
  // signature), each with its own reason, and with the chain verified once per TSA certificate.
  TS_MSG_IMPRINT* imprint = TS_TST_INFO_get_msg_imprint(tst);
  X509_ALGOR* algor = TS_MSG_IMPRINT_get_algo(imprint);
  const ASN1_OBJECT* algo_oid = nullptr;
  X509_ALGOR_get0(&algo_oid, nullptr, nullptr, algor);
  ASN1_OCTET_STRING* msg = TS_MSG_IMPRINT_get_msg(imprint);
  if (OBJ_obj2nid(algo_oid) != DigestNid(request.algorithm) ||
      Bytes(ASN1_STRING_get0_data(msg), ASN1_STRING_get0_data(msg) + ASN1_STRING_length(msg)) !=
          request.digest) {
    return Refused("message imprint differs from the request's");
  }
  const ASN1_INTEGER* nonce = TS_TST_INFO_get_nonce(tst);
  if (nonce == nullptr) return Refused("nonce missing");
  if (IntegerBytes(nonce) != request.nonce) return Refused("nonce mismatch");
  if (!request.policy_oid.empty()) {
    char buf[128];
    OBJ_obj2txt(buf, sizeof(buf), TS_TST_INFO_get_policy_id(tst), 1);
    if (request.policy_oid != buf) {
      return Refused("policy " + std::string(buf) + " is not the requested " + request.policy_oid);
    }
  }
  QSEAL_ASSIGN_OR_RETURN(X509 * signer, SoleSigner(token));
  QSEAL_RETURN_IF_ERROR(CheckSignerUsage(signer));
  STACK_OF(PKCS7_SIGNER_INFO)* infos = PKCS7_get_signer_info(token);
  if (infos == nullptr || sk_PKCS7_SIGNER_INFO_num(infos) != 1) {
    return Refused("the token does not have exactly one signer");
  }
  PKCS7_SIGNER_INFO* si = sk_PKCS7_SIGNER_INFO_value(infos, 0);
  QSEAL_ASSIGN_OR_RETURN(std::shared_ptr<const VerifiedSigner> verified,
                         VerifiedChain(*params.trust, signer, token,
                                       std::chrono::system_clock::to_time_t(params.now)));
  QSEAL_RETURN_IF_ERROR(CheckEssSigningCert(si, verified->chain));
  QSEAL_RETURN_IF_ERROR(CheckTokenSignature(token, si, verified->cert.get()));

  std::tm tm{};
  if (ASN1_TIME_to_tm(TS_TST_INFO_get_time(tst), &tm) != 1) return Refused("genTime unreadable");
  auto gen_time = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto skew = gen_time > params.now ? gen_time - params.now : params.now - gen_time;
  if (skew > params.max_clock_skew) {
    return Refused("genTime " + std::string(FormatUtc(gen_time)) + " is " +
                   std::to_string(std::chrono::duration_cast<std::chrono::seconds>(skew).count()) +
                   " s away from the local clock");
  }

  TimeStampToken out;
  int len = i2d_PKCS7(token, nullptr);
  if (len <= 0) return InternalError("encoding the token: " + OpenSslErrors());
  out.der.resize(static_cast<std::size_t>(len));
  unsigned char* tp = out.der.data();
  i2d_PKCS7(token, &tp);
  out.gen_time = gen_time;
  out.serial_hex = HexEncode(IntegerBytes(TS_TST_INFO_get_serial(tst)));
  return out;
}

}  // namespace qseal::tsa::detail
