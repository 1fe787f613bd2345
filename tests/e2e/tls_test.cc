// TLS and mTLS on the API of a real qseald (docs/security.md), checked with independent clients:
// openssl s_client (TLS 1.3 accepted, TLS 1.1 and a non-AEAD suite refused), curl --cacert,
// plaintext to the TLS port, client certificates (by subject, by SPKI pin; unknown CA, expired,
// revoked by a CRL in the client CA file), a certificate reload on SIGHUP while a connection
// opened before it goes on, and the refusal to listen beyond loopback without TLS.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "common/exit_codes.h"
#include "tests/testing/qseald_harness.h"
#include "tests/testing/raw_client.h"

namespace qseal {
namespace {

using testing::Qseald;
using testing::QsealdOptions;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

std::string Script(const std::string& name) {
  return std::string(QSEAL_SOURCE_DIR) + "/scripts/" + name;
}

// `openssl s_client` against the API with `args`; its output (stdout and stderr).
testing::CommandResult SClient(const Qseald& q, const std::string& args) {
  return RunCommand("echo | timeout 20 openssl s_client -connect " + q.api_address() + " -CAfile " +
                    ShellQuote(q.ca_pem()) + " " + args + " 2>&1");
}

// Replaces the first `from` in `text`; fails the test when there is none.
void ReplaceFirst(std::string& text, const std::string& from, const std::string& to) {
  std::size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
}

// The subject of the certificate the server presents to a new connection.
// The subject of the certificate served at `address` (host:port), as openssl s_client sees it.
std::string ServedSubjectAt(const std::string& address) {
  testing::CommandResult r =
      RunCommand("echo | timeout 20 openssl s_client -connect " + address +
                 " 2>/dev/null | openssl x509 -noout -subject -nameopt RFC2253 2>&1");
  return r.output;
}

std::string ServedSubject(const Qseald& q) { return ServedSubjectAt(q.api_address()); }

TEST(TlsTest, HandshakePolicyHoldsForRealClients) {
  TempDir tmp;
  Qseald q(tmp.Sub("d"));
  Status s = q.Start();
  ASSERT_TRUE(s.ok()) << s << q.Stderr();
  ASSERT_EQ(q.api().rfind("https://", 0), 0u) << q.api();

  // TLS 1.3 with the certificate verified against the test CA.
  testing::CommandResult v13 = SClient(q, "-tls1_3");
  EXPECT_NE(v13.output.find("TLSv1.3"), std::string::npos) << v13.output;
  EXPECT_NE(v13.output.find("Verify return code: 0 (ok)"), std::string::npos) << v13.output;
  // TLS 1.2 with an AEAD suite is accepted; the same with a CBC suite is not.
  testing::CommandResult gcm = SClient(q, "-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_NE(gcm.output.find("ECDHE-ECDSA-AES128-GCM-SHA256"), std::string::npos) << gcm.output;
  EXPECT_NE(gcm.output.find("Verify return code: 0 (ok)"), std::string::npos) << gcm.output;
  testing::CommandResult cbc = SClient(q, "-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256");
  EXPECT_NE(cbc.exit_code, 0) << cbc.output;
  EXPECT_NE(cbc.output.find("handshake failure"), std::string::npos) << cbc.output;
  // TLS 1.1 (and 1.0): the client is allowed to offer them (security level 0); the server refuses.
  for (const char* version : {"-tls1_1", "-tls1"}) {
    testing::CommandResult old = SClient(q, std::string(version) + " -cipher DEFAULT@SECLEVEL=0");
    EXPECT_NE(old.exit_code, 0) << version << ": " << old.output;
    EXPECT_EQ(old.output.find("no protocols available"), std::string::npos) << old.output;
    EXPECT_NE(old.output.find("alert protocol version"), std::string::npos)
        << version << ": " << old.output;
  }

  // curl with the test CA; and without it the certificate is not trusted.
  testing::CommandResult curl =
      RunCommand("curl -s --cacert " + ShellQuote(q.ca_pem()) + " " + q.api() + "/livez");
  EXPECT_EQ(curl.exit_code, 0) << curl.output;
  EXPECT_NE(curl.output.find("alive"), std::string::npos) << curl.output;
  testing::CommandResult untrusted = RunCommand("curl -s " + q.api() + "/livez");
  EXPECT_NE(untrusted.exit_code, 0) << untrusted.output;

  // Plaintext HTTP to the TLS port gets no HTTP answer.
  testing::RawClient plain("http://" + q.api_address());
  ASSERT_TRUE(plain.connected());
  plain.Send("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(plain.ReadUntilClosed(std::chrono::seconds(15)));
  EXPECT_EQ(plain.received().find("HTTP/1.1 200"), std::string::npos) << plain.received();

  // The harness's (and qsealctl's) client speaks HTTPS.
  auto profiles = q.Client().Request("GET", "/v1/profiles");
  ASSERT_TRUE(profiles.ok()) << profiles.status();
  EXPECT_EQ(profiles->status, 200) << profiles->body;
  testing::CommandResult ctl =
      RunCommand(q.CliEnv() + std::string(QSEAL_BINARY_DIR) + "/cli/qsealctl health");
  EXPECT_EQ(ctl.exit_code, 0) << ctl.output;
  EXPECT_EQ(q.Stop(), 0) << q.Stderr();
}

// Client certificates from the test CA: "client-a" known by subject, "client-b" by SPKI pin,
// "client-c" valid but not configured, "client-e" expired, "client-r" revoked (the CRL is in the
// client CA file); "stranger" is from another CA.
class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    var_ = tmp_.Sub("d/var");
    ASSERT_TRUE(testing::ProvisionSoftHsm(var_, {"qseal-p1", "qseal-p2"}).ok());
    const std::string pki = var_ + "/pki";
    for (const char* name : {"client-a", "client-b", "client-c", "client-r"}) {
      Issue(name, "");
    }
    Issue("client-e",
          "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 "
          "FAKETIME=-10d ");
    const std::string crl = pki + "/crl";
    Run("mkdir -p " + crl + " && touch " + crl + "/index.txt && echo 01 > " + crl +
        "/crlnumber && printf '[ca]\\ndefault_ca = d\\n[d]\\ndatabase = " + crl +
        "/index.txt\\ncrlnumber = " + crl +
        "/crlnumber\\ndefault_md = sha256\\ndefault_crl_days = 30\\n' > " + crl + "/ca.cnf");
    const std::string ca_args =
        " -config " + crl + "/ca.cnf -keyfile " + pki + "/ca.key -cert " + pki + "/ca.pem";
    Run("openssl ca" + ca_args + " -revoke " + pki + "/client-r.pem");
    Run("openssl ca" + ca_args + " -gencrl -out " + crl + "/crl.pem");
    Run("cat " + pki + "/ca.pem " + crl + "/crl.pem > " + pki + "/client-ca.pem");
    // A certificate from a CA qseald does not know.
    Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "
        "'/CN=qseal client-a' -keyout " +
        tmp_.Sub("stranger.key") + " -out " + tmp_.Sub("stranger.pem"));
    std::string pin = Run("openssl x509 -in " + pki +
                          "/client-b.pem -pubkey -noout | openssl pkey -pubin "
                          "-outform DER | sha256sum | cut -c1-64")
                          .substr(0, 64);

    QsealdOptions o;
    o.edit_config = [pki, pin](std::string& conf) {
      ReplaceFirst(conf, "# client_ca = \"${QSEAL_VAR:-var}/pki/ca.pem\"",
                   "client_ca = \"" + pki + "/client-ca.pem\"");
      conf +=
          "\n[[client]]\nname = \"by-subject\"\n"
          "certificate_subject = \"CN=qseal client-a,O=qseal Test Organisation,C=DE\"\n"
          "profiles = [\"default\"]\n"
          "\n[[client]]\nname = \"by-pin\"\ncertificate_spki_sha256 = \"" +
          pin + "\"\nprofiles = [\"invoice-p7m\"]\n";
    };
    q_ = std::make_unique<Qseald>(tmp_.Sub("d"), o);
    Status s = q_->Start();
    ASSERT_TRUE(s.ok()) << s << q_->Stderr();
  }
  void TearDown() override {
    if (q_ != nullptr) {
      EXPECT_EQ(q_->Stop(), 0) << q_->Stderr();
    }
  }

