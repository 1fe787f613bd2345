#include "tests/formats/p11_test_signer.h"

#include <dlfcn.h>

#include <cstdio>
#include <optional>
#include <vector>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <p11-kit/pkcs11.h>

namespace qseal::formats::testing {
namespace {

std::string Rv(const char* what, CK_RV rv) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%08lx", rv);
  return std::string(what) + " failed: CK_RV " + buf;
}

// DER DigestInfo prefixes (RFC 8017 section 9.2, note 1).
Bytes DigestInfoPrefix(DigestAlgorithm d) {
  switch (d) {
    case DigestAlgorithm::kSha256:
      return HexDecode("3031300d060960864801650304020105000420").value();
    case DigestAlgorithm::kSha384:
      return HexDecode("3041300d060960864801650304020205000430").value();
    case DigestAlgorithm::kSha512:
      return HexDecode("3051300d060960864801650304020305000440").value();
  }
  return {};
}

Result<Bytes> RawEcdsaToDer(ByteSpan raw) {
  if (raw.empty() || raw.size() % 2 != 0) return InternalError("odd ECDSA signature length");
  std::size_t n = raw.size() / 2;
  BIGNUM* r = BN_bin2bn(raw.data(), static_cast<int>(n), nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + n, static_cast<int>(n), nullptr);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  if (r == nullptr || s == nullptr || sig == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return InternalError("ECDSA_SIG_set0 failed");
  }
  int len = i2d_ECDSA_SIG(sig, nullptr);
  Bytes out(static_cast<std::size_t>(len));
  unsigned char* p = out.data();
  i2d_ECDSA_SIG(sig, &p);
  ECDSA_SIG_free(sig);
  return out;
}

}  // namespace

struct P11TestSigner::State {
  void* handle = nullptr;
  CK_FUNCTION_LIST* f = nullptr;
  CK_SESSION_HANDLE session = 0;
  CK_OBJECT_HANDLE key = 0;
  bool initialized_here = false;
};

P11TestSigner::P11TestSigner(std::unique_ptr<State> state) : state_(std::move(state)) {}

P11TestSigner::~P11TestSigner() {
  if (state_->f != nullptr) {
    if (state_->session != 0) state_->f->C_CloseSession(state_->session);
    if (state_->initialized_here) state_->f->C_Finalize(nullptr);
  }
  if (state_->handle != nullptr) dlclose(state_->handle);
}

Result<std::unique_ptr<P11TestSigner>> P11TestSigner::Open(const std::string& module,
                                                           const std::string& token_label,
                                                           const std::string& pin,
                                                           const std::string& key_label) {
  auto state = std::make_unique<State>();
  state->handle = dlopen(module.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (state->handle == nullptr) return UnavailableError(std::string("dlopen: ") + dlerror());
  auto get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(state->handle, "C_GetFunctionList"));
  if (get_list == nullptr) return UnavailableError("no C_GetFunctionList");
  std::unique_ptr<P11TestSigner> signer(new P11TestSigner(std::move(state)));
  State& s = *signer->state_;
  CK_RV rv = get_list(&s.f);
  if (rv != CKR_OK) return UnavailableError(Rv("C_GetFunctionList", rv));
  rv = s.f->C_Initialize(nullptr);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    s.f = nullptr;
    return UnavailableError(Rv("C_Initialize", rv));
  }
  s.initialized_here = rv == CKR_OK;
  CK_ULONG count = 0;
  rv = s.f->C_GetSlotList(CK_TRUE, nullptr, &count);
  if (rv != CKR_OK) return UnavailableError(Rv("C_GetSlotList", rv));
  std::vector<CK_SLOT_ID> slots(count);
  rv = s.f->C_GetSlotList(CK_TRUE, slots.data(), &count);
  if (rv != CKR_OK) return UnavailableError(Rv("C_GetSlotList", rv));
  std::optional<CK_SLOT_ID> slot;
  for (CK_SLOT_ID id : slots) {
    CK_TOKEN_INFO info{};
    if (s.f->C_GetTokenInfo(id, &info) != CKR_OK) continue;
    std::string label(reinterpret_cast<const char*>(info.label), sizeof(info.label));
    label.erase(label.find_last_not_of(' ') + 1);
    if (label == token_label) slot = id;
  }
  if (!slot.has_value()) return NotFoundError("no token labelled " + token_label);
  rv = s.f->C_OpenSession(*slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &s.session);
  if (rv != CKR_OK) return UnavailableError(Rv("C_OpenSession", rv));
  std::string pin_copy = pin;
  rv = s.f->C_Login(s.session, CKU_USER, reinterpret_cast<unsigned char*>(pin_copy.data()),
                    pin_copy.size());
  if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
    return PermissionDeniedError(Rv("C_Login", rv));

  CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
  std::string label = key_label;
  CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &klass, sizeof(klass)},
                         {CKA_LABEL, label.data(), label.size()}};
  rv = s.f->C_FindObjectsInit(s.session, tmpl, 2);
  if (rv != CKR_OK) return UnavailableError(Rv("C_FindObjectsInit", rv));
  CK_ULONG found = 0;
  rv = s.f->C_FindObjects(s.session, &s.key, 1, &found);
  s.f->C_FindObjectsFinal(s.session);
  if (rv != CKR_OK || found != 1) return NotFoundError("no private key labelled " + key_label);
  return signer;
}

Result<Bytes> P11TestSigner::Sign(ByteSpan digest, DigestAlgorithm algorithm,
                                  SignatureScheme scheme) {
  State& s = *state_;
  Bytes input(digest.begin(), digest.end());
  CK_MECHANISM mech{};
  CK_RSA_PKCS_PSS_PARAMS pss{};
  switch (scheme) {
    case SignatureScheme::kRsaPkcs1v15: {
      mech.mechanism = CKM_RSA_PKCS;
      input = DigestInfoPrefix(algorithm);
      input.insert(input.end(), digest.begin(), digest.end());
      break;
    }
    case SignatureScheme::kRsaPss: {
      mech.mechanism = CKM_RSA_PKCS_PSS;
      static constexpr CK_MECHANISM_TYPE kHash[] = {CKM_SHA256, CKM_SHA384, CKM_SHA512};
      static constexpr CK_RSA_PKCS_MGF_TYPE kMgf[] = {CKG_MGF1_SHA256, CKG_MGF1_SHA384,
                                                      CKG_MGF1_SHA512};
      auto i = static_cast<std::size_t>(algorithm);
      pss.hashAlg = kHash[i];
      pss.mgf = kMgf[i];
      pss.sLen = DigestSize(algorithm);
      mech.pParameter = &pss;
      mech.ulParameterLen = sizeof(pss);
      break;
    }
    case SignatureScheme::kEcdsa:
      mech.mechanism = CKM_ECDSA;
      break;
  }
  CK_RV rv = s.f->C_SignInit(s.session, &mech, s.key);
  if (rv != CKR_OK) return UnavailableError(Rv("C_SignInit", rv));
  CK_ULONG len = 1024;
  Bytes sig(len);
  rv = s.f->C_Sign(s.session, input.data(), input.size(), sig.data(), &len);
  if (rv != CKR_OK) return UnavailableError(Rv("C_Sign", rv));
  sig.resize(len);
  if (scheme == SignatureScheme::kEcdsa) return RawEcdsaToDer(sig);
  return sig;
}

}  // namespace qseal::formats::testing
