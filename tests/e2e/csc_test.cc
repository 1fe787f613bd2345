// The CSC API v2 (docs/csc.md) against a real qseald over HTTPS with SoftHSM2: info without
// credentials, credentials/list and credentials/info per client, signatures/signHash with 1000
// hashes in one request, and signatures/signDoc for digests and whole documents. Every signature
// is checked by openssl: `openssl pkeyutl -verify` of signHash's values against the leaf
// certificate and the hash openssl made, `openssl cms -verify` of signDoc's CAdES seals. Then the
// requests it must refuse, each with its CSC error, and the audit records of what was sealed.
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/testing/qseald_harness.h"

namespace qseal {
namespace {

using nlohmann::json;
using testing::Qseald;
using testing::QsealdOptions;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

constexpr const char* kLimitedToken = "csc-limited-client-token";
// A client with every profile ("*") but no signHash grant.
constexpr const char* kDocumentsToken = "csc-documents-client-token";
constexpr const char* kSha256 = "2.16.840.1.101.3.4.2.1";
constexpr const char* kSha384 = "2.16.840.1.101.3.4.2.2";
constexpr const char* kSha1 = "1.3.14.3.2.26";
constexpr const char* kEcdsaSha256 = "1.2.840.10045.4.3.2";
constexpr const char* kEcPublicKey = "1.2.840.10045.2.1";
constexpr const char* kRsaSha256 = "1.2.840.113549.1.1.11";
constexpr const char* kRsaPss = "1.2.840.113549.1.1.10";

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string Qsealctl() { return std::string(QSEAL_BINARY_DIR) + "/cli/qsealctl"; }

// openssl's base64 of `path`'s contents, and back.
std::string Base64OfFile(const std::string& path) {
  return Trim(RunCommand("base64 -w0 " + ShellQuote(path)).output);
}
void WriteBase64(const std::string& path, const std::string& b64) {
  testing::WriteFile(path + ".b64", b64);
  testing::CommandResult r =
      RunCommand("base64 -d " + ShellQuote(path + ".b64") + " > " + ShellQuote(path));
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

// One daemon per key type, started by the first test that needs it and shared by the rest.
struct Daemon {
  TempDir tmp;
  std::unique_ptr<Qseald> qseald;
  std::string leaf;  // the seal key's certificate (PEM), for openssl pkeyutl
};

class CscTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void TearDownTestSuite() {
    for (auto& [type, d] : daemons_) {
      if (d->qseald != nullptr) {
        EXPECT_EQ(d->qseald->Stop(), 0) << d->qseald->Stderr();
      }
    }
    daemons_.clear();
  }

  void SetUp() override {
    std::unique_ptr<Daemon>& d = daemons_[GetParam()];
    if (d == nullptr) {
      d = std::make_unique<Daemon>();
      QsealdOptions o;
      o.key_type = GetParam();
      o.edit_config = [](std::string& conf) {
        auto hash_of = [](const char* token) {
          return Trim(
              RunCommand("printf %s " + ShellQuote(token) + " | sha256sum | cut -d' ' -f1").output);
        };
        const std::string hash = hash_of(kLimitedToken);
        // signHash needs its own grant: the default client gets it for the "seal" key.
        const std::string all = "profiles = [\"*\"]";
        const std::size_t at = conf.find(all);
        ASSERT_NE(at, std::string::npos);
        conf.replace(at, all.size(), "profiles = [\"*\", \"csc:seal\"]");
        // A second credential (the same HSM key under another name) that only "limited" uses.
        conf +=
            "\n[[key]]\nname = \"other\"\nuri = \"pkcs11:object=seal;type=private\"\n"
            "certificate_chain = \"${QSEAL_VAR:-var}/pki/seal-chain.pem\"\n"
            "partitions = [\"p1\", \"p2\"]\n"
            "\n[[profile]]\nname = \"other-p7s\"\nformat = \"cades-detached\"\ndigest = "
            "\"sha256\"\nscheme = \"${QSEAL_SCHEME:-ecdsa}\"\nkey = \"other\"\n"
            "\n[[client]]\nname = \"limited\"\ntoken_sha256 = \"" +
            hash +
            "\"\nprofiles = [\"other-p7s\", \"csc:other\"]\n"
            "\n[[client]]\nname = \"documents\"\ntoken_sha256 = \"" +
            hash_of(kDocumentsToken) +
            "\"\nprofiles = [\"*\"]\n"
            "\n[csc]\nenabled = true\nname = \"qseal test\"\nregion = \"BE\"\n";
      };
      d->qseald = std::make_unique<Qseald>(d->tmp.Sub("d"), o);
      Status s = d->qseald->Start();
      ASSERT_TRUE(s.ok()) << s << d->qseald->Stderr();
      d->leaf = d->tmp.Sub("leaf.pem");
      testing::CommandResult r =
          RunCommand("openssl x509 -in " + ShellQuote(d->qseald->var() + "/pki/seal-chain.pem") +
                     " -out " + ShellQuote(d->leaf));
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    qseald_ = d->qseald.get();
    leaf_ = d->leaf;
    tmp_ = std::make_unique<TempDir>();
  }

  // How many sealed records the audit trail holds whose line contains `part` ("" for all).
  int SealedRecords(const std::string& part = "") {
    testing::CommandResult audit =
        RunCommand(Qsealctl() + " audit show --dir " + ShellQuote(qseald_->var() + "/audit") +
                   " --event sealed | grep -c -F -e " + ShellQuote(part.empty() ? "{" : part));
    return std::stoi("0" + Trim(audit.output));
  }

  bool rsa() const { return GetParam().rfind("rsa", 0) == 0; }

  // POST /csc/v2/METHOD with `body` (a JSON value, or a string sent as it is).
  std::pair<int, json> Call(const std::string& method, const json& body,
                            const std::string& token = "", const std::string& verb = "POST") {
    cli::HttpClient c = token.empty() ? qseald_->Client() : qseald_->Client(token);
    auto r = c.Request(verb, "/csc/v2/" + method,
                       body.is_string() ? body.get<std::string>() : body.dump(),
                       {{"Content-Type", "application/json"}});
    if (!r.ok()) return {-1, json(r.status().ToString())};
    json j = json::parse(r->body, nullptr, false);
    if (j.is_discarded()) j = json(r->body);
    return {r->status, j};
  }

  // Asserts a CSC error: `status` and error "invalid_request" with `description_part` in the
  // description.
  void ExpectRefused(const std::string& method, const json& body, int status,
                     const std::string& description_part, const std::string& token = "") {
    auto [code, reply] = Call(method, body, token);
    EXPECT_EQ(code, status) << reply.dump();
    ASSERT_TRUE(reply.is_object()) << reply.dump();
    EXPECT_EQ(reply.value("error", ""), status == 401 ? "invalid_token" : "invalid_request")
        << reply.dump();
    EXPECT_NE(reply.value("error_description", "").find(description_part), std::string::npos)
        << reply.dump();
  }

  // A file of `size` bytes differing by `seed`; its openssl SHA-256 (or `alg`) hash as base64.
  std::string MakeFile(const std::string& name, int seed, std::size_t size = 512) {
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 131 + seed) % 251);
    std::string path = tmp_->Sub(name);
    testing::WriteFile(path, bytes);
    return path;
  }
  std::string OpensslHash(const std::string& path, const std::string& alg = "sha256") {
    return Trim(
        RunCommand("openssl dgst -" + alg + " -binary " + ShellQuote(path) + " | base64 -w0")
            .output);
  }

