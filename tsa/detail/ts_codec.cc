#include "tsa/detail/ts_codec.h"

#include <ctime>
#include <string>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/openssl_errors.h"

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
using VerifyCtxPtr = std::unique_ptr<TS_VERIFY_CTX, Deleter<TS_VERIFY_CTX, TS_VERIFY_CTX_free>>;

// The OpenSSL error queue as text, emptied; the TS_* reasons ("nonce mismatch", "certificate
// verify error") live there.
std::string OpenSslErrors() {
  std::string out = DrainOpenSslErrors();
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
Status CheckSignerUsage(PKCS7* token) {
  STACK_OF(X509)* signers = PKCS7_get0_signers(token, nullptr, 0);
  if (signers == nullptr || sk_X509_num(signers) != 1) {
    sk_X509_free(signers);
    ERR_clear_error();
    return Refused("the token does not carry exactly one signer certificate (certReq was set)");
  }
  X509* signer = sk_X509_value(signers, 0);
  sk_X509_free(signers);
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

  // Our own checks first, each with its reason; TS_VERIFY_CTX repeats them below.
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
  QSEAL_RETURN_IF_ERROR(CheckSignerUsage(token));

  const unsigned char* rp = request.der.data();
  TsReqPtr req(d2i_TS_REQ(nullptr, &rp, static_cast<long>(request.der.size())));
  VerifyCtxPtr ctx(req ? TS_REQ_to_TS_VERIFY_CTX(req.get(), nullptr) : nullptr);
  if (!ctx) return InternalError("TS_REQ_to_TS_VERIFY_CTX: " + OpenSslErrors());
  TS_VERIFY_CTX_add_flags(ctx.get(), TS_VFY_SIGNATURE);
  // The context frees its store: give it a reference of its own.
  X509_STORE_up_ref(params.trust->get());
  TS_VERIFY_CTX_set_store(ctx.get(), params.trust->get());
  if (TS_RESP_verify_response(ctx.get(), resp.get()) != 1) {
    return Refused("TS_RESP_verify_response: " + OpenSslErrors());
  }

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
