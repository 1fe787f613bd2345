// The PKCS#11 headers as qseal uses them (p11-kit's copy of the OASIS header), plus the
// translation of CK_RV into qseal's Status and the recovery class of each return value.
// Implementation-only. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <p11-kit/pkcs11.h>

#include "common/status.h"

namespace qseal::hsm::detail {

// "CKR_DEVICE_ERROR", ...; "CKR_0x<hex>" for values without a name.
std::string CkrName(CK_RV rv);

// What the recovery ladder does with a return value (docs/hsm.md).
enum class CkrClass {
  kOk,
  kSession,      // the session is gone: close and re-open it, retry the request
  kNotLoggedIn,  // CKR_USER_NOT_LOGGED_IN: log in again once
  kObject,       // key handle stale: find the key again
  kDevice,       // device/token/module trouble: partition down, re-initialise, probe
  kPin,          // wrong or locked PIN: partition disabled, never retried
  kRequest,      // this request cannot be signed (bad data, mechanism): fail it, no retry
  kOther,        // anything else: retry elsewhere within max_attempts
};
CkrClass Classify(CK_RV rv);

// A Status carrying the CKR name: "context: CKR_DEVICE_ERROR". Code by class: kDevice/kSession/
// kOther -> kUnavailable, kPin -> kPermissionDenied, kRequest -> kInvalidArgument,
// kNotLoggedIn -> kUnauthenticated, kObject -> kNotFound.
Status CkrStatus(CK_RV rv, std::string_view context);

}  // namespace qseal::hsm::detail