  // openssl pkeyutl -verify of the base64 `signature` over the base64 `hash` with the leaf's key.
  std::string PkeyutlVerify(const std::string& hash_b64, const std::string& signature_b64,
                            const std::string& digest = "sha256", bool pss = false) {
    const std::string hash = tmp_->Sub("hash.bin");
    const std::string sig = tmp_->Sub("sig.bin");
    WriteBase64(hash, hash_b64);
    WriteBase64(sig, signature_b64);
    std::string cmd = "openssl pkeyutl -verify -certin -inkey " + ShellQuote(leaf_) + " -in " +
                      ShellQuote(hash) + " -sigfile " + ShellQuote(sig);
    if (rsa()) {
      cmd += " -pkeyopt digest:" + digest;
      if (pss) cmd += " -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest";
    }
    testing::CommandResult r = RunCommand(cmd + " 2>&1");
    if (r.exit_code == 0 && r.output.find("Signature Verified Successfully") != std::string::npos)
      return "";
    return r.output;
  }

  std::string SignAlgo() const { return rsa() ? kRsaSha256 : kEcdsaSha256; }

  static inline std::map<std::string, std::unique_ptr<Daemon>> daemons_;
  std::unique_ptr<TempDir> tmp_;
  Qseald* qseald_ = nullptr;
  std::string leaf_;
};

TEST_P(CscTest, InfoNeedsNoCredentialsAndNamesTheMethods) {
  auto [status, info] = Call("info", json::object(), "-no-token-");
  // A wrong token is not even looked at by info.
  ASSERT_EQ(status, 200) << info.dump();
  EXPECT_EQ(info["specs"], "2.0.0.2");
  EXPECT_EQ(info["name"], "qseal test");
  EXPECT_EQ(info["region"], "BE");
  EXPECT_EQ(info["methods"], json({"info", "credentials/list", "credentials/info",
                                   "signatures/signHash", "signatures/signDoc"}));
  cli::HttpClient anonymous = qseald_->Client("");
  auto r = anonymous.Request("GET", "/csc/v2/info");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << r->body;
  // Every other method needs the token.
  auto list = anonymous.Request("POST", "/csc/v2/credentials/list", "{}");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->status, 401) << list->body;
  EXPECT_EQ(json::parse(list->body)["error"], "invalid_token");
}

