// Process exit codes of qseald and qsealctl (contract, DESIGN.md §5; sysexits.h values).
#pragma once

#include "common/status.h"

namespace qseal {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,       // anything not covered below
  kExitUsage = 64,        // wrong command line
  kExitDataErr = 65,      // bad input document or seal
  kExitUnavailable = 69,  // HSM (or server) unavailable
  kExitIoErr = 74,        // I/O error
  kExitConfig = 78,       // bad configuration
};

// The exit code a command-line tool uses for a failed Status.
inline int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
      return kExitDataErr;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kResourceExhausted:
      return kExitUnavailable;
    case StatusCode::kDataLoss:
      return kExitIoErr;
    default:
      return kExitFailure;
  }
}

}  // namespace qseal
