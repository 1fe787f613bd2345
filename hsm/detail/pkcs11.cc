#include "hsm/detail/pkcs11.h"

#include <cstdio>

namespace qseal::hsm::detail {

std::string CkrName(CK_RV rv) {
  switch (rv) {
#define QSEAL_CKR(name) \
  case name:            \
    return #name;
    QSEAL_CKR(CKR_OK)
    QSEAL_CKR(CKR_CANCEL)
    QSEAL_CKR(CKR_HOST_MEMORY)
    QSEAL_CKR(CKR_SLOT_ID_INVALID)
    QSEAL_CKR(CKR_GENERAL_ERROR)
    QSEAL_CKR(CKR_FUNCTION_FAILED)
    QSEAL_CKR(CKR_ARGUMENTS_BAD)
    QSEAL_CKR(CKR_NO_EVENT)
    QSEAL_CKR(CKR_NEED_TO_CREATE_THREADS)
    QSEAL_CKR(CKR_CANT_LOCK)
    QSEAL_CKR(CKR_ATTRIBUTE_READ_ONLY)
    QSEAL_CKR(CKR_ATTRIBUTE_SENSITIVE)
    QSEAL_CKR(CKR_ATTRIBUTE_TYPE_INVALID)
    QSEAL_CKR(CKR_ATTRIBUTE_VALUE_INVALID)
    QSEAL_CKR(CKR_DATA_INVALID)
    QSEAL_CKR(CKR_DATA_LEN_RANGE)
    QSEAL_CKR(CKR_DEVICE_ERROR)
    QSEAL_CKR(CKR_DEVICE_MEMORY)
    QSEAL_CKR(CKR_DEVICE_REMOVED)
    QSEAL_CKR(CKR_FUNCTION_CANCELED)
    QSEAL_CKR(CKR_FUNCTION_NOT_PARALLEL)
    QSEAL_CKR(CKR_FUNCTION_NOT_SUPPORTED)
    QSEAL_CKR(CKR_KEY_HANDLE_INVALID)
    QSEAL_CKR(CKR_KEY_SIZE_RANGE)
    QSEAL_CKR(CKR_KEY_TYPE_INCONSISTENT)
    QSEAL_CKR(CKR_KEY_FUNCTION_NOT_PERMITTED)
    QSEAL_CKR(CKR_MECHANISM_INVALID)
    QSEAL_CKR(CKR_MECHANISM_PARAM_INVALID)
    QSEAL_CKR(CKR_OBJECT_HANDLE_INVALID)
    QSEAL_CKR(CKR_OPERATION_ACTIVE)
    QSEAL_CKR(CKR_OPERATION_NOT_INITIALIZED)
    QSEAL_CKR(CKR_PIN_INCORRECT)
    QSEAL_CKR(CKR_PIN_INVALID)
    QSEAL_CKR(CKR_PIN_LEN_RANGE)
    QSEAL_CKR(CKR_PIN_EXPIRED)
    QSEAL_CKR(CKR_PIN_LOCKED)
    QSEAL_CKR(CKR_SESSION_CLOSED)
    QSEAL_CKR(CKR_SESSION_COUNT)
    QSEAL_CKR(CKR_SESSION_HANDLE_INVALID)
    QSEAL_CKR(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
    QSEAL_CKR(CKR_SESSION_READ_ONLY)
    QSEAL_CKR(CKR_SESSION_EXISTS)
    QSEAL_CKR(CKR_TEMPLATE_INCOMPLETE)
    QSEAL_CKR(CKR_TEMPLATE_INCONSISTENT)
    QSEAL_CKR(CKR_TOKEN_NOT_PRESENT)
    QSEAL_CKR(CKR_TOKEN_NOT_RECOGNIZED)
    QSEAL_CKR(CKR_USER_ALREADY_LOGGED_IN)
    QSEAL_CKR(CKR_USER_NOT_LOGGED_IN)
    QSEAL_CKR(CKR_USER_PIN_NOT_INITIALIZED)
    QSEAL_CKR(CKR_USER_TYPE_INVALID)
    QSEAL_CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
    QSEAL_CKR(CKR_BUFFER_TOO_SMALL)
    QSEAL_CKR(CKR_CRYPTOKI_NOT_INITIALIZED)
    QSEAL_CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED)
#undef QSEAL_CKR
    default:
      break;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "CKR_0x%lx", rv);
  return buf;
}

CkrClass Classify(CK_RV rv) {
  switch (rv) {
    case CKR_OK:
      return CkrClass::kOk;
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_OPERATION_ACTIVE:
    case CKR_OPERATION_NOT_INITIALIZED:
      return CkrClass::kSession;
    case CKR_USER_NOT_LOGGED_IN:
      return CkrClass::kNotLoggedIn;
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
      return CkrClass::kObject;
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_MEMORY:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_GENERAL_ERROR:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_SLOT_ID_INVALID:
      return CkrClass::kDevice;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
    case CKR_USER_PIN_NOT_INITIALIZED:
      return CkrClass::kPin;
    case CKR_DATA_INVALID:
    case CKR_DATA_LEN_RANGE:
    case CKR_ARGUMENTS_BAD:
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_KEY_SIZE_RANGE:
      return CkrClass::kRequest;
    default:
      return CkrClass::kOther;
  }
}

Status CkrStatus(CK_RV rv, std::string_view context) {
  std::string message = std::string(context) + ": " + CkrName(rv);
  switch (Classify(rv)) {
    case CkrClass::kOk:
      return Status::Ok();
    case CkrClass::kPin:
      return PermissionDeniedError(std::move(message));
    case CkrClass::kRequest:
      return InvalidArgumentError(std::move(message));
    case CkrClass::kNotLoggedIn:
      return UnauthenticatedError(std::move(message));
    case CkrClass::kObject:
      return NotFoundError(std::move(message));
    case CkrClass::kSession:
    case CkrClass::kDevice:
    case CkrClass::kOther:
      break;
  }
  return UnavailableError(std::move(message));
}

}  // namespace qseal::hsm::detail