TEST_P(CscTest, CredentialsAreListedPerClientWithTheirCertificates) {
  auto [status, list] = Call("credentials/list", {{"credentialInfo", true}, {"certInfo", true}});
  ASSERT_EQ(status, 200) << list.dump();
  EXPECT_EQ(list["credentialIDs"], json({"seal", "other"})) << list.dump();
  ASSERT_EQ(list["credentialInfos"].size(), 2u);
  // "limited" sees only the key its profile seals with.
  auto [limited_status, limited] = Call("credentials/list", json::object(), kLimitedToken);
  ASSERT_EQ(limited_status, 200) << limited.dump();
  EXPECT_EQ(limited["credentialIDs"], json({"other"})) << limited.dump();
  // Paging: one per page.
  auto [page_status, page] = Call("credentials/list", {{"maxResults", 1}});
  ASSERT_EQ(page_status, 200) << page.dump();
  EXPECT_EQ(page["credentialIDs"], json({"seal"}));
  ASSERT_TRUE(page.contains("nextPageToken")) << page.dump();
  auto [next_status, next] =
      Call("credentials/list", {{"maxResults", 1}, {"pageToken", page["nextPageToken"]}});
  ASSERT_EQ(next_status, 200) << next.dump();
  EXPECT_EQ(next["credentialIDs"], json({"other"}));
  EXPECT_FALSE(next.contains("nextPageToken")) << next.dump();

  auto [info_status, info] = Call("credentials/info", {{"credentialID", "seal"},
                                                       {"certificates", "chain"},
                                                       {"certInfo", true},
                                                       {"authInfo", true}});
  ASSERT_EQ(info_status, 200) << info.dump();
  EXPECT_EQ(info["key"]["status"], "enabled");
  EXPECT_EQ(info["key"]["len"], rsa() ? 3072 : 256) << info.dump();
  EXPECT_NE(std::find(info["key"]["algo"].begin(), info["key"]["algo"].end(), SignAlgo()),
            info["key"]["algo"].end())
      << info.dump();
  EXPECT_EQ(info["auth"]["mode"], "implicit");
  EXPECT_EQ(info["cert"]["status"], "valid");
  EXPECT_EQ(info["multisign"], 1000);
  // The chain as served is the configured chain: openssl reads back the leaf's subject.
  ASSERT_GE(info["cert"]["certificates"].size(), 2u) << info.dump();
  const std::string served = tmp_->Sub("served-leaf.der");
  WriteBase64(served, info["cert"]["certificates"][0].get<std::string>());
  testing::CommandResult subject =
      RunCommand("openssl x509 -inform DER -in " + ShellQuote(served) +
                 " -noout -serial && openssl x509 -in " + ShellQuote(leaf_) + " -noout -serial");
  ASSERT_EQ(subject.exit_code, 0) << subject.output;
  const std::size_t nl = subject.output.find('\n');
  EXPECT_EQ(subject.output.substr(0, nl), Trim(subject.output.substr(nl + 1)));
  EXPECT_EQ("serial=" + info["cert"]["serialNumber"].get<std::string>(),
            subject.output.substr(0, nl));

  // A credential not granted is answered exactly like one that does not exist, and audited.
  auto [denied_status, denied] =
      Call("credentials/info", {{"credentialID", "seal"}}, kLimitedToken);
  auto [unknown_status, unknown] = Call("credentials/info", {{"credentialID", "nope"}});
  EXPECT_EQ(denied_status, 400);
  EXPECT_EQ(unknown_status, 400);
  EXPECT_EQ(denied, unknown);
  testing::CommandResult audit =
      RunCommand(Qsealctl() + " audit show --dir " + ShellQuote(qseald_->var() + "/audit") +
                 " --event auth_denied");
  EXPECT_NE(audit.output.find("\"limited\""), std::string::npos) << audit.output;
  EXPECT_NE(audit.output.find("not granted"), std::string::npos) << audit.output;
}