  std::string Run(const std::string& cmd) {
    testing::CommandResult r = RunCommand(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.output;
    return r.output;
  }
  void Issue(const std::string& name, const std::string& env) {
    Run(env + Script("provision-tls") + " --dir " + ShellQuote(var_) + " --client --name " + name +
        " --cn 'qseal " + name + "'" + (env.empty() ? "" : " --days 1"));
  }
  // GET /v1/profiles without a token, with the certificate `name` (from the var pki, "" none).
  Result<cli::HttpReply> Profiles(const std::string& cert, const std::string& key) {
    cli::TlsClientFiles tls = q_->tls();
    tls.cert_file = cert;
    tls.key_file = key;
    cli::HttpClient c(q_->api(), "", std::chrono::seconds(20), tls);
    return c.Request("GET", "/v1/profiles");
  }
  Result<cli::HttpReply> ProfilesAs(const std::string& name) {
    return Profiles(var_ + "/pki/" + name + ".pem", var_ + "/pki/" + name + ".key");
  }

  TempDir tmp_;
  std::string var_;
  std::unique_ptr<Qseald> q_;
};

TEST_F(MtlsTest, ClientsAreKnownByCertificateAndBadCertificatesAreRefused) {
  auto a = ProfilesAs("client-a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status, 200) << a->body;
  EXPECT_NE(a->body.find("\"default\""), std::string::npos) << a->body;
  EXPECT_EQ(a->body.find("invoice-p7m"), std::string::npos) << a->body;
  auto b = ProfilesAs("client-b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->status, 200) << b->body;
  EXPECT_NE(b->body.find("invoice-p7m"), std::string::npos) << b->body;

  // Valid but not configured: the handshake succeeds, the request is refused.
  auto c = ProfilesAs("client-c");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->status, 401) << c->body;
  // No certificate and no token: refused; the bearer token alone still works.
  auto none = Profiles("", "");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->status, 401) << none->body;
  auto token = q_->Client().Request("GET", "/v1/profiles");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->status, 200);

