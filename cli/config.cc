#include "cli/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace qseal::cli {

namespace fs = std::filesystem;

EnvFn ProcessEnv() {
  return [](const std::string& name) {
    const char* v = std::getenv(name.c_str());
    return v == nullptr ? std::string() : std::string(v);
  };
}

Result<std::string> ReadTrimmedFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read " + path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

std::string ResolveVarDir(const EnvFn& env, const std::string& exe_path) {
  std::string v = env("QSEAL_VAR");
  if (!v.empty()) return v;
  std::error_code ec;
  if (fs::exists("var/api-token", ec)) return "var";
  if (!exe_path.empty()) {
    // build/cli/qsealctl and build/qsealctl next to the repository's var/.
    fs::path exe_dir = fs::path(exe_path).parent_path();
    for (const fs::path& candidate : {exe_dir / ".." / ".." / "var", exe_dir / ".." / "var"}) {
      if (fs::exists(candidate / "api-token", ec)) return candidate.lexically_normal().string();
    }
  }
  return "var";
}

Result<Endpoint> ResolveEndpoint(const ConnectionFlags& flags, const EnvFn& env,
                                 const std::string& exe_path) {
  Endpoint e;
  e.var_dir = ResolveVarDir(env, exe_path);
  e.server = flags.server;
  for (const char* name : {"QSEAL_SERVER", "QSEAL_API_ADDR"}) {
    if (e.server.empty()) e.server = env(name);
  }
  if (e.server.empty()) e.server = "https://127.0.0.1:8440";
  if (e.server.find("://") == std::string::npos) e.server = "https://" + e.server;
  e.tls.ca_file = flags.ca.empty() ? env("QSEAL_CA") : flags.ca;
  std::error_code ec;
  if (e.tls.ca_file.empty() && fs::exists(e.var_dir + "/pki/ca.pem", ec)) {
    e.tls.ca_file = e.var_dir + "/pki/ca.pem";
  }
  e.tls.cert_file = flags.cert.empty() ? env("QSEAL_CERT") : flags.cert;
  e.tls.key_file = flags.key.empty() ? env("QSEAL_KEY") : flags.key;

  if (!flags.token_file.empty()) {
    auto token = ReadTrimmedFile(flags.token_file);
    if (!token.ok()) return NotFoundError("--token-file: " + token.status().message());
    e.token = *token;
    e.token_source = flags.token_file;
  } else if (std::string t = env("QSEAL_TOKEN"); !t.empty()) {
    e.token = t;
    e.token_source = "$QSEAL_TOKEN";
  } else if (auto token = ReadTrimmedFile(e.var_dir + "/api-token"); token.ok()) {
    e.token = *token;
    e.token_source = e.var_dir + "/api-token";
  }
  return e;
}

}  // namespace qseal::cli
