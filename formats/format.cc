#include "formats/format.h"

#include <string>

#include "formats/cades/cades_format.h"
#include "formats/xades/xades_format.h"

namespace qseal::formats {

std::vector<std::string_view> FormatNames() {
  return {"cades-detached", "cades-enveloping", "xades-enveloped", "xades-detached"};
}

Result<std::unique_ptr<const Format>> CreateFormat(std::string_view name,
                                                   const FormatOptions& options) {
  if (name == "cades-detached")
    return cades::CreateCadesFormat(cades::Packaging::kDetached, options);
  if (name == "cades-enveloping") {
    return cades::CreateCadesFormat(cades::Packaging::kEnveloping, options);
  }
  if (name == "xades-enveloped") {
    return xades::CreateXadesFormat(xades::Packaging::kEnveloped, options);
  }
  if (name == "xades-detached") {
    return xades::CreateXadesFormat(xades::Packaging::kDetached, options);
  }
  std::string known;
  for (std::string_view n : FormatNames()) {
    if (!known.empty()) known += ", ";
    known += n;
  }
  return InvalidArgumentError("unknown seal format \"" + std::string(name) + "\" (known: " + known +
                              ")");
}

}  // namespace qseal::formats