TEST_P(CscTest, SignHashSignsAThousandHashesThatOpensslVerifies) {
  constexpr int kHashes = 1000;
  std::vector<std::string> hashes;
  // openssl makes the hashes: of 1000 different small files (one openssl call for all).
  const std::string dir = tmp_->Sub("files");
  testing::CommandResult made = RunCommand(
      "mkdir -p " + ShellQuote(dir) + " && cd " + ShellQuote(dir) + " && for i in $(seq 0 " +
      std::to_string(kHashes - 1) + "); do echo invoice $i > f$i; done && for i in $(seq 0 " +
      std::to_string(kHashes - 1) +
      "); do openssl dgst -sha256 -binary f$i | base64 -w0; echo; done");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  std::size_t start = 0;
  for (std::size_t nl; (nl = made.output.find('\n', start)) != std::string::npos; start = nl + 1) {
    hashes.push_back(made.output.substr(start, nl - start));
  }
  ASSERT_EQ(hashes.size(), static_cast<std::size_t>(kHashes));

  const std::string profile = std::string("csc:seal:sha256:") + (rsa() ? "rsa-pss" : "ecdsa");
  const int sealed_before = SealedRecords(profile);
  json body = {{"credentialID", "seal"},
               {"hashes", hashes},
               {"hashAlgorithmOID", kSha256},
               {"signAlgo", rsa() ? kRsaPss : kEcdsaSha256}};
  const auto t0 = std::chrono::steady_clock::now();
  auto [status, reply] = Call("signatures/signHash", body);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(status, 200) << reply.dump();
  std::printf("signHash: %d hashes in one request answered in %.2f s (%s)\n", kHashes, seconds,
              GetParam().c_str());
  ASSERT_EQ(reply["signatures"].size(), static_cast<std::size_t>(kHashes));
  // Every signature is over its own hash: a sample of 50 spread over the batch, checked by
  // openssl, plus one against the wrong hash that must fail.
  for (int i = 0; i < kHashes; i += 20) {
    EXPECT_EQ(PkeyutlVerify(hashes[i], reply["signatures"][i], "sha256", rsa()), "") << i;
  }
  EXPECT_NE(PkeyutlVerify(hashes[1], reply["signatures"][0], "sha256", rsa()), "");

  // The audit trail has one sealed record per hash, for the default client.
  testing::WaitFor([&] { return SealedRecords(profile) - sealed_before >= kHashes; },
                   std::chrono::seconds(10), std::chrono::milliseconds(500));
  EXPECT_EQ(SealedRecords(profile) - sealed_before, kHashes);
}