  // Expired, revoked, or from an unknown CA (even with a configured subject): no handshake.
  for (const char* name : {"client-e", "client-r"}) {
    auto r = ProfilesAs(name);
    EXPECT_FALSE(r.ok()) << name << ": " << (r.ok() ? r->body : "");
  }
  auto stranger = Profiles(tmp_.Sub("stranger.pem"), tmp_.Sub("stranger.key"));
  EXPECT_FALSE(stranger.ok()) << (stranger.ok() ? stranger->body : "");
  testing::CommandResult s =
      RunCommand("echo | timeout 20 openssl s_client -connect " + q_->api_address() + " -CAfile " +
                 ShellQuote(q_->ca_pem()) + " -tls1_2 -cert " + var_ + "/pki/client-r.pem -key " +
                 var_ + "/pki/client-r.key 2>&1");
  EXPECT_NE(s.output.find("certificate revoked"), std::string::npos) << s.output;
}

TEST(TlsReloadTest, SighupServesTheRenewedCertificateWhileAnOpenConnectionGoesOn) {
  TempDir tmp;
  Qseald q(tmp.Sub("d"));
  Status s = q.Start();
  ASSERT_TRUE(s.ok()) << s << q.Stderr();
  EXPECT_NE(ServedSubject(q).find("CN=qseal server"), std::string::npos) << ServedSubject(q);

  // A connection opened before the reload, one request already answered on it.
  testing::RawClient old(q.api());
  ASSERT_TRUE(old.connected());
  const std::string livez = "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(old.Send(livez));
  EXPECT_NE(old.ReadResponse(std::chrono::seconds(10)).find("alive"), std::string::npos);

  testing::CommandResult renew =
      RunCommand(Script("provision-tls") + " --dir " + ShellQuote(q.var()) +
                 " --name server --force --cn 'qseal server renewed'");
  ASSERT_EQ(renew.exit_code, 0) << renew.output;
  q.process().Signal(SIGHUP);
  ASSERT_FALSE(
      q.process().WaitForLine("\"TLS certificate reloaded\"", std::chrono::seconds(10)).empty())
      << q.Stderr();
  EXPECT_NE(ServedSubject(q).find("CN=qseal server renewed"), std::string::npos)
      << ServedSubject(q);
  // New connections verify against the CA as before.
  auto fresh = q.Client().Request("GET", "/v1/profiles");
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->status, 200);

