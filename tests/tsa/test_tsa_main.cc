// qseal-test-tsa: the tests' loopback TSA (tests/tsa/test_tsa.h) as a process, for the embedded
// default's b-t profile (scripts/start). Not a TSA for production: its key is a file made here,
// its clock is the host's, and it keeps no log of what it stamped.
//
//   qseal-test-tsa --dir DIR [--port 8441] [--delay-ms 0]
//
// DIR keeps the TSA's certificates (ca.pem is the trust anchor qseald is given); they are made on
// the first run and again when tsa.pem expires within a day. Runs until SIGINT or SIGTERM.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include "tests/testing/testing.h"
#include "tests/tsa/test_tsa.h"

namespace {

bool UsablePki(const qseal::testing::TsaPki& pki) {
  for (const std::string& f : {pki.ca_pem, pki.tsa_pem, pki.tsa_key, pki.noncritical_pem,
                               pki.rogue_pem, pki.rogue_key, pki.tls_pem, pki.tls_key}) {
    if (!std::filesystem::exists(f)) return false;
  }
  const std::string check = "openssl x509 -noout -checkend 86400 -in " +
                            qseal::testing::ShellQuote(pki.tsa_pem) + " >/dev/null 2>&1";
  return std::system(check.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qseal-test-tsa: a loopback RFC 3161 TSA for trying b-t profiles (not production)"};
  std::string dir;
  int port = 8441;
  int delay_ms = 0;
  app.add_option("--dir", dir, "where the TSA's certificates live")->required();
  app.add_option("--port", port, "port on 127.0.0.1")->check(CLI::Range(1, 65535));
  app.add_option("--delay-ms", delay_ms, "latency added to each answer")
      ->check(CLI::Range(0, 60000));
  CLI11_PARSE(app, argc, argv);

  // Block the stop signals before any thread starts so that only sigwait below receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  std::filesystem::create_directories(dir);
  qseal::testing::TsaPki pki = qseal::testing::TsaPkiPaths(dir);
  if (!UsablePki(pki)) {
    qseal::Result<qseal::testing::TsaPki> made = qseal::testing::MakeTsaPki(dir);
    if (!made.ok()) {
      std::fprintf(stderr, "qseal-test-tsa: %s\n", made.status().ToString().c_str());
      return 1;
    }
    pki = *made;
  }

  qseal::testing::TestTsa tsa(pki);
  tsa.SetDelay(std::chrono::milliseconds(delay_ms));
  if (qseal::Status s = tsa.Start(port); !s.ok()) {
    std::fprintf(stderr, "qseal-test-tsa: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("qseal-test-tsa: serving %s (trust anchor %s)\n", tsa.url().c_str(),
              pki.ca_pem.c_str());
  std::fflush(stdout);
  int signal = 0;
  sigwait(&stop, &signal);
  tsa.Stop();
  std::printf("qseal-test-tsa: stopped after %d requests\n", tsa.requests());
  return 0;
}
