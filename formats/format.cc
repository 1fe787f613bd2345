#include "formats/format.h"

#include <string>

#include "formats/cades/cades_format.h"
#include "formats/pades/pades_format.h"

namespace qseal::formats {

std::vector<std::string_view> FormatNames() {
  return {"cades-detached", "cades-enveloping", "pades"};
}

Result<std::unique_ptr<const Format>> CreateFormat(std::string_view name,
                                                   const FormatOptions& options) {
  if (name == "cades-detached")
    return cades::CreateCadesFormat(cades::Packaging::kDetached, options);
  if (name == "cades-enveloping") {
    return cades::CreateCadesFormat(cades::Packaging::kEnveloping, options);
  }
  if (name == "pades") return pades::CreatePadesFormat(options);
  std::string known;
  for (std::string_view n : FormatNames()) {
    if (!known.empty()) known += ", ";
    known += n;
  }
  return InvalidArgumentError("unknown seal format \"" + std::string(name) + "\" (known: " + known +
                              ")");
}

}  // namespace qseal::formats
