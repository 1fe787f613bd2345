#include "tests/testing/qseald_harness.h"

#include <signal.h>

#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>
#include <stdlib.h>

namespace qseal::testing {

Qseald::Qseald(const std::string& dir, QsealdOptions options)
    : dir_(dir), var_(dir + "/var"), config_(dir + "/qseald.toml"), options_(std::move(options)) {}

Qseald::~Qseald() { Kill(); }

Status Qseald::Prepare() {
  if (prepared_) return Status::Ok();
  {
    std::filesystem::create_directories(var_);
    Result<SoftHsm> hsm = ProvisionSoftHsm(
        var_, {"qseal-p1", "qseal-p2"}, options_.key_type, "seal",
        options_.ocsp_url.empty() ? "" : "--ocsp-url " + ShellQuote(options_.ocsp_url));
    if (!hsm.ok()) return hsm.status();
    CommandResult tls = RunCommand(std::string(QSEAL_SOURCE_DIR) + "/scripts/provision-tls --dir " +
                                   ShellQuote(var_) + " --name server");
    if (tls.exit_code != 0) return UnavailableError("provision-tls: " + tls.output);
    CommandResult token = RunCommand("od -An -N32 -tx1 /dev/urandom | tr -d ' \\n'");
    token_ = token.output;
    WriteFile(var_ + "/api-token", token_);
    CommandResult hash =
        RunCommand("printf %s " + ShellQuote(token_) + " | sha256sum | cut -d' ' -f1");
    WriteFile(var_ + "/api-token.sha256", hash.output);
    std::string conf = ReadFile(std::string(QSEAL_SOURCE_DIR) + "/conf/qseald.toml");
    if (!options_.module.empty()) {
      std::string from = "module = \"/usr/lib/softhsm/libsofthsm2.so\"";
      for (std::size_t p = conf.find(from); p != std::string::npos; p = conf.find(from, p + 1)) {
        conf.replace(p, from.size(), "module = \"" + options_.module + "\"");
      }
    }
    if (options_.edit_config) options_.edit_config(conf);
    WriteFile(config_, conf);
  }
  prepared_ = true;
  return Status::Ok();
}

std::vector<std::string> Qseald::Environment() const {
  std::vector<std::string> env = {
      "QSEAL_VAR=" + var_, "QSEAL_API_ADDR=127.0.0.1:0", "QSEAL_METRICS_ADDR=127.0.0.1:0",
      "SOFTHSM2_CONF=" + var_ + "/softhsm2.conf",
      std::string("QSEAL_SCHEME=") +
          (options_.key_type.rfind("rsa", 0) == 0 ? "rsa-pss" : "ecdsa")};
  env.insert(env.end(), options_.extra_env.begin(), options_.extra_env.end());
  return env;
}

CommandResult Qseald::Run(const std::string& args) {
  std::string cmd = "env";
  for (const std::string& e : Environment()) cmd += " " + ShellQuote(e);
  cmd += " " + ShellQuote(std::string(QSEAL_BINARY_DIR) + "/daemon/qseald") + " --config " +
         ShellQuote(config_) + " " + args;
  return RunCommand(cmd);
}

Status Qseald::Start() {
  QSEAL_RETURN_IF_ERROR(Prepare());
  starts_++;
  std::vector<std::string> env = Environment();
  std::string log = dir_ + "/qseald." + std::to_string(starts_) + ".log";
  std::vector<std::string> argv = options_.wrapper;
  for (std::string a :
       {std::string(QSEAL_BINARY_DIR) + "/daemon/qseald", std::string("--config"), config_}) {
    argv.push_back(std::move(a));
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  QSEAL_RETURN_IF_ERROR(process_.Start(argv, log, env));
  std::string line = process_.WaitForLine("\"qseald started\"", options_.start_timeout);
  if (line.empty()) return UnavailableError("qseald did not start: " + process_.Stderr());
  nlohmann::json started = nlohmann::json::parse(line);
  api_ = started["api_url"];
  api_address_ = started["api"];
  metrics_ = started["metrics"];
  return Status::Ok();
}

int Qseald::Stop(std::chrono::milliseconds timeout) {
  process_.Signal(SIGTERM);
  return process_.Wait(timeout);
}

void Qseald::Kill() {
  if (!process_.running()) return;
  process_.Signal(SIGKILL);
  process_.Wait(std::chrono::seconds(30));
}

std::string Qseald::CliEnv() const {
  return "QSEAL_VAR=" + ShellQuote(var_) + " QSEAL_SERVER=" + ShellQuote(api_) + " ";
}

std::vector<std::string> OcspResponsesInSeal(const std::string& seal,
                                             const std::string& seal_path) {
  WriteFile(seal_path, seal);
  CommandResult parsed = RunCommand("openssl asn1parse -inform DER -in " + ShellQuote(seal_path));
  std::vector<std::string> out;
  std::istringstream lines(parsed.output);
  std::string line;
  bool next_is_response = false;
  while (std::getline(lines, line)) {
    if (next_is_response) {
      // "  off:d=N  hl=H l=  L cons: SEQUENCE": the element after the OID.
      std::size_t off = std::stoul(line);
      std::size_t hl = std::stoul(line.substr(line.find("hl=") + 3));
      std::size_t l = std::stoul(line.substr(line.find(" l=") + 3));
      if (off + hl + l <= seal.size()) out.push_back(seal.substr(off, hl + l));
      next_is_response = false;
    }
    if (line.find("OBJECT") != std::string::npos &&
        (line.find(":1.3.6.1.5.5.7.16.2") != std::string::npos ||
         line.find("id-ri-ocsp-response") != std::string::npos)) {
      next_is_response = true;
    }
  }
  return out;
}

std::string OpensslOcspCheck(const std::string& response, const std::string& ca_pem,
                             const std::string& cert_pem, const std::string& path) {
  WriteFile(path, response);
  CommandResult checked =
      RunCommand("openssl ocsp -respin " + ShellQuote(path) + " -issuer " + ShellQuote(ca_pem) +
                 " -cert " + ShellQuote(cert_pem) + " -CAfile " + ShellQuote(ca_pem));
  if (checked.exit_code == 0 && checked.output.find("Response verify OK") != std::string::npos &&
      checked.output.find(cert_pem + ": good") != std::string::npos) {
    return "";
  }
  return checked.output.empty() ? "no output" : checked.output;
}

Result<SealedPdf> SealPdfThroughApi(const Qseald& q, const std::string& profile,
                                    const std::string& pdf) {
  auto r = q.Client().Request("POST", "/v1/documents?profile=" + profile + "&wait=30", pdf,
                              {{"X-Filename", "invoice.pdf"}, {"Content-Type", "application/pdf"}});
  if (!r.ok()) return r.status();
  if (r->status != 200)
    return InternalError("submit: " + std::to_string(r->status) + " " + r->body);
  SealedPdf out;
  out.id = nlohmann::json::parse(r->body).value("id", "");
  auto seal = q.Client().Request("GET", "/v1/documents/" + out.id + "/seal");
  if (!seal.ok()) return seal.status();
  if (seal->status != 200) return InternalError("seal: " + std::to_string(seal->status));
  out.seal = std::move(seal->body);
  return out;
}

CommandResult XmlsecVerify(const std::string& seal_path, const std::string& ca_pem) {
  const std::string dir = std::filesystem::path(seal_path).parent_path().string();
  return RunCommand("cd " + ShellQuote(dir) + " && xmlsec1 --verify --trusted-pem " +
                    ShellQuote(ca_pem) + " --enabled-reference-uris empty,same-doc,local,remote " +
                    ShellQuote(seal_path) + " 2>&1");
}

CommandResult QsealctlVerify(const std::string& seal_path, const std::string& ca_pem) {
  return RunCommand(ShellQuote(std::string(QSEAL_BINARY_DIR) + "/cli/qsealctl") + " verify " +
                    ShellQuote(seal_path) + " --ca " + ShellQuote(ca_pem) + " 2>&1");
}

std::string OpensslVerify(const std::string& seal_path, const std::string& ca_pem,
                          const std::string& content_path, const std::string& out_path) {
  std::string cmd = "openssl cms -verify -binary -inform DER -in " + ShellQuote(seal_path) +
                    " -CAfile " + ShellQuote(ca_pem) + " -out " +
                    ShellQuote(out_path.empty() ? "/dev/null" : out_path);
  if (!content_path.empty()) cmd += " -content " + ShellQuote(content_path);
  CommandResult r = RunCommand(cmd);
  if (r.exit_code == 0 && r.output.find("Verification successful") != std::string::npos) return "";
  return r.output.empty() ? "openssl exit " + std::to_string(r.exit_code) : r.output;
}

int VerifyAgainstAny(const std::string& seal, const std::string& content, bool enveloping,
                     const std::vector<std::string>& cas, const std::string& base,
                     std::string* error) {
  WriteFile(base + ".seal", seal);
  WriteFile(base + ".doc", content);
  *error = "no CA";
  for (std::size_t c = 0; c < cas.size(); ++c) {
    *error = OpensslVerify(base + ".seal", cas[c], enveloping ? "" : base + ".doc",
                           enveloping ? base + ".out" : "");
    if (error->empty() && enveloping && ReadFile(base + ".out") != content) {
      *error = "enveloped content differs";
    }
    if (error->empty()) return static_cast<int>(c);
  }
  return -1;
}

}  // namespace qseal::testing
