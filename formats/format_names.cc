// FormatNames apart from CreateFormat: daemon/config.cc checks profile formats against it, and the
// config fuzzer (clang, tests/fuzz) compiles it without the format implementations and their
// libraries (qpdf's headers do not build with clang 14 and GCC 12's libstdc++).
#include "formats/format.h"

namespace qseal::formats {

std::vector<std::string_view> FormatNames() {
  return {"cades-detached", "cades-enveloping", "xades-enveloped", "xades-detached", "pades"};
}

}  // namespace qseal::formats
