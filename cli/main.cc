// qsealctl: the command line for people. Finds the server and the API token with no flags after
// scripts/start (environment, then the embedded default's files under $QSEAL_VAR or ./var).
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/http_client.h"
#include "common/exit_codes.h"

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string VarDir() {
  std::string v = Env("QSEAL_VAR");
  return v.empty() ? "var" : v;
}

std::string ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

struct Connection {
  std::string server;
  std::string token_file;

  std::string Server() const {
    if (!server.empty()) return server;
    for (const char* e : {"QSEAL_SERVER", "QSEAL_API_ADDR"}) {
      if (!Env(e).empty()) return Env(e);
    }
    return "127.0.0.1:8440";
  }
  std::string Token() const {
    if (!token_file.empty()) return ReadTrimmed(token_file);
    if (!Env("QSEAL_TOKEN").empty()) return Env("QSEAL_TOKEN");
    return ReadTrimmed(VarDir() + "/api-token");
  }
};

int Health(const Connection& conn) {
  qseal::cli::HttpClient client(conn.Server(), "", std::chrono::milliseconds(10'000));
  auto reply = client.Request("GET", "/readyz");
  if (!reply.ok()) {
    std::cerr << "qsealctl: " << reply.status().message() << "\n";
    return qseal::kExitUnavailable;
  }
  std::cout << reply->body;
  if (!reply->body.empty() && reply->body.back() != '\n') std::cout << "\n";
  return reply->status == 200 ? qseal::kExitOk : qseal::kExitUnavailable;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qsealctl: submit documents to qseald, follow them, fetch and verify seals"};
  app.require_subcommand(1);
  Connection conn;
  app.add_option("--server", conn.server,
                 "qseald API address host:port (default: $QSEAL_SERVER, "
                 "$QSEAL_API_ADDR, 127.0.0.1:8440)");
  app.add_option("--token-file", conn.token_file,
                 "file holding the API bearer token (default: $QSEAL_TOKEN, $QSEAL_VAR/api-token)");
  CLI::App* health =
      app.add_subcommand("health", "ask qseald whether it is ready to seal (/readyz)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return e.get_exit_code() == 0 ? rc : qseal::kExitUsage;
  }
  (void)conn.Token();
  if (health->parsed()) return Health(conn);
  return qseal::kExitUsage;
}
