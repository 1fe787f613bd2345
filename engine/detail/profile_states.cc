#include "engine/detail/profile_states.h"

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

namespace qseal::engine::detail {
namespace {

// Bytes a PDF keeps free for a signature time-stamp token: a token with a TSA chain of three
// RSA-4096 certificates is about 7 KiB; more than this fails the document with the reason.
constexpr std::size_t kTimestampReserveBytes = 16 << 10;

}  // namespace

Result<std::vector<ProfileState>> MakeProfileStates(const hsm::Signer& signer,
                                                    const std::vector<Profile>& profiles) {
  std::vector<ProfileState> states;
  for (const Profile& p : profiles) {
    Result<hsm::KeyInfo> key = signer.GetKey(p.key);
    if (!key.ok())
      return InvalidArgumentError("profile \"" + p.name + "\": " + key.status().message());
    formats::FormatOptions format_options;
    format_options.certificate_chain_der = key->certificate_chain_der;
    format_options.digest = p.digest;
    format_options.scheme = p.scheme;
    format_options.c14n = p.c14n;
    // PAdES B-T: room in /Contents for the token (a TSA's token with its certificates).
    if (p.timestamps != nullptr) format_options.timestamp_reserve_bytes = kTimestampReserveBytes;
    Result<std::unique_ptr<const formats::Format>> format =
        formats::CreateFormat(p.format, format_options);
    if (!format.ok())
      return InvalidArgumentError("profile \"" + p.name + "\": " + format.status().message());
    if (p.timestamps != nullptr && !(*format)->has_timestamps()) {
      return InvalidArgumentError("profile \"" + p.name + "\": " + p.format +
                                  " seals have no signature time-stamp (B-T) yet");
    }
    if (p.revocation != nullptr && (p.timestamps == nullptr || !(*format)->has_validation_data())) {
      return InvalidArgumentError(
          "profile \"" + p.name + "\": " + p.format +
          " seals cannot be B-LT (it needs a time-stamp and a format that embeds validation data)");
    }
    ProfileState s;
    s.profile = p;
    s.format = std::move(*format);
    states.push_back(std::move(s));
  }
  return states;
}

}  // namespace qseal::engine::detail