// "*" seals documents with every profile but gives no bare signatures: signHash is refused
// (403, audited) while the credential is visible and signDoc works on it.
TEST_P(CscTest, SignHashNeedsItsOwnGrant) {
  const std::string file = MakeFile("g.bin", 5);
  const std::string h = OpensslHash(file);
  const json body = {{"credentialID", "seal"},
                     {"hashes", {h}},
                     {"hashAlgorithmOID", kSha256},
                     {"signAlgo", rsa() ? kRsaPss : kEcdsaSha256}};
  const int sealed_before = SealedRecords();
  auto [status, reply] = Call("signatures/signHash", body, kDocumentsToken);
  EXPECT_EQ(status, 403) << reply.dump();
  EXPECT_EQ(reply.value("error", ""), "access_denied") << reply.dump();
  EXPECT_NE(reply.value("error_description", "").find("csc:seal"), std::string::npos);
  EXPECT_FALSE(reply.contains("signatures"));
  auto [info_status, info] = Call("credentials/info", {{"credentialID", "seal"}}, kDocumentsToken);
  EXPECT_EQ(info_status, 200) << info.dump();
  auto [doc_status, doc] = Call("signatures/signDoc",
                                {{"credentialID", "seal"},
                                 {"documentDigests",
                                  {{{"hashes", {h}},
                                    {"hashAlgorithmOID", kSha256},
                                    {"signAlgo", rsa() ? kRsaPss : kEcdsaSha256},
                                    {"signature_format", "C"}}}}},
                                kDocumentsToken);
  ASSERT_EQ(doc_status, 200) << doc.dump();
  const std::string p7s = tmp_->Sub("g.p7s");
  WriteBase64(p7s, doc["SignatureObject"][0]);
  EXPECT_EQ(testing::OpensslVerify(p7s, qseald_->ca_pem(), file), "");
  // The refused call made no signature: only the signDoc seal was recorded.
  testing::WaitFor([&] { return SealedRecords() - sealed_before >= 1; }, std::chrono::seconds(10),
                   std::chrono::milliseconds(200));
  EXPECT_EQ(SealedRecords() - sealed_before, 1);
  testing::CommandResult audit =
      RunCommand(Qsealctl() + " audit show --dir " + ShellQuote(qseald_->var() + "/audit") +
                 " --event auth_denied");
  EXPECT_NE(audit.output.find("\"documents\""), std::string::npos) << audit.output;
  EXPECT_NE(audit.output.find("signHash with \\\"seal\\\" not granted"), std::string::npos)
      << audit.output;
  // With the grant the same request is signed (the default client has "csc:seal").
  auto [ok_status, ok] = Call("signatures/signHash", body);
  ASSERT_EQ(ok_status, 200) << ok.dump();
  EXPECT_EQ(PkeyutlVerify(h, ok["signatures"][0], "sha256", rsa()), "");
}

