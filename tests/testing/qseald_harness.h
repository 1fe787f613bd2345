// Runs a real qseald for end-to-end tests: an embedded-default-like var/ directory (two SoftHSM2
// tokens holding one seal key, test CA, the API's TLS certificate, API token), a config derived
// from conf/qseald.toml, the daemon as a child process on free loopback ports, and an HTTPS
// client for its API (verifying the server against the test CA).
//
// Test-only; thread-compatible.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "cli/http_client.h"
#include "common/status.h"
#include "tests/testing/testing.h"

namespace qseal::testing {

struct QsealdOptions {
  std::string key_type = "ec-p256";
  // Given: the seal certificate names this OCSP responder (authorityInfoAccess), for B-LT.
  std::string ocsp_url = "";
  // Edits applied to the text of conf/qseald.toml before it is written (e.g. to change a limit).
  std::function<void(std::string& config)> edit_config;
  // Module for both partitions; empty: SoftHSM2 itself. Tests may pass a p11shim copy.
  std::string module;
  std::vector<std::string> extra_env;
  // Command put before qseald's argv (e.g. strace with fault injection); empty: none.
  std::vector<std::string> wrapper = {};
  // Arguments after `--config <config>` (e.g. "--new-audit-key"); empty: none.
  std::vector<std::string> extra_args = {};
  // How long Start() waits for "qseald started" (a big queue takes a while to load).
  std::chrono::seconds start_timeout{60};
};

class Qseald {
 public:
  explicit Qseald(const std::string& dir, QsealdOptions options = {});
  ~Qseald();

  // Provisions (first time), writes the config and starts the daemon; waits for "qseald started".
  Status Start();
  // Only the first part of Start: provisions the tokens and writes the config (once).
  Status Prepare();
  // Runs qseald to its end with `--config <config> <args>` in the environment Start uses
  // (after Prepare), e.g. "--probe-hsm"; stdout and stderr together in the output.
  CommandResult Run(const std::string& args);
  // SIGTERM and wait: returns the exit code (or -1 on timeout).
  int Stop(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // SIGKILL and reap.
  void Kill();

  // A client of the API with the default token (or `token`, "" for none) and the test CA.
  cli::HttpClient Client() const { return Client(token_); }
  cli::HttpClient Client(const std::string& token,
                         std::chrono::milliseconds timeout = std::chrono::seconds(120)) const {
    return cli::HttpClient(api_, token, timeout, tls());
  }
  // What a client needs for the API's TLS: the test CA (add cert_file/key_file for mTLS).
  cli::TlsClientFiles tls() const { return {.ca_file = ca_pem(), .cert_file = "", .key_file = ""}; }
  // The API's URL: "https://127.0.0.1:PORT" (or "http://..." when the config turned TLS off).
  const std::string& api() const { return api_; }
  // host:port of the API, for raw connections.
  const std::string& api_address() const { return api_address_; }
  // The metrics listener (host:port) of the last Start().
  const std::string& metrics() const { return metrics_; }
  const std::string& token() const { return token_; }
  const std::string& var() const { return var_; }
  const std::string& config_path() const { return config_; }
  std::string ca_pem() const { return var_ + "/pki/ca.pem"; }
  std::string watch_root() const { return var_ + "/watch"; }
  std::string Stderr() const { return process_.Stderr(); }
  // Environment for running qsealctl against this daemon.
  std::string CliEnv() const;
  ChildProcess& process() { return process_; }
  // The options used by the next Start (e.g. to change extra_env between restarts).
  QsealdOptions& options() { return options_; }

 private:
  std::string dir_;
  std::string var_;
  std::string config_;
  QsealdOptions options_;
  ChildProcess process_;
  std::string api_;
  std::string api_address_;
  std::string metrics_;
  std::string token_;
  int starts_ = 0;
  bool prepared_ = false;

  std::vector<std::string> Environment() const;
};

// Submits the PDF `pdf` to `profile` with ?wait=30 (200 expected) and fetches its seal: the id
// and the sealed PDF, or why not.
struct SealedPdf {
  std::string id;
  std::string seal;
};
Result<SealedPdf> SealPdfThroughApi(const Qseald& q, const std::string& profile,
                                    const std::string& pdf);

// `xmlsec1 --verify` of the XML seal at `seal_path` against `ca_pem`, run in the seal's directory:
// a detached seal's relative Reference URI names the document beside it (xmlsec1 counts it as
// "remote", so that type is enabled).
CommandResult XmlsecVerify(const std::string& seal_path, const std::string& ca_pem);

// `qsealctl verify` (this build's) of the seal at `seal_path` against `ca_pem`: qseal's own
// verifier, stderr included in the output.
CommandResult QsealctlVerify(const std::string& seal_path, const std::string& ca_pem);

// `openssl cms -verify -binary` of a DER seal against `ca_pem`; with `content` for detached seals,
// and `out` receiving the encapsulated content for enveloping ones. Returns openssl's output on
// failure, "" on success.
std::string OpensslVerify(const std::string& seal_path, const std::string& ca_pem,
                          const std::string& content_path, const std::string& out_path = "");

// B-LT: the OCSP responses inside a DER CMS seal (each otherRevInfo of id-ri-ocsp-response),
// located by `openssl asn1parse` on the seal written to `seal_path` (not by qseal's code).
std::vector<std::string> OcspResponsesInSeal(const std::string& seal, const std::string& seal_path);

// `openssl ocsp -respin` of `response` (written to `path`): it must verify against `ca_pem` and
// say "good" for `cert_pem`, issued by `ca_pem`. "" when it does, else openssl's output.
std::string OpensslOcspCheck(const std::string& response, const std::string& ca_pem,
                             const std::string& cert_pem, const std::string& path);

// Checks a broker result's seal (DER bytes) of `content` with OpensslVerify against each of `cas`
// in turn (a detached seal with the content beside it; an enveloping one must carry exactly
// `content`), through files `<base>.seal`, `.doc` and `.out`. Returns the index of the first CA it
// verifies against, or -1 with openssl's complaint (or what differs) in *error.
int VerifyAgainstAny(const std::string& seal, const std::string& content, bool enveloping,
                     const std::vector<std::string>& cas, const std::string& base,
                     std::string* error);

}  // namespace qseal::testing
