// qsealctl: the command line for people. Finds the server and the API token with no flags after
// scripts/start (flags, then environment, then the embedded default's files; see cli/config.h).
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/audit_commands.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "common/exit_codes.h"

namespace {

std::string ExePath() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = qseal::cli;
  CLI::App app{"qsealctl: submit documents to qseald, follow them, fetch and verify seals"};
  app.require_subcommand(1);
  app.footer(
      "Server and token: --server / --token-file, else $QSEAL_SERVER or $QSEAL_API_ADDR and "
      "$QSEAL_TOKEN, else the embedded default ($QSEAL_VAR or ./var: api-token, pki/ca.pem, "
      "https://127.0.0.1:8440). An address without a scheme means https://.\nExit codes: 0 ok, 64 "
      "usage, 65 bad input, 69 server unavailable, "
      "74 I/O error.");
  cli::ConnectionFlags flags;
  app.add_option("--server", flags.server,
                 "qseald API: https://host:port (default), or http://host:port for plaintext");
  app.add_option("--token-file", flags.token_file, "file holding the API bearer token");
  app.add_option("--ca", flags.ca,
                 "trust anchors (PEM) for the server's TLS certificate ($QSEAL_CA, else "
                 "$QSEAL_VAR/pki/ca.pem)");
  app.add_option("--cert", flags.cert, "client certificate (PEM) for mTLS ($QSEAL_CERT)");
  app.add_option("--key", flags.key, "key (PEM) of --cert ($QSEAL_KEY; default: in --cert)");

  cli::SubmitOptions submit_opts;
  CLI::App* submit = app.add_subcommand("submit", "submit files (directories are recursed)");
  submit->add_option("paths", submit_opts.paths, "FILE or DIR ...")->required();
  submit->add_option("--profile", submit_opts.profile, "sealing profile")->capture_default_str();
  submit->add_flag("--wait", submit_opts.wait, "wait until each document is sealed or failed");
  submit->add_option("--out", submit_opts.out_dir,
                     "write each seal to DIR under the name the server gives it, e.g. <name>.p7s "
                     "(implies --wait)");
  submit->add_flag("--digest-only", submit_opts.digest_only,
                   "hash each file here and send only its digest (POST /v1/digests); the "
                   "profile must be cades-detached; writes the .p7s to --out (default: .)");
  submit->add_option("--concurrency", submit_opts.concurrency, "uploads in flight")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  int wait_timeout_s = 600;
  submit->add_option("--timeout", wait_timeout_s, "seconds to wait per document with --wait")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);

  std::string status_id;
  CLI::App* status = app.add_subcommand("status", "print a document's status (JSON)");
  status->add_option("id", status_id, "document id")->required();

  std::string fetch_id;
  std::string fetch_out;
  CLI::App* fetch = app.add_subcommand("fetch", "download a document's seal");
  fetch->add_option("id", fetch_id, "document id")->required();
  fetch->add_option("-o,--output", fetch_out, "write the seal to FILE (default: stdout)");

  cli::VerifyCommandOptions verify_opts;
  CLI::App* verify = app.add_subcommand("verify", "verify a seal offline and print each check");
  verify->add_option("seal", verify_opts.seal, "SEAL (.p7s or .p7m, DER or PEM)")->required();
  verify->add_option("--content", verify_opts.content,
                     "the sealed document of a detached seal (default: SEAL without .p7s)");
  verify->add_option("--ca", verify_opts.ca, "trust anchors, PEM (default: $QSEAL_VAR/pki/ca.pem)");

  CLI::App* health =
      app.add_subcommand("health", "ask qseald whether it is ready to seal (/readyz)");

  CLI::App* audit = app.add_subcommand("audit", "verify or show the audit trail (offline)");
  audit->require_subcommand(1);
  cli::AuditVerifyOptions audit_verify_opts;
  CLI::App* audit_verify =
      audit->add_subcommand("verify", "verify the chain, checkpoints and sequence");
  audit_verify->add_option("--dir", audit_verify_opts.dir, "audit directory ($QSEAL_VAR/audit)");
  audit_verify->add_option("--key", audit_verify_opts.key,
                           "checkpoint public key, PEM ($QSEAL_VAR/pki/"
                           "audit-checkpoint.pem.pub.pem)");
  audit_verify->add_option("--from", audit_verify_opts.from,
                           "start at the segment beginning at this seq (its header is trusted)");
  audit_verify->add_option("--expect-head", audit_verify_opts.expect_head,
                           "SEQ[:HASH] an earlier verify printed: the log must still reach it");
  cli::AuditShowOptions audit_show_opts;
  CLI::App* audit_show = audit->add_subcommand("show", "print records as JSON lines");
  audit_show->add_option("--dir", audit_show_opts.dir, "audit directory ($QSEAL_VAR/audit)");
  audit_show->add_option("--from", audit_show_opts.from, "start at the segment beginning at SEQ");
  audit_show->add_option("--id", audit_show_opts.id, "only records of this document id");
  audit_show->add_option("--since", audit_show_opts.since, "from this UTC time (RFC 3339 prefix)");
  audit_show->add_option("--until", audit_show_opts.until, "up to this UTC time (prefix)");
  audit_show
      ->add_option("--event", audit_show_opts.events,
                   "only these events (repeat or comma-separate)")
      ->delimiter(',');

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return e.get_exit_code() == 0 ? rc : qseal::kExitUsage;
  }

  std::string exe = ExePath();
  if (audit_verify->parsed()) {
    return cli::RunAuditVerify(audit_verify_opts, cli::ResolveVarDir(cli::ProcessEnv(), exe),
                               std::cout, std::cerr);
  }
  if (audit_show->parsed()) {
    return cli::RunAuditShow(audit_show_opts, cli::ResolveVarDir(cli::ProcessEnv(), exe), std::cout,
                             std::cerr);
  }
  if (verify->parsed()) {
    return cli::RunVerify(verify_opts, cli::ResolveVarDir(cli::ProcessEnv(), exe), std::cout,
                          std::cerr);
  }
  auto endpoint = cli::ResolveEndpoint(flags, cli::ProcessEnv(), exe);
  if (!endpoint.ok()) {
    std::cerr << "qsealctl: " << endpoint.status().message() << "\n";
    return qseal::kExitIoErr;
  }
  if (health->parsed()) return cli::RunHealth(*endpoint, std::cout, std::cerr);
  if (status->parsed()) return cli::RunStatus(*endpoint, status_id, std::cout, std::cerr);
  if (fetch->parsed()) return cli::RunFetch(*endpoint, fetch_id, fetch_out, std::cout, std::cerr);
  if (submit->parsed()) {
    submit_opts.progress = ::isatty(STDERR_FILENO) == 1;
    submit_opts.wait_timeout = std::chrono::seconds(wait_timeout_s);
    return cli::RunSubmit(*endpoint, submit_opts, std::cout, std::cerr);
  }
  return qseal::kExitUsage;
}
