#include "daemon/checkpoint_signer.h"

#include <future>
#include <memory>
#include <utility>

namespace qseal::daemon {

std::function<Result<Bytes>(ByteSpan sha256)> CheckpointSigner(hsm::Signer& signer,
                                                               std::string key) {
  return [&signer, key = std::move(key)](ByteSpan sha256) -> Result<Bytes> {
    // Shared with the callback, which may run after a timed-out wait has returned.
    auto promise = std::make_shared<std::promise<Result<Bytes>>>();
    std::future<Result<Bytes>> signature = promise->get_future();
    hsm::SignRequest request;
    request.key = key;
    request.scheme = SignatureScheme::kEcdsa;
    request.digest = DigestAlgorithm::kSha256;
    request.digest_value.assign(sha256.begin(), sha256.end());
    const auto deadline = std::chrono::steady_clock::now() + kCheckpointSignWait;
    QSEAL_RETURN_IF_ERROR(signer.Submit(
        std::move(request), [promise](Result<Bytes> sig) { promise->set_value(std::move(sig)); },
        deadline));
    if (signature.wait_until(deadline) != std::future_status::ready) {
      return UnavailableError("the HSM did not sign the audit checkpoint within " +
                              std::to_string(kCheckpointSignWait.count()) + " s");
    }
    return signature.get();
  };
}

}  // namespace qseal::daemon
