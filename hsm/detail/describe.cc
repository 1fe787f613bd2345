// Partition::Describe: what a partition's module and token say about themselves, for the startup
// report (Signer::StartupReport, qseald --probe-hsm). Only ever called by Signer::Create, before
// any session thread runs; every call is under a Module::Call like the signing calls.
#include <cstdio>
#include <string>
#include <utility>

#include "hsm/detail/partition.h"

namespace qseal::hsm::detail {
namespace {

std::string VersionText(const CK_VERSION& v) {
  return std::to_string(v.major) + "." + std::to_string(v.minor);
}

}  // namespace

Result<CK_SLOT_ID> Partition::CurrentSlot(std::uint64_t generation, CK_RV* rv) {
  {
    MutexLock lock(mu_);
    if (slot_generation_ == generation) return slot_;
  }
  QSEAL_RETURN_IF_ERROR(FindSlot(generation, rv));
  MutexLock lock(mu_);
  return slot_;
}

void Partition::Describe(PartitionReport* report) {
  report->module_path = module_->path();
  Module::Call call(*module_);
  if (!call.initialized()) return;
  CK_FUNCTION_LIST* fn = module_->fn();
  CK_INFO info{};
  if (fn->C_GetInfo(&info) == CKR_OK) {
    report->library_manufacturer = PaddedField(info.manufacturerID, sizeof(info.manufacturerID));
    report->library_description =
        PaddedField(info.libraryDescription, sizeof(info.libraryDescription));
    report->library_version = VersionText(info.libraryVersion);
    report->cryptoki_version = VersionText(info.cryptokiVersion);
  }
  CK_RV rv = CKR_OK;
  auto slot = CurrentSlot(call.generation(), &rv);
  if (!slot.ok()) return;
  CK_TOKEN_INFO token{};
  if (fn->C_GetTokenInfo(*slot, &token) == CKR_OK) {
    report->token_label = PaddedField(token.label, sizeof(token.label));
    report->token_manufacturer = PaddedField(token.manufacturerID, sizeof(token.manufacturerID));
    report->token_model = PaddedField(token.model, sizeof(token.model));
    report->token_serial = PaddedField(token.serialNumber, sizeof(token.serialNumber));
    report->hardware_version = VersionText(token.hardwareVersion);
    report->firmware_version = VersionText(token.firmwareVersion);
    static const std::pair<CK_FLAGS, const char*> kFlags[] = {
        {CKF_RNG, "CKF_RNG"},
        {CKF_WRITE_PROTECTED, "CKF_WRITE_PROTECTED"},
        {CKF_LOGIN_REQUIRED, "CKF_LOGIN_REQUIRED"},
        {CKF_USER_PIN_INITIALIZED, "CKF_USER_PIN_INITIALIZED"},
        {CKF_CLOCK_ON_TOKEN, "CKF_CLOCK_ON_TOKEN"},
        {CKF_PROTECTED_AUTHENTICATION_PATH, "CKF_PROTECTED_AUTHENTICATION_PATH"},
        {CKF_TOKEN_INITIALIZED, "CKF_TOKEN_INITIALIZED"},
        {CKF_USER_PIN_COUNT_LOW, "CKF_USER_PIN_COUNT_LOW"},
        {CKF_USER_PIN_FINAL_TRY, "CKF_USER_PIN_FINAL_TRY"},
        {CKF_USER_PIN_LOCKED, "CKF_USER_PIN_LOCKED"},
        {CKF_USER_PIN_TO_BE_CHANGED, "CKF_USER_PIN_TO_BE_CHANGED"},
        {CKF_SO_PIN_LOCKED, "CKF_SO_PIN_LOCKED"},
    };
    for (const auto& [flag, name] : kFlags) {
      if ((token.flags & flag) != 0) report->token_flags.emplace_back(name);
    }
  }
  static const std::pair<CK_MECHANISM_TYPE, const char*> kMechanisms[] = {
      {CKM_ECDSA, "CKM_ECDSA"},
      {CKM_RSA_PKCS, "CKM_RSA_PKCS"},
      {CKM_RSA_PKCS_PSS, "CKM_RSA_PKCS_PSS"}};
  for (const auto& [mechanism, name] : kMechanisms) {
    CK_MECHANISM_INFO mi{};
    if (fn->C_GetMechanismInfo(*slot, mechanism, &mi) != CKR_OK || (mi.flags & CKF_SIGN) == 0) {
      continue;
    }
    report->sign_mechanisms.push_back(std::string(name) + " (" + std::to_string(mi.ulMinKeySize) +
                                      ".." + std::to_string(mi.ulMaxKeySize) + " bits)");
  }
}

}  // namespace qseal::hsm::detail