TEST_P(CscTest, SignHashWithSha384AndEachSchemeOfTheKey) {
  const std::string file = MakeFile("a.bin", 3);
  const std::string h384 = OpensslHash(file, "sha384");
  auto [status, reply] =
      Call("signatures/signHash", {{"credentialID", "seal"},
                                   {"hashes", {h384}},
                                   {"hashAlgorithmOID", kSha384},
                                   {"signAlgo", rsa() ? "1.2.840.113549.1.1.1" : kEcPublicKey}});
  ASSERT_EQ(status, 200) << reply.dump();
  EXPECT_EQ(PkeyutlVerify(h384, reply["signatures"][0], "sha384", false), "");
  if (rsa()) {
    // sha256WithRSAEncryption implies its hash: hashAlgorithmOID may be left out.
    const std::string h = OpensslHash(file);
    auto [s2, r2] = Call("signatures/signHash",
                         {{"credentialID", "seal"}, {"hashes", {h}}, {"signAlgo", kRsaSha256}});
    ASSERT_EQ(s2, 200) << r2.dump();
    EXPECT_EQ(PkeyutlVerify(h, r2["signatures"][0], "sha256", false), "");
  }
}

TEST_P(CscTest, SignDocSealsDigestsAndDocumentsThatOpensslVerifies) {
  const std::string a = MakeFile("a.bin", 1);
  const std::string b = MakeFile("b.bin", 2, 70 << 10);
  const std::string c = MakeFile("c.bin", 3);
  json body = {{"credentialID", "seal"},
               {"documentDigests",
                {{{"hashes", {OpensslHash(a), OpensslHash(b)}},
                  {"hashAlgorithmOID", kSha256},
                  {"signAlgo", rsa() ? kRsaPss : kEcdsaSha256},
                  {"signature_format", "C"},
                  {"conformance_level", "Ades-B-B"}}}},
               {"documents",
                {{{"document", Base64OfFile(c)},
                  {"signAlgo", rsa() ? kRsaPss : kEcdsaSha256},
                  {"signature_format", "C"},
                  {"signed_envelope_property", "Attached"}}}}};
  auto [status, reply] = Call("signatures/signDoc", body);
  ASSERT_EQ(status, 200) << reply.dump();
  ASSERT_EQ(reply["SignatureObject"].size(), 2u) << reply.dump();
  ASSERT_EQ(reply["DocumentWithSignature"].size(), 1u) << reply.dump();
  const std::string p7s_a = tmp_->Sub("a.p7s");
  const std::string p7s_b = tmp_->Sub("b.p7s");
  const std::string p7m_c = tmp_->Sub("c.p7m");
  WriteBase64(p7s_a, reply["SignatureObject"][0]);
  WriteBase64(p7s_b, reply["SignatureObject"][1]);
  WriteBase64(p7m_c, reply["DocumentWithSignature"][0]);
  EXPECT_EQ(testing::OpensslVerify(p7s_a, qseald_->ca_pem(), a), "");
  EXPECT_EQ(testing::OpensslVerify(p7s_b, qseald_->ca_pem(), b), "");
  EXPECT_NE(testing::OpensslVerify(p7s_a, qseald_->ca_pem(), b), "");
  const std::string out = tmp_->Sub("c.out");
  EXPECT_EQ(testing::OpensslVerify(p7m_c, qseald_->ca_pem(), "", out), "");
  EXPECT_EQ(testing::ReadFile(out), testing::ReadFile(c));

  // "limited" seals with its own credential only.
  json limited = {{"credentialID", "other"},
                  {"documentDigests",
                   {{{"hashes", {OpensslHash(a)}},
                     {"hashAlgorithmOID", kSha256},
                     {"signAlgo", rsa() ? kRsaPss : kEcdsaSha256},
                     {"signature_format", "C"}}}}};
  auto [ls, lr] = Call("signatures/signDoc", limited, kLimitedToken);
  ASSERT_EQ(ls, 200) << lr.dump();
  WriteBase64(p7s_a, lr["SignatureObject"][0]);
  EXPECT_EQ(testing::OpensslVerify(p7s_a, qseald_->ca_pem(), a), "");
  limited["credentialID"] = "seal";
  ExpectRefused("signatures/signDoc", limited, 400, "credentialID", kLimitedToken);
}

