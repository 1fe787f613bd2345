// Test-only PKCS#11 signer: C_Sign on a SoftHSM2 key, straight through the module's function
// list (formats tests must not depend on hsm/). Produces what the hsm layer hands to formats:
// RSASSA-PKCS1-v1_5 over a DigestInfo, RSASSA-PSS over the digest, ECDSA as DER.
//
// The first instance in a process initialises the module and finalises it when destroyed: destroy
// it last. Not thread-safe; owned by one test.
#pragma once

#include <memory>
#include <string>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"

namespace qseal::formats::testing {

class P11TestSigner {
 public:
  // Loads `module` (dlopen), initialises it, logs in to the token labelled `token_label` with
  // `pin` and finds the private key labelled `key_label`.
  static Result<std::unique_ptr<P11TestSigner>> Open(const std::string& module,
                                                     const std::string& token_label,
                                                     const std::string& pin,
                                                     const std::string& key_label);
  ~P11TestSigner();
  P11TestSigner(const P11TestSigner&) = delete;
  P11TestSigner& operator=(const P11TestSigner&) = delete;

  // Signs the DTBS/R `digest` (computed with `algorithm`) under `scheme`.
  Result<Bytes> Sign(ByteSpan digest, DigestAlgorithm algorithm, SignatureScheme scheme);

  struct State;

 private:
  explicit P11TestSigner(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace qseal::formats::testing