  // The old connection was not dropped: a second request on it is answered.
  ASSERT_TRUE(old.Send(livez));
  const std::string& both = old.ReadResponse(std::chrono::seconds(10));
  std::size_t answers = 0;
  for (std::size_t p = both.find("HTTP/1.1 200 OK"); p != std::string::npos;
       p = both.find("HTTP/1.1 200 OK", p + 1)) {
    ++answers;
  }
  EXPECT_EQ(answers, 2u) << both;

  // A broken certificate file is refused and the current one stays in use.
  testing::WriteFile(q.var() + "/pki/server.pem", "not a certificate\n");
  q.process().Signal(SIGHUP);
  EXPECT_FALSE(q.process().WaitForLine("\"TLS reload failed", std::chrono::seconds(10)).empty())
      << q.Stderr();
  EXPECT_NE(ServedSubject(q).find("CN=qseal server renewed"), std::string::npos)
      << ServedSubject(q);
  EXPECT_EQ(q.Stop(), 0) << q.Stderr();
}

// Certificates renewed and reloaded five times while two clients keep submitting: every
// submission is accepted (none fails in a handshake or on a connection cut by a reload).
TEST(TlsReloadTest, ReloadUnderLoadLosesNoRequest) {
  TempDir tmp;
  Qseald q(tmp.Sub("d"));
  Status s = q.Start();
  ASSERT_TRUE(s.ok()) << s << q.Stderr();
  std::atomic<bool> stop{false};
  std::atomic<int> accepted{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 2; ++t) {
    load.emplace_back([&, t] {
      cli::HttpClient c = q.Client();
      for (int i = 0; !stop; ++i) {
        auto r = c.Request("POST", "/v1/documents?profile=default",
                           "doc " + std::to_string(t) + "/" + std::to_string(i));
        if (r.ok() && r->status == 202) {
          ++accepted;
        } else {
          ++failed;
          ADD_FAILURE() << (r.ok() ? std::to_string(r->status) + " " + r->body
                                   : r.status().ToString());
        }
      }
    });
  }
  for (int round = 0; round < 5; ++round) {
    testing::CommandResult renew =
        RunCommand(Script("provision-tls") + " --dir " + ShellQuote(q.var()) +
                   " --name server --force --cn 'qseal server " + std::to_string(round) + "'");
    EXPECT_EQ(renew.exit_code, 0) << renew.output;
    q.process().Signal(SIGHUP);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(accepted.load(), 10);
  EXPECT_NE(ServedSubject(q).find("CN=qseal server 4"), std::string::npos) << ServedSubject(q);
  EXPECT_EQ(q.Stop(), 0) << q.Stderr();
}

// Per-source connection limit and per-client request rate (issue 19 item 5, in part): a flood of
// connections from 127.0.0.2 is cut at the limit while a client on 127.0.0.1 is served; a client
// over its rate gets 429 with Retry-After while another client is served.
TEST(LimitsTest, ConnectionsPerSourceAndRequestsPerClient) {
  TempDir tmp;
  QsealdOptions o;
  o.edit_config = [](std::string& conf) {
    ReplaceFirst(conf, "max_connections_per_source = 256", "max_connections_per_source = 4");
    ReplaceFirst(conf, "client_requests_per_second = 0", "client_requests_per_second = 1");
    ReplaceFirst(conf, "client_burst = 0", "client_burst = 3");
    conf +=
        "\n[[client]]\nname = \"other\"\ntoken_sha256 = "
        "\"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\"\n"  // "foo"
        "profiles = [\"*\"]\n";
  };
  Qseald q(tmp.Sub("d"), o);
  Status s = q.Start();
  ASSERT_TRUE(s.ok()) << s << q.Stderr();

  std::vector<std::unique_ptr<testing::RawClient>> flood;
  for (int i = 0; i < 4; ++i) {
    flood.push_back(std::make_unique<testing::RawClient>(q.api(), "127.0.0.2"));
    ASSERT_TRUE(flood.back()->connected()) << i;
  }
  testing::RawClient fifth(q.api(), "127.0.0.2");
  EXPECT_FALSE(fifth.connected());
  auto served = q.Client().Request("GET", "/livez");
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->status, 200);
  flood.clear();  // closed: the source may connect again
  bool again = false;
  for (int i = 0; i < 50 && !again; ++i) {
    testing::RawClient next(q.api(), "127.0.0.2");
    again = next.connected();
    if (!again) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(again);

  cli::HttpClient client = q.Client();
  int ok = 0;
  int limited = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = client.Request("GET", "/v1/profiles");
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->status == 200) ++ok;
    if (r->status == 429) {
      ++limited;
      EXPECT_EQ(r->Header("retry-after"), "1");
      EXPECT_EQ(r->Header("content-type"), "application/problem+json");
    }
  }
  EXPECT_GE(ok, 3);
  EXPECT_GE(limited, 2);
  auto other = q.Client("foo").Request("GET", "/v1/profiles");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->status, 200);
  EXPECT_EQ(q.Stop(), 0) << q.Stderr();
}