TEST_P(CscTest, BadRequestsAreRefusedWithTheirReason) {
  const std::string h = OpensslHash(MakeFile("a.bin", 1));
  json ok = {{"credentialID", "seal"},
             {"hashes", {h}},
             {"hashAlgorithmOID", kSha256},
             {"signAlgo", rsa() ? kRsaSha256 : kEcdsaSha256}};
  const int sealed_before = SealedRecords();
  auto with = [&](const std::string& key, const json& value) {
    json b = ok;
    b[key] = value;
    return b;
  };
  // A signAlgo of the other key type.
  ExpectRefused("signatures/signHash", with("signAlgo", rsa() ? kEcdsaSha256 : kRsaSha256), 400,
                "signAlgo");
  // SHA-1 is not offered; a hash OID that contradicts signAlgo; a hash of the wrong length.
  ExpectRefused("signatures/signHash", with("hashAlgorithmOID", kSha1), 400, "hashAlgorithmOID");
  ExpectRefused("signatures/signHash", with("hashAlgorithmOID", kSha384), 400, "hashAlgorithmOID");
  ExpectRefused("signatures/signHash", with("hashes", {h.substr(0, 40) + "===="}), 400, "hashes");
  ExpectRefused("signatures/signHash", with("hashes", {"not base64!"}), 400, "not base64");
  ExpectRefused("signatures/signHash", with("hashes", json::array()), 400, "hashes");
  ExpectRefused("signatures/signHash", with("hashes", std::vector<std::string>(1001, h)), 400,
                "more than 1000");
  ExpectRefused("signatures/signHash", with("operationMode", "A"), 400, "operationMode");
  json no_credential = ok;
  no_credential.erase("credentialID");
  ExpectRefused("signatures/signHash", no_credential, 400, "Missing parameter credentialID");
  ExpectRefused("signatures/signHash", with("credentialID", "nope"), 400, "credentialID");
  ExpectRefused("signatures/signHash", ok, 400, "credentialID", kLimitedToken);
  ExpectRefused("signatures/signHash", json("{not json"), 400, "JSON");
  ExpectRefused("signatures/signHash", ok, 401, "", "wrong-token");
  ExpectRefused("signatures/nope", ok, 404, "no such CSC method");
  ExpectRefused("signatures/signDoc",
                {{"credentialID", "seal"},
                 {"documents",
                  {{{"document", "AAAA"},
                    {"signAlgo", SignAlgo()},
                    {"signature_format", "P"},
                    {"signed_envelope_property", "Certification"}}}}},
                400, "certification");
  ExpectRefused("signatures/signDoc",
                {{"credentialID", "seal"},
                 {"documentDigests",
                  {{{"hashes", {h}},
                    {"hashAlgorithmOID", kSha256},
                    {"signAlgo", SignAlgo()},
                    {"signature_format", "C"},
                    {"conformance_level", "Ades-B-LT"}}}}},
                400, "conformance_level");
  auto [get_status, get_reply] = Call("signatures/signHash", json::object(), "", "GET");
  EXPECT_EQ(get_status, 405) << get_reply.dump();

  // None of these made a signature: no new sealed record in the audit trail.
  EXPECT_EQ(SealedRecords(), sealed_before);
  // And the valid request still works.
  auto [status, reply] = Call("signatures/signHash", ok);
  ASSERT_EQ(status, 200) << reply.dump();
  EXPECT_EQ(PkeyutlVerify(h, reply["signatures"][0], "sha256", false), "");
}

