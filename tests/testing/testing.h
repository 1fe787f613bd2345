// Test helpers shared by every test folder: temp dirs, running commands (openssl, pkcs11-tool),
// and SoftHSM2 tokens provisioned by scripts/provision-softhsm.
//
// Test-only code; thread-compatible.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace qseal::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string Sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;  // -1 when the command could not be run or was killed by a signal.
  std::string output;  // stdout and stderr, interleaved.
};

// Runs `command` through /bin/sh -c, capturing stdout+stderr.
CommandResult RunCommand(const std::string& command);

// A TCP port on 127.0.0.1 that was free a moment ago (bound and released), 0 if none; for a
// server the test starts right after (e.g. one that cannot report the port it picked for :0).
int FreeLoopbackPort();

// Single-quotes a string for /bin/sh.
std::string ShellQuote(const std::string& s);

void WriteFile(const std::string& path, const std::string& contents);
std::string ReadFile(const std::string& path);
// The names in a directory (no "." or ".."); empty when it cannot be read.
std::set<std::string> ListNames(const std::string& dir);
// Polls `done` every `poll` until it returns true or `timeout` passed; returns its last answer.
bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout,
             std::chrono::milliseconds poll = std::chrono::milliseconds(50));

// SoftHSM2 tokens made by scripts/provision-softhsm under one directory.
struct SoftHsm {
  std::string dir;     // the --dir given
  std::string conf;    // dir/softhsm2.conf (also exported as SOFTHSM2_CONF by Provision)
  std::string module;  // /usr/lib/softhsm/libsofthsm2.so
  std::string pin;     // the user PIN (also in dir/pin)
  std::string ca_pem;  // dir/pki/ca.pem

  std::string CertPem(const std::string& key_label) const {
    return dir + "/pki/" + key_label + ".pem";
  }
  std::string ChainPem(const std::string& key_label) const {
    return dir + "/pki/" + key_label + "-chain.pem";
  }
  std::string PinFile() const { return dir + "/pin"; }
};

// Provisions (idempotently) `tokens` holding one key of `key_type` ("ec-p256", "ec-p384",
// "rsa-3072", "rsa-2048") labelled `key_label`, and sets SOFTHSM2_CONF for this process.
// Call again on the same dir with other tokens and another label to add a different key.
// `extra_args` go to scripts/provision-softhsm as they are (e.g. "--ocsp-url http://...").
Result<SoftHsm> ProvisionSoftHsm(const std::string& dir, const std::vector<std::string>& tokens,
                                 const std::string& key_type = "ec-p256",
                                 const std::string& key_label = "seal",
                                 const std::string& extra_args = "");

}  // namespace qseal::testing

namespace qseal::testing {

// A child process (fork + execv) whose stderr goes to a file, for daemon-level tests.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();  // Kills (SIGKILL) a child still running.
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts `argv[0]` with `argv`; `env` entries ("K=V") are added to this process's environment.
  Status Start(const std::vector<std::string>& argv, const std::string& stderr_path,
               const std::vector<std::string>& env = {});
  // Polls the stderr file until a line contains `needle`; returns that line, or "" on timeout or
  // when the child exits first.
  std::string WaitForLine(const std::string& needle, std::chrono::milliseconds timeout);
  void Signal(int sig) const;
  // Waits for exit; returns the exit code, 128+signal when killed, -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }
  int pid() const { return pid_; }
  std::string Stderr() const { return ReadFile(stderr_path_); }

 private:
  // Reaps the child if it has exited; true then (its code is kept for Wait).
  bool Exited();

  int pid_ = -1;
  int exit_code_ = -1;
  bool reaped_ = false;
  std::string stderr_path_;
};

}  // namespace qseal::testing
