// Where qsealctl finds the server, the API token and the test CA, so that it works with no flags
// after scripts/start.
//
// Order (first found wins):
//   server:  --server, $QSEAL_SERVER, $QSEAL_API_ADDR, https://127.0.0.1:8440; an address
//            without a scheme is taken as https:// (the embedded default serves TLS); give
//            http://host:port for a plaintext server
//   TLS:     --ca, $QSEAL_CA, <var>/pki/ca.pem when it exists (the server's trust anchor);
//            --cert/--key, $QSEAL_CERT/$QSEAL_KEY (client certificate for mTLS)
//   token:   --token-file FILE, $QSEAL_TOKEN (the token itself), <var>/api-token
//   var dir: $QSEAL_VAR, ./var when it holds api-token, <dir of the executable>/../../var and
//            /../var when they hold api-token, else ./var
//   CA:      --ca, <var>/pki/ca.pem (verify's default trust anchor)
//
// Pure functions of their inputs (the environment and file system are passed in or read
// explicitly); thread-safe.
#pragma once

#include <functional>
#include <string>

#include "cli/http_client.h"
#include "common/status.h"

namespace qseal::cli {

struct ConnectionFlags {
  std::string server;      // --server, "" when not given
  std::string token_file;  // --token-file, "" when not given
  std::string ca;          // --ca, "" when not given
  std::string cert;        // --cert, "" when not given
  std::string key;         // --key, "" when not given
};

struct Endpoint {
  std::string server;        // host:port
  std::string token;         // "" when none was found
  std::string token_source;  // where the token came from, for error messages ("" when none)
  std::string var_dir;       // the embedded default's directory
  TlsClientFiles tls;        // for an https:// server
};

// Returns the value of an environment variable or "" (injectable for tests).
using EnvFn = std::function<std::string(const std::string& name)>;
EnvFn ProcessEnv();

// The embedded default's directory; `exe_path` is the running binary (for the build-tree guess).
std::string ResolveVarDir(const EnvFn& env, const std::string& exe_path);

// Resolves server and token. kNotFound (exit 74) when --token-file names an unreadable file.
Result<Endpoint> ResolveEndpoint(const ConnectionFlags& flags, const EnvFn& env,
                                 const std::string& exe_path);

// The first line of a file without trailing whitespace; kNotFound when it cannot be read.
Result<std::string> ReadTrimmedFile(const std::string& path);

}  // namespace qseal::cli