// The request shapes of the specification's examples (2.0.0.2, credentials/list and
// signatures/signHash): fields qseal does not use (userID, lang, SAD, clientData) are accepted.
TEST_P(CscTest, TheSpecificationsExampleRequestsAreAnswered) {
  auto [list_status, list] = Call("credentials/list", {{"userID", "4679"},
                                                       {"credentialInfo", true},
                                                       {"certificates", "chain"},
                                                       {"certInfo", true},
                                                       {"authInfo", true},
                                                       {"onlyValid", true},
                                                       {"lang", "en-US"},
                                                       {"clientData", "12345678"}});
  ASSERT_EQ(list_status, 200) << list.dump();
  EXPECT_EQ(list["onlyValid"], true);
  ASSERT_EQ(list["credentialInfos"].size(), 2u) << list.dump();
  const json& first = list["credentialInfos"][0];
  EXPECT_EQ(first["credentialID"], "seal");
  EXPECT_GE(first["cert"]["certificates"].size(), 2u) << first.dump();
  EXPECT_EQ(first["auth"]["mode"], "implicit");

  const std::string a = OpensslHash(MakeFile("a.bin", 5));
  const std::string b = OpensslHash(MakeFile("b.bin", 6));
  auto [status, reply] =
      Call("signatures/signHash", {{"credentialID", "seal"},
                                   {"SAD", "_TiHRG-bAH3XlFQZ3ndFhkXf9P24/CKN69L8gdSYp5_pw"},
                                   {"hashes", {a, b}},
                                   {"hashAlgorithmOID", kSha256},
                                   {"signAlgo", rsa() ? "1.2.840.113549.1.1.1" : kEcPublicKey},
                                   {"clientData", "12345678"}});
  ASSERT_EQ(status, 200) << reply.dump();
  ASSERT_EQ(reply["signatures"].size(), 2u);
  EXPECT_EQ(PkeyutlVerify(a, reply["signatures"][0]), "");
  EXPECT_EQ(PkeyutlVerify(b, reply["signatures"][1]), "");
}

// scripts/csc-sign-hash: curl, jq and openssl only. It fetches the certificate, signs a file's
// hash and verifies the signature itself; a client without the credential is refused.
TEST_P(CscTest, AnIndependentCurlAndOpensslClientSignsAndVerifies) {
  const std::string file = MakeFile("invoice.xml", 9, 4096);
  const std::string sig = tmp_->Sub("invoice.sig");
  const std::string script = std::string(QSEAL_SOURCE_DIR) + "/scripts/csc-sign-hash";
  testing::CommandResult r = RunCommand(qseald_->CliEnv() + script + " --out " + ShellQuote(sig) +
                                        " seal " + ShellQuote(file) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("signature verified"), std::string::npos) << r.output;
  // The signature it kept is over this file's hash only (checked here again, by openssl).
  const std::string sig_b64 = Base64OfFile(sig);
  EXPECT_EQ(PkeyutlVerify(OpensslHash(file), sig_b64), "");
  EXPECT_NE(PkeyutlVerify(OpensslHash(MakeFile("other.xml", 10, 4096)), sig_b64), "");

  const std::string limited = tmp_->Sub("limited-token");
  testing::WriteFile(limited, kLimitedToken);
  testing::CommandResult refused =
      RunCommand(qseald_->CliEnv() + "QSEAL_TOKEN_FILE=" + ShellQuote(limited) + " " + script +
                 " seal " + ShellQuote(file) + " 2>&1");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("HTTP 400"), std::string::npos) << refused.output;
  testing::CommandResult granted =
      RunCommand(qseald_->CliEnv() + "QSEAL_TOKEN_FILE=" + ShellQuote(limited) + " " + script +
                 " other " + ShellQuote(file) + " 2>&1");
  EXPECT_EQ(granted.exit_code, 0) << granted.output;
}

INSTANTIATE_TEST_SUITE_P(Keys, CscTest, ::testing::Values("ec-p256", "rsa-3072"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param == "ec-p256" ? std::string("Ec")
                                                                : std::string("Rsa");
                         });

}  // namespace
}  // namespace qseal
