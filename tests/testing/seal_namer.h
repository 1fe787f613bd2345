// A publish::SealNamer for publisher tests that need no certificate chain: it names seals as the
// engine does with the CAdES formats (formats/cades/cades_format.h): a record of profile
// "enveloping" or sealed as application/pkcs7-mime gets "<name>.p7m", profile "unnamed" has no
// format (kInvalidArgument), every other record gets "<name>.p7s". Stateless; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "publish/publisher.h"

namespace qseal::testing {

class CadesSealNamer : public publish::SealNamer {
 public:
  Result<std::string> SealName(const queue::Record& record,
                               std::string_view document_name) const override {
    if (record.profile == "unnamed") return InvalidArgumentError("no seal format for unnamed");
    bool enveloping =
        record.profile == "enveloping" || record.seal_media_type == "application/pkcs7-mime";
    return std::string(document_name) + (enveloping ? ".p7m" : ".p7s");
  }
  std::vector<std::string> SealNames(std::string_view document_name) const override {
    return {std::string(document_name) + ".p7s", std::string(document_name) + ".p7m"};
  }
};

}  // namespace qseal::testing
