// The semantic checks of a parsed configuration (daemon/config.h's LoadConfig and ParseConfig
// call it after reading the TOML): references between sections, ranges that depend on each other,
// secrets given inline, names defined twice. Not a public interface.
#pragma once

#include <string>
#include <vector>

#include "daemon/config.h"

namespace qseal::daemon {

// Appends one "ORIGIN: what is wrong" line per problem to `errors`.
void ValidateConfig(const Config& c, const std::string& origin, std::vector<std::string>* errors);

}  // namespace qseal::daemon