// /metrics over HTTPS with client certificates required: curl with the test CA and a scraper
// certificate gets the exposition; without a certificate, or in plaintext, it gets nothing.
TEST(MetricsTlsTest, ScrapesNeedTlsAndAClientCertificateAndSighupRenewsIt) {
  TempDir tmp;
  const std::string var = tmp.Sub("d/var");
  ASSERT_TRUE(testing::ProvisionSoftHsm(var, {"qseal-p1", "qseal-p2"}).ok());
  testing::CommandResult issued = RunCommand(Script("provision-tls") + " --dir " + ShellQuote(var) +
                                             " --client --name scraper --cn 'qseal scraper'");
  ASSERT_EQ(issued.exit_code, 0) << issued.output;
  // The listener's own certificate, so that its renewal below is told apart from the API's.
  testing::CommandResult own = RunCommand(Script("provision-tls") + " --dir " + ShellQuote(var) +
                                          " --name metrics --cn 'qseal metrics'");
  ASSERT_EQ(own.exit_code, 0) << own.output;
  QsealdOptions o;
  o.edit_config = [](std::string& conf) {
    ReplaceFirst(conf, "listen = \"${QSEAL_METRICS_ADDR:-127.0.0.1:9464}\"\n",
                 "listen = \"${QSEAL_METRICS_ADDR:-127.0.0.1:9464}\"\n"
                 "tls_certificate = \"${QSEAL_VAR:-var}/pki/metrics.pem\"\n"
                 "tls_key = \"${QSEAL_VAR:-var}/pki/metrics.key\"\n"
                 "client_ca = \"${QSEAL_VAR:-var}/pki/ca.pem\"\n"
                 "require_client_certificate = true\n");
  };
  Qseald q(tmp.Sub("d"), o);
  Status s = q.Start();
  ASSERT_TRUE(s.ok()) << s << q.Stderr();
  const std::string pki = var + "/pki/";
  const std::string url = "https://" + q.metrics() + "/metrics";
  testing::CommandResult scrape = RunCommand(
      "curl -sf --cacert " + ShellQuote(pki + "ca.pem") + " --cert " +
      ShellQuote(pki + "scraper.pem") + " --key " + ShellQuote(pki + "scraper.key") + " " + url);
  EXPECT_EQ(scrape.exit_code, 0) << scrape.output;
  EXPECT_NE(scrape.output.find("qseal_queue_documents{state=\"queued\"}"), std::string::npos)
      << scrape.output.substr(0, 500);
  testing::CommandResult anonymous =
      RunCommand("curl -sf --cacert " + ShellQuote(pki + "ca.pem") + " " + url + " 2>&1");
  EXPECT_NE(anonymous.exit_code, 0) << anonymous.output;
  EXPECT_EQ(anonymous.output.find("qseal_"), std::string::npos) << anonymous.output;
  testing::CommandResult plaintext =
      RunCommand("curl -sf --max-time 10 http://" + q.metrics() + "/metrics 2>&1");
  EXPECT_NE(plaintext.exit_code, 0) << plaintext.output;
  EXPECT_EQ(plaintext.output.find("qseal_"), std::string::npos) << plaintext.output;

  // SIGHUP reloads the metrics certificate too: new scrapes see the renewed one, verified as
  // before; the API keeps its own.
  EXPECT_NE(ServedSubjectAt(q.metrics()).find("CN=qseal metrics"), std::string::npos);
  testing::CommandResult renew = RunCommand(Script("provision-tls") + " --dir " + ShellQuote(var) +
                                            " --name metrics --force --cn 'qseal metrics renewed'");
  ASSERT_EQ(renew.exit_code, 0) << renew.output;
  q.process().Signal(SIGHUP);
  ASSERT_FALSE(
      q.process().WaitForLine("\"TLS certificate reloaded\"", std::chrono::seconds(10)).empty())
      << q.Stderr();
  EXPECT_NE(ServedSubjectAt(q.metrics()).find("CN=qseal metrics renewed"), std::string::npos)
      << ServedSubjectAt(q.metrics());
  EXPECT_EQ(ServedSubject(q).find("metrics"), std::string::npos) << ServedSubject(q);
  scrape = RunCommand("curl -sf --cacert " + ShellQuote(pki + "ca.pem") + " --cert " +
                      ShellQuote(pki + "scraper.pem") + " --key " +
                      ShellQuote(pki + "scraper.key") + " " + url);
  EXPECT_EQ(scrape.exit_code, 0) << scrape.output;
  // A broken file is refused and the renewed certificate stays in use.
  testing::WriteFile(pki + "metrics.pem", "not a certificate\n");
  q.process().Signal(SIGHUP);
  EXPECT_FALSE(q.process().WaitForLine("\"TLS reload failed", std::chrono::seconds(10)).empty())
      << q.Stderr();
  EXPECT_NE(ServedSubjectAt(q.metrics()).find("CN=qseal metrics renewed"), std::string::npos);
  EXPECT_EQ(q.Stop(), 0) << q.Stderr();
}

