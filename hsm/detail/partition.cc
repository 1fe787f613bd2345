#include "hsm/detail/partition.h"

#include <p11-kit/uri.h>

#include "common/crash_point.h"
#include "common/log.h"

namespace qseal::hsm::detail {
std::string PaddedField(const CK_UTF8CHAR* field, std::size_t size) {
  std::string s(reinterpret_cast<const char*>(field), size);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

Result<KeyUri> ParseKeyUri(const std::string& uri) {
  P11KitUri* parsed = p11_kit_uri_new();
  int r = p11_kit_uri_parse(uri.c_str(), P11_KIT_URI_FOR_OBJECT, parsed);
  if (r != P11_KIT_URI_OK) {
    std::string why = p11_kit_uri_message(r);
    p11_kit_uri_free(parsed);
    return InvalidArgumentError("bad PKCS#11 URI '" + uri + "': " + why);
  }
  KeyUri key;
  if (CK_ATTRIBUTE* a = p11_kit_uri_get_attribute(parsed, CKA_LABEL); a != nullptr) {
    key.label.assign(static_cast<const char*>(a->pValue), a->ulValueLen);
  }
  if (CK_ATTRIBUTE* a = p11_kit_uri_get_attribute(parsed, CKA_ID); a != nullptr) {
    const auto* p = static_cast<const std::uint8_t*>(a->pValue);
    key.id.assign(p, p + a->ulValueLen);
  }
  bool wrong_type = false;
  if (CK_ATTRIBUTE* a = p11_kit_uri_get_attribute(parsed, CKA_CLASS);
      a != nullptr && a->ulValueLen == sizeof(CK_OBJECT_CLASS)) {
    wrong_type = *static_cast<const CK_OBJECT_CLASS*>(a->pValue) != CKO_PRIVATE_KEY;
  }
  p11_kit_uri_free(parsed);
  if (wrong_type) return InvalidArgumentError("PKCS#11 URI '" + uri + "' names no private key");
  if (key.label.empty() && key.id.empty()) {
    return InvalidArgumentError("PKCS#11 URI '" + uri + "' names neither object= nor id=");
  }
  return key;
}

Result<Secret> ReadPin(const std::string& pin_source) {
  if (pin_source.rfind("file:", 0) == 0) {
    Result<Secret> pin = ReadSecretFile(pin_source.substr(5));
    if (!pin.ok()) return pin.status().WithContext("pin_source");
    return pin;
  }
  if (pin_source.rfind("env:", 0) == 0) {
    Result<Secret> pin = ReadSecretEnv(pin_source.substr(4));
    if (!pin.ok()) return pin.status().WithContext("pin_source");
    return pin;
  }
  return InvalidArgumentError("pin_source must start with file: or env:");
}

Session& Session::operator=(Session&& o) noexcept {
  if (this != &o) {
    Close();
    partition_ = o.partition_;
    handle_ = o.handle_;
    generation_ = o.generation_;
    o.partition_ = nullptr;
  }
  return *this;
}

void Session::Close() {
  if (partition_ == nullptr) return;
  Module& m = partition_->module();
  {
    Module::Call call(m);
    if (call.initialized() && call.generation() == generation_) m.fn()->C_CloseSession(handle_);
  }
  partition_ = nullptr;
}

Partition::Partition(PartitionOptions options, std::shared_ptr<Module> module, Secret pin,
                     std::vector<KeyUri> keys)
    : options_(std::move(options)),
      module_(std::move(module)),
      pin_(std::move(pin)),
      keys_(std::move(keys)) {
  MutexLock lock(mu_);
  handles_.resize(keys_.size());
}

void Partition::WipePin() {
  MutexLock lock(mu_);
  // A C_Login in flight reads pin_ outside mu_: wait for it.
  while (login_in_progress_) cv_.Wait(mu_);
  pin_wiped_ = true;
  pin_.Wipe();
}

bool Partition::PinFailed() const {
  MutexLock lock(mu_);
  return !pin_error_.ok();
}

Status Partition::FindSlot(std::uint64_t generation, CK_RV* rv) {
  CK_FUNCTION_LIST* fn = module_->fn();
  CK_ULONG count = 0;
  *rv = fn->C_GetSlotList(CK_TRUE, nullptr, &count);
  if (*rv != CKR_OK) return CkrStatus(*rv, "C_GetSlotList");
  std::vector<CK_SLOT_ID> slots(count);
  *rv = fn->C_GetSlotList(CK_TRUE, slots.data(), &count);
  if (*rv != CKR_OK) return CkrStatus(*rv, "C_GetSlotList");
  slots.resize(count);
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info{};
    if (fn->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
    std::string label = PaddedField(info.label, sizeof(info.label));
    std::string serial = PaddedField(info.serialNumber, sizeof(info.serialNumber));
    if (!options_.token_label.empty() && label != options_.token_label) continue;
    if (!options_.token_serial.empty() && serial != options_.token_serial) continue;
    MutexLock lock(mu_);
    slot_ = slot;
    slot_generation_ = generation;
    return Status::Ok();
  }
  *rv = CKR_TOKEN_NOT_PRESENT;
  return UnavailableError("partition '" + options_.name + "': no token with label '" +
                          options_.token_label + "' serial '" + options_.token_serial +
                          "': CKR_TOKEN_NOT_PRESENT");
}

Result<Session> Partition::Open(CK_RV* rv) {
  *rv = CKR_OK;
  {
    MutexLock lock(mu_);
    if (!pin_error_.ok()) {
      *rv = pin_rv_;
      return pin_error_;
    }
  }
  Session session;
  {
    Module::Call call(*module_);
    if (!call.initialized()) {
      *rv = CKR_CRYPTOKI_NOT_INITIALIZED;
      return CkrStatus(*rv, "partition '" + options_.name + "'");
    }
    bool need_slot;
    {
      MutexLock lock(mu_);
      need_slot = slot_generation_ != call.generation();
    }
    if (need_slot) QSEAL_RETURN_IF_ERROR(FindSlot(call.generation(), rv));
    CK_SLOT_ID slot;
    {
      MutexLock lock(mu_);
      slot = slot_;
    }
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    *rv = module_->fn()->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &h);
    if (*rv != CKR_OK) {
      if (*rv == CKR_SLOT_ID_INVALID || *rv == CKR_TOKEN_NOT_PRESENT) {
        MutexLock lock(mu_);
        slot_generation_ = 0;
      }
      return CkrStatus(*rv, "partition '" + options_.name + "': C_OpenSession");
    }
    session.partition_ = this;
    session.handle_ = h;
    session.generation_ = call.generation();
    CK_SESSION_INFO info{};
    *rv = module_->fn()->C_GetSessionInfo(h, &info);
    if (*rv != CKR_OK) return CkrStatus(*rv, "partition '" + options_.name + "': C_GetSessionInfo");
    if (info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS) {
      return session;
    }
  }
  QSEAL_RETURN_IF_ERROR(LoginOnce(session, rv));
  return session;
}

Status Partition::Relogin(Session& session, CK_RV* rv) { return LoginOnce(session, rv); }

Status Partition::KeepAlive(Session& session, CK_RV* rv) {
  *rv = CKR_OK;
  if (!session.open()) return Status::Ok();
  CK_SESSION_INFO info{};
  {
    Module::Call call(*module_);
    if (!call.initialized() || call.generation() != session.generation()) {
      // Void since a re-initialisation: nothing to keep alive; the next request opens anew.
      session.Drop();
      return Status::Ok();
    }
    *rv = module_->fn()->C_GetSessionInfo(session.handle(), &info);
  }
  if (*rv != CKR_OK) {
    Status s = CkrStatus(*rv, "partition '" + options_.name + "': keepalive C_GetSessionInfo");
    if (Classify(*rv) == CkrClass::kSession) session.Close();
    return s;
  }
  if (info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS) {
    return Status::Ok();
  }
  return LoginOnce(session, rv);
}

Status Partition::LoginOnce(Session& session, CK_RV* rv) {
  *rv = CKR_OK;
  {
    MutexLock lock(mu_);
    if (!pin_error_.ok()) {
      *rv = pin_rv_;
      return pin_error_;
    }
    std::uint64_t epoch = login_epoch_;
    while (login_in_progress_) cv_.Wait(mu_);
    if (login_epoch_ != epoch) return Status::Ok();  // another thread just logged the token in
    if (!pin_error_.ok()) {
      *rv = pin_rv_;
      return pin_error_;
    }
    if (pin_wiped_) {
      *rv = CKR_USER_NOT_LOGGED_IN;
      return CancelledError("partition '" + options_.name + "': shut down, PIN wiped");
    }
    login_in_progress_ = true;
  }
  // Not under mu_: C_Login is an HSM call. login_in_progress_ makes it single-flight.
  {
    Module::Call call(*module_);
    if (!call.initialized() || call.generation() != session.generation()) {
      *rv = CKR_SESSION_HANDLE_INVALID;
    } else {
      // The PIN straight from its locked page: no copy to wipe. PKCS#11 declares the pointer
      // non-const; C_Login only reads it.
      *rv = module_->fn()->C_Login(session.handle(), CKU_USER,
                                   reinterpret_cast<CK_UTF8CHAR*>(const_cast<char*>(pin_.data())),
                                   static_cast<CK_ULONG>(pin_.size()));
    }
  }
  MutexLock lock(mu_);
  login_in_progress_ = false;
  cv_.SignalAll();
  if (*rv == CKR_OK || *rv == CKR_USER_ALREADY_LOGGED_IN) {
    ++login_epoch_;
    *rv = CKR_OK;
    return Status::Ok();
  }
  Status s = CkrStatus(*rv, "partition '" + options_.name + "': C_Login");
  if (Classify(*rv) == CkrClass::kPin) {
    pin_error_ = s;
    pin_rv_ = *rv;
    LogError("partition disabled: PIN refused, never retried",
             {{"partition", options_.name}, {"error", CkrName(*rv)}});
  }
  return s;
}

Result<CK_OBJECT_HANDLE> Partition::KeyHandle(Session& session, std::size_t key_index, CK_RV* rv,
                                              CK_KEY_TYPE* key_type) {
  *rv = CKR_OK;
  {
    MutexLock lock(mu_);
    const CachedHandle& c = handles_[key_index];
    if (c.generation == session.generation() && c.handle != CK_INVALID_HANDLE) {
      if (key_type != nullptr) *key_type = c.key_type;
      return c.handle;
    }
  }
  const KeyUri& uri = keys_[key_index];
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  std::string label = uri.label;
  Bytes id = uri.id;
  std::vector<CK_ATTRIBUTE> tmpl;
  tmpl.push_back({CKA_CLASS, &cls, sizeof(cls)});
  if (!label.empty()) tmpl.push_back({CKA_LABEL, label.data(), label.size()});
  if (!id.empty()) tmpl.push_back({CKA_ID, id.data(), id.size()});
  CK_OBJECT_HANDLE found[2] = {CK_INVALID_HANDLE, CK_INVALID_HANDLE};
  CK_ULONG n = 0;
  CK_KEY_TYPE type = CKK_VENDOR_DEFINED;
  {
    Module::Call call(*module_);
    if (!call.initialized() || call.generation() != session.generation()) {
      *rv = CKR_SESSION_HANDLE_INVALID;
      return CkrStatus(*rv, "C_FindObjectsInit");
    }
    CK_FUNCTION_LIST* fn = module_->fn();
    *rv = fn->C_FindObjectsInit(session.handle(), tmpl.data(), static_cast<CK_ULONG>(tmpl.size()));
    if (*rv != CKR_OK)
      return CkrStatus(*rv, "partition '" + options_.name + "': C_FindObjectsInit");
    *rv = fn->C_FindObjects(session.handle(), found, 2, &n);
    CK_RV frv = fn->C_FindObjectsFinal(session.handle());
    if (*rv != CKR_OK) return CkrStatus(*rv, "partition '" + options_.name + "': C_FindObjects");
    if (frv != CKR_OK) {
      *rv = frv;
      return CkrStatus(*rv, "partition '" + options_.name + "': C_FindObjectsFinal");
    }
    if (n == 1) {
      CK_ATTRIBUTE attr{CKA_KEY_TYPE, &type, sizeof(type)};
      if (fn->C_GetAttributeValue(session.handle(), found[0], &attr, 1) != CKR_OK) {
        type = CKK_VENDOR_DEFINED;
      }
    }
  }
  if (n == 0) {
    return NotFoundError("partition '" + options_.name + "': no private key with label '" +
                         uri.label + "' id " + HexEncode(uri.id));
  }
  if (n > 1) {
    return InvalidArgumentError("partition '" + options_.name + "': key URI matches several keys");
  }
  MutexLock lock(mu_);
  handles_[key_index] = {session.generation(), found[0], type};
  if (key_type != nullptr) *key_type = type;
  return found[0];
}

Result<KeyProtection> Partition::ReadKeyProtection(Session& session, std::size_t key_index,
                                                   CK_RV* rv) {
  QSEAL_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE key, KeyHandle(session, key_index, rv));
  CK_BBOOL sensitive = CK_FALSE;
  CK_BBOOL extractable = CK_TRUE;
  CK_BBOOL never_extractable = CK_FALSE;
  CK_BBOOL always_sensitive = CK_FALSE;
  CK_ATTRIBUTE attrs[] = {{CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
                          {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
                          {CKA_NEVER_EXTRACTABLE, &never_extractable, sizeof(never_extractable)},
                          {CKA_ALWAYS_SENSITIVE, &always_sensitive, sizeof(always_sensitive)}};
  {
    Module::Call call(*module_);
    if (!call.initialized() || call.generation() != session.generation()) {
      *rv = CKR_SESSION_HANDLE_INVALID;
      return CkrStatus(*rv, "partition '" + options_.name + "': C_GetAttributeValue");
    }
    *rv = module_->fn()->C_GetAttributeValue(session.handle(), key, attrs, 4);
  }
  // CKR_ATTRIBUTE_TYPE_INVALID still fills the attributes the token has (PKCS#11 2.40 §5.7);
  // the missing ones keep their unsafe defaults, so a token that cannot say is refused.
  if (*rv != CKR_OK && *rv != CKR_ATTRIBUTE_TYPE_INVALID && *rv != CKR_ATTRIBUTE_SENSITIVE) {
    return CkrStatus(*rv, "partition '" + options_.name + "': C_GetAttributeValue");
  }
  auto value = [&](int i, bool unsafe) {
    return attrs[i].ulValueLen == sizeof(CK_BBOOL)
               ? *static_cast<const CK_BBOOL*>(attrs[i].pValue) == CK_TRUE
               : unsafe;
  };
  *rv = CKR_OK;
  KeyProtection kp;
  kp.sensitive = value(0, false);
  kp.extractable = value(1, true);
  kp.never_extractable = value(2, false);
  kp.always_sensitive = value(3, false);
  return kp;
}

void Partition::ForgetKeyHandle(std::size_t key_index) {
  MutexLock lock(mu_);
  handles_[key_index] = {};
}

SignResult Partition::Sign(Session& session, CK_OBJECT_HANDLE key, CK_MECHANISM* mechanism,
                           ByteSpan input, std::size_t max_len) {
  SignResult out;
  Module::Call call(*module_);
  if (!call.initialized()) {
    out.rv = CKR_CRYPTOKI_NOT_INITIALIZED;
    return out;
  }
  if (call.generation() != session.generation()) {
    out.rv = CKR_SESSION_HANDLE_INVALID;
    return out;
  }
  CK_FUNCTION_LIST* fn = module_->fn();
  out.rv = fn->C_SignInit(session.handle(), mechanism, key);
  if (out.rv != CKR_OK) {
    out.at_init = true;
    return out;
  }
  Bytes data(input.begin(), input.end());
  out.signature.resize(max_len);
  auto len = static_cast<CK_ULONG>(max_len);
  QSEAL_CRASH_POINT("hsm.before_sign");
  out.rv = fn->C_Sign(session.handle(), data.data(), static_cast<CK_ULONG>(data.size()),
                      out.signature.data(), &len);
  if (out.rv == CKR_BUFFER_TOO_SMALL) {
    out.signature.resize(len);
    out.rv = fn->C_Sign(session.handle(), data.data(), static_cast<CK_ULONG>(data.size()),
                        out.signature.data(), &len);
  }
  if (out.rv == CKR_OK) {
    out.signature.resize(len);
  } else {
    out.signature.clear();
  }
  return out;
}

Verdict VerdictFor(CK_RV rv) {
  switch (Classify(rv)) {
    case CkrClass::kSession:
      return Verdict::kSession;
    case CkrClass::kNotLoggedIn:
    case CkrClass::kDevice:
      return Verdict::kDown;
    case CkrClass::kPin:
      return Verdict::kDisabled;
    case CkrClass::kRequest:
      return Verdict::kRequest;
    case CkrClass::kOk:
    case CkrClass::kObject:
    case CkrClass::kOther:
      return Verdict::kRetry;
  }
  return Verdict::kRetry;
}

SignOutcome SignOne(Partition& part, Session& session, const SigningKey& key,
                    SignatureScheme scheme, DigestAlgorithm digest, ByteSpan digest_value,
                    bool verify) {
  SignOutcome out;
  auto fail = [&](CK_RV rv, Status s) {
    out.rv = rv;
    out.status = std::move(s);
    out.verdict = VerdictFor(rv);
    return out;
  };

  CK_RV rv = CKR_OK;
  // Opens `session`; false (the outcome filled in) when it cannot be opened.
  auto open = [&] {
    auto opened = part.Open(&rv);
    if (!opened.ok()) {
      if (rv == CKR_OK) rv = CKR_GENERAL_ERROR;
      fail(rv, opened.status());
      // A session that cannot be opened is a device problem unless the module said otherwise.
      if (out.verdict == Verdict::kSession || out.verdict == Verdict::kRetry) {
        out.verdict = Verdict::kSession;
      }
      return false;
    }
    session = std::move(*opened);
    out.reopened = true;
    return true;
  };
  if (session.open() && session.generation() != part.module().generation()) session.Drop();
  if (!session.open() && !open()) return out;
  // A reused session failing its first call with a session error was dropped while it sat idle
  // (an HSM idle timeout such as Utimaco's AppTimeout): nothing of this request reached the HSM,
  // so it is signed on a new session without spending an attempt or counting against the
  // partition. Once: a session that dies again is the ladder's.
  bool may_recover_stale = !out.reopened;
  auto recover_stale = [&](CK_RV failed) {
    may_recover_stale = false;
    if (Classify(failed) != CkrClass::kSession) return false;
    session.Close();
    if (!open()) return false;
    ++out.stale_session_retries;
    out.recovered.push_back(failed);
    return true;
  };

  Bytes input;
  CK_MECHANISM mech{};
  CK_RSA_PKCS_PSS_PARAMS pss{};
  switch (scheme) {
    case SignatureScheme::kEcdsa:
      mech.mechanism = CKM_ECDSA;
      input.assign(digest_value.begin(), digest_value.end());
      break;
    case SignatureScheme::kRsaPkcs1v15:
      mech.mechanism = CKM_RSA_PKCS;
      input = DigestInfo(digest, digest_value);
      break;
    case SignatureScheme::kRsaPss:
      mech.mechanism = CKM_RSA_PKCS_PSS;
      pss.hashAlg = digest == DigestAlgorithm::kSha256   ? CKM_SHA256
                    : digest == DigestAlgorithm::kSha384 ? CKM_SHA384
                                                         : CKM_SHA512;
      pss.mgf = digest == DigestAlgorithm::kSha256   ? CKG_MGF1_SHA256
                : digest == DigestAlgorithm::kSha384 ? CKG_MGF1_SHA384
                                                     : CKG_MGF1_SHA512;
      pss.sLen = DigestSize(digest);
      mech.pParameter = &pss;
      mech.ulParameterLen = sizeof(pss);
      input.assign(digest_value.begin(), digest_value.end());
      break;
  }

  bool relogged = false;
  bool refound = false;
  int device_retries_left = part.options().device_error_retries;
  for (;;) {
    CK_KEY_TYPE token_key_type = CKK_VENDOR_DEFINED;
    auto handle = part.KeyHandle(session, key.index, &rv, &token_key_type);
    if (!handle.ok() && may_recover_stale && rv != CKR_OK) {
      if (recover_stale(rv)) continue;
      if (out.verdict != Verdict::kOk) return out;  // the new session did not open
    }
    if (!handle.ok()) {
      if (rv == CKR_OK && handle.status().code() == StatusCode::kNotFound && !relogged) {
        // Private objects are invisible when the token is logged out: log in once, look again.
        relogged = true;
        if (part.Relogin(session, &rv).ok()) continue;
        return fail(rv, handle.status());
      }
      if (rv == CKR_OK) {
        out.verdict = Verdict::kDisabled;
        out.status = handle.status();
        return out;
      }
      return fail(rv, handle.status());
    }
    const CK_KEY_TYPE want = key.type == KeyType::kRsa ? CKK_RSA : CKK_EC;
    if (token_key_type != CKK_VENDOR_DEFINED && token_key_type != want) {
      out.verdict = Verdict::kQuarantine;
      out.status =
          FailedPreconditionError("partition '" + part.name() + "': the token's key is " +
                                  (token_key_type == CKK_RSA  ? "RSA"
                                   : token_key_type == CKK_EC ? "EC"
                                                              : "of another type") +
                                  ", the certificate's is " + (want == CKK_RSA ? "RSA" : "EC"));
      return out;
    }
    SignResult r = part.Sign(session, *handle, &mech, input, key.raw_signature_size);
    CkrClass cls = Classify(r.rv);
    if (r.at_init && may_recover_stale) {
      if (recover_stale(r.rv)) continue;
      if (out.verdict != Verdict::kOk) return out;
    }
    may_recover_stale = false;
    if (cls == CkrClass::kDevice && device_retries_left > 0) {
      // A load-shared slot (nShield) fails some calls while one of its modules is failing; the
      // next call may land on a healthy one.
      --device_retries_left;
      ++out.device_error_retries;
      out.recovered.push_back(r.rv);
      continue;
    }
    if (cls == CkrClass::kNotLoggedIn && !relogged) {
      relogged = true;
      if (part.Relogin(session, &rv).ok()) continue;
      return fail(rv, CkrStatus(rv, "partition '" + part.name() + "': C_Login"));
    }
    if (cls == CkrClass::kObject && !refound) {
      refound = true;
      part.ForgetKeyHandle(key.index);
      continue;
    }
    if (cls != CkrClass::kOk) {
      if (cls == CkrClass::kSession)
        session.Close();  // best effort: frees it if the module still knows it
      return fail(r.rv, CkrStatus(r.rv, "partition '" + part.name() + "': C_Sign"));
    }
    out.signature = std::move(r.signature);
    break;
  }
  if (scheme == SignatureScheme::kEcdsa) {
    auto der = EcdsaRawToDer(out.signature);
    if (!der.ok()) {
      out.verdict = Verdict::kQuarantine;
      out.status = UnavailableError("partition '" + part.name() +
                                    "': malformed ECDSA signature from C_Sign");
      return out;
    }
    out.signature = std::move(*der);
  }
  QSEAL_CRASH_POINT("hsm.signed_before_verify");
  if (verify && !key.verifier->Verify(scheme, digest, digest_value, out.signature)) {
    out.verdict = Verdict::kQuarantine;
    out.status = UnavailableError("partition '" + part.name() +
                                  "': signature failed verification with the certificate of key '" +
                                  key.name + "'");
    out.signature.clear();
    return out;
  }
  out.verdict = Verdict::kOk;
  return out;
}

}  // namespace qseal::hsm::detail