TEST(TlsStartupTest, PlaintextBeyondLoopbackIsRefusedUnlessAllowed) {
  TempDir tmp;
  std::string conf = testing::ReadFile(std::string(QSEAL_SOURCE_DIR) + "/conf/qseald.toml");
  ReplaceFirst(conf, "\ntls_certificate = ", "\n# tls_certificate = ");
  ReplaceFirst(conf, "\ntls_key = ", "\n# tls_key = ");
  ReplaceFirst(conf, "listen = \"${QSEAL_API_ADDR:-127.0.0.1:8440}\"", "listen = \"0.0.0.0:0\"");
  testing::WriteFile(tmp.Sub("plain.toml"), conf);
  const std::string qseald = std::string(QSEAL_BINARY_DIR) + "/daemon/qseald --config ";
  testing::CommandResult refused =
      RunCommand("QSEAL_VAR=" + tmp.Sub("var") + " " + qseald + tmp.Sub("plain.toml"));
  EXPECT_EQ(refused.exit_code, kExitConfig) << refused.output;
  EXPECT_NE(refused.output.find("not loopback and no TLS"), std::string::npos) << refused.output;

  ReplaceFirst(conf, "allow_plaintext = false", "allow_plaintext = true");
  testing::WriteFile(tmp.Sub("allowed.toml"), conf);
  testing::CommandResult allowed = RunCommand(qseald + tmp.Sub("allowed.toml") + " --check-config");
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
}

}  // namespace
}  // namespace qseal
