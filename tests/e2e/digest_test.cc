// Digest-only sealing against a real qseald over HTTPS with SoftHSM2: POST /v1/digests with a
// digest made by openssl (an independent hasher), and qsealctl submit --digest-only; every seal
// checked with `openssl cms -verify -binary -content FILE` against the original file. Then the
// requests it must refuse, each with its status. QSEAL_DIGEST_LARGE=1 (the slow ctest entry)
// seals a 4 GiB sparse file and checks qsealctl's peak RSS.
#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/testing/qseald_harness.h"

namespace qseal {
namespace {

namespace fs = std::filesystem;
using testing::Qseald;
using testing::QsealdOptions;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

constexpr const char* kLimitedToken = "digest-limited-client-token";

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// openssl's digest of a file: base64 or hex.
std::string OpensslDigest(const std::string& path, const std::string& alg, bool hex) {
  std::string cmd = "openssl dgst -" + alg + " -binary " + ShellQuote(path) +
                    (hex ? " | od -An -v -tx1 | tr -d ' \\n'" : " | base64 -w0");
  return Trim(RunCommand(cmd).output);
}

std::string Qsealctl() { return std::string(QSEAL_BINARY_DIR) + "/cli/qsealctl"; }

class DigestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir();
    QsealdOptions o;
    o.edit_config = [](std::string& conf) {
      std::string hash =
          Trim(RunCommand("printf %s " + ShellQuote(kLimitedToken) + " | sha256sum | cut -d' ' -f1")
                   .output);
      conf += "\n[[client]]\nname = \"limited\"\ntoken_sha256 = \"" + hash +
              "\"\nprofiles = [\"invoice-p7m\"]\n";
    };
    qseald_ = new Qseald(tmp_->Sub("d"), o);
    Status s = qseald_->Start();
    ASSERT_TRUE(s.ok()) << s << qseald_->Stderr();
  }
  static void TearDownTestSuite() {
    if (qseald_ != nullptr) {
      EXPECT_EQ(qseald_->Stop(), 0) << qseald_->Stderr();
    }
    delete qseald_;
    delete tmp_;
  }

  // POST /v1/digests with `body`; returns the status and body.
  static std::pair<int, std::string> Post(const nlohmann::json& body, const std::string& query = "",
                                          const std::string& token = "",
                                          const std::string& key = "") {
    cli::HttpClient c = token.empty() ? qseald_->Client() : qseald_->Client(token);
    std::map<std::string, std::string> headers = {{"Content-Type", "application/json"}};
    if (!key.empty()) headers["Idempotency-Key"] = key;
    auto r = c.Request("POST", "/v1/digests" + query,
                       body.is_string() ? body.get<std::string>() : body.dump(), headers);
    if (!r.ok()) return {-1, r.status().ToString()};
    return {r->status, r->body};
  }

  static std::string MakeFile(const std::string& name, std::size_t size) {
    std::string path = tmp_->Sub(name);
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 131 + 7) % 251);
    testing::WriteFile(path, bytes);
    return path;
  }

  static inline TempDir* tmp_ = nullptr;
  static inline Qseald* qseald_ = nullptr;
};

TEST_F(DigestTest, DigestSealedByTheApiVerifiesAgainstTheOriginalFile) {
  std::string file = MakeFile("invoice.bin", 300 << 10);
  nlohmann::json body = {{"algorithm", "SHA-256"},
                         {"digest", OpensslDigest(file, "sha256", false)},
                         {"filename", "invoice.bin"},
                         {"media_type", "application/octet-stream"}};
  auto [status, reply] = Post(body, "?profile=default&wait=30", "", "digest-key-1");
  ASSERT_EQ(status, 200) << reply;
  auto j = nlohmann::json::parse(reply);
  ASSERT_EQ(j["status"], "sealed") << reply;
  EXPECT_EQ(j["digest_algorithm"], "sha256");
  EXPECT_EQ(j["name"], "invoice.bin");
  std::string id = j["id"];

  // The same Idempotency-Key and digest: the first id again.
  auto [again_status, again] = Post(body, "?profile=default", "", "digest-key-1");
  ASSERT_EQ(again_status, 202) << again;
  EXPECT_EQ(nlohmann::json::parse(again)["id"], id);
  EXPECT_EQ(nlohmann::json::parse(again)["duplicate"], true);
  // ... with another digest: refused as for documents.
  nlohmann::json other = body;
  other["digest_hex"] = std::string(64, 'a');
  other.erase("digest");
  EXPECT_EQ(Post(other, "?profile=default", "", "digest-key-1").first, 422);

  auto seal = qseald_->Client().Request("GET", "/v1/documents/" + id + "/seal");
  ASSERT_TRUE(seal.ok());
  ASSERT_EQ(seal->status, 200) << seal->body;
  EXPECT_EQ(seal->headers["content-type"], "application/pkcs7-signature");
  EXPECT_NE(seal->headers["content-disposition"].find("invoice.bin.p7s"), std::string::npos);
  testing::WriteFile(tmp_->Sub("invoice.bin.p7s"), seal->body);
  EXPECT_EQ(testing::OpensslVerify(tmp_->Sub("invoice.bin.p7s"), qseald_->ca_pem(), file), "");
  // And not against other bytes.
  std::string altered = MakeFile("altered.bin", (300 << 10) + 1);
  EXPECT_NE(testing::OpensslVerify(tmp_->Sub("invoice.bin.p7s"), qseald_->ca_pem(), altered), "");

  // The audit trail records the seal, with the digest it states.
  testing::CommandResult audit =
      RunCommand(Qsealctl() + " audit show --dir " + ShellQuote(qseald_->var() + "/audit") +
                 " --id " + id + " --event sealed");
  EXPECT_EQ(audit.exit_code, 0) << audit.output;
  EXPECT_NE(audit.output.find("digest-only sha256:" + OpensslDigest(file, "sha256", true)),
            std::string::npos)
      << audit.output;

  // Hex works as well, and the profile may be named in the body.
  nlohmann::json hex = {{"algorithm", "sha256"},
                        {"digest_hex", OpensslDigest(file, "sha256", true)},
                        {"profile", "default"}};
  auto [hex_status, hex_reply] = Post(hex, "?wait=30");
  ASSERT_EQ(hex_status, 200) << hex_reply;
  EXPECT_EQ(nlohmann::json::parse(hex_reply)["status"], "sealed") << hex_reply;
}

TEST_F(DigestTest, QsealctlDigestOnlyWritesASealThatVerifies) {
  std::string file = MakeFile("report.pdf", 2 << 20);
  std::string out = tmp_->Sub("seals");
  testing::CommandResult r = RunCommand(qseald_->CliEnv() + Qsealctl() + " submit --digest-only " +
                                        ShellQuote(file) + " --out " + ShellQuote(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("sealed"), std::string::npos) << r.output;
  ASSERT_TRUE(fs::exists(out + "/report.pdf.p7s")) << r.output;
  EXPECT_EQ(testing::OpensslVerify(out + "/report.pdf.p7s", qseald_->ca_pem(), file), "");
  // qsealctl's own verifier agrees.
  testing::CommandResult v =
      RunCommand(qseald_->CliEnv() + Qsealctl() + " verify " + ShellQuote(out + "/report.pdf.p7s") +
                 " --content " + ShellQuote(file) + " --ca " + qseald_->ca_pem());
  EXPECT_EQ(v.exit_code, 0) << v.output;

  // An enveloping profile cannot seal a digest: qsealctl reports the server's 422.
  testing::CommandResult env =
      RunCommand(qseald_->CliEnv() + Qsealctl() + " submit --digest-only --profile invoice-p7m " +
                 ShellQuote(file) + " --out " + ShellQuote(out));
  EXPECT_NE(env.exit_code, 0) << env.output;
  EXPECT_NE(env.output.find("422"), std::string::npos) << env.output;
}

TEST_F(DigestTest, BadRequestsAreRefusedBeforeAnythingIsQueued) {
  const std::string d32 = OpensslDigest(MakeFile("x.bin", 10), "sha256", false);
  auto expect = [](int want, const nlohmann::json& body, const std::string& query,
                   const std::string& token = "") {
    auto [status, reply] = Post(body, query, token);
    EXPECT_EQ(status, want) << body.dump() << " -> " << reply;
    if (status >= 400) {
      EXPECT_NE(reply.find("\"detail\""), std::string::npos) << reply;
    }
  };
  // Digest length must match the algorithm.
  expect(422, {{"algorithm", "sha256"}, {"digest_hex", std::string(62, 'a')}}, "");
  expect(422, {{"algorithm", "sha256"}, {"digest_hex", std::string(96, 'a')}}, "");
  expect(422, {{"algorithm", "sha512"}, {"digest", d32}}, "");
  // Unknown or refused algorithms.
  expect(422, {{"algorithm", "md5"}, {"digest_hex", std::string(32, 'a')}}, "");
  expect(422, {{"algorithm", "sha1"}, {"digest_hex", std::string(40, 'a')}}, "");
  expect(422, {{"digest", d32}}, "");
  // Bad encodings, no or both digests, wrong types.
  expect(422, {{"algorithm", "sha256"}, {"digest", "not base64!"}}, "");
  expect(422, {{"algorithm", "sha256"}, {"digest", d32.substr(0, d32.size() - 1)}}, "");
  expect(422, {{"algorithm", "sha256"}, {"digest_hex", std::string(63, 'a') + "z"}}, "");
  expect(422, {{"algorithm", "sha256"}}, "");
  expect(422, {{"algorithm", "sha256"}, {"digest", d32}, {"digest_hex", std::string(64, 'a')}}, "");
  expect(422, {{"algorithm", 256}, {"digest", d32}}, "");
  // Not JSON at all.
  expect(400, nlohmann::json("this is not json"), "");
  expect(400, nlohmann::json("[1,2]"), "");
  // A valid sha384 digest, but the profile seals sha256.
  expect(422,
         {{"algorithm", "sha384"}, {"digest_hex", std::string(96, 'b')}, {"profile", "default"}},
         "");
  // Profiles that embed or parse the document.
  expect(422, {{"algorithm", "sha256"}, {"digest", d32}}, "?profile=invoice-p7m");
  expect(422, {{"algorithm", "sha256"}, {"digest", d32}}, "?profile=invoice-xades");
  expect(422, {{"algorithm", "sha256"}, {"digest", d32}}, "?profile=pdf-pades");
  // Access: a profile not granted is 403 (as for documents), an unknown one 404, no token 401.
  expect(403, {{"algorithm", "sha256"}, {"digest", d32}}, "?profile=default", kLimitedToken);
  expect(403, {{"algorithm", "sha256"}, {"digest", d32}, {"profile", "default"}}, "",
         kLimitedToken);
  expect(404, {{"algorithm", "sha256"}, {"digest", d32}}, "?profile=no-such-profile");
  expect(401, {{"algorithm", "sha256"}, {"digest", d32}}, "", "wrong-token");
  // Only POST.
  auto get = qseald_->Client().Request("GET", "/v1/digests");
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->status, 405);
}

// The figure: a 4 GiB file sealed by its digest with qsealctl's peak RSS under 64 MiB,
// the seal verifying against the file. Sparse (truncate), so it costs no disk.
TEST_F(DigestTest, FourGibFileSealedByDigestWithBoundedClientMemory) {
  if (std::getenv("QSEAL_DIGEST_LARGE") == nullptr) {
    GTEST_SKIP() << "the slow ctest entry digest_large_e2e_test runs this (QSEAL_DIGEST_LARGE=1)";
  }
  std::string file = tmp_->Sub("big.bin");
  ASSERT_EQ(RunCommand("truncate -s 4G " + ShellQuote(file)).exit_code, 0);
  // A few non-zero bytes at both ends and in the middle.
  ASSERT_EQ(RunCommand("printf head | dd of=" + ShellQuote(file) +
                       " conv=notrunc status=none && printf middle | dd of=" + ShellQuote(file) +
                       " bs=1 seek=2147483648 conv=notrunc status=none && printf tail | dd of=" +
                       ShellQuote(file) + " bs=1 seek=4294967292 conv=notrunc status=none")
                .exit_code,
            0);
  ASSERT_EQ(fs::file_size(file), 4ull << 30);
  std::string out = tmp_->Sub("big-seals");
  testing::CommandResult r =
      RunCommand(qseald_->CliEnv() + "/usr/bin/time -f 'maxrss_kb=%M' " + Qsealctl() +
                 " submit --digest-only " + ShellQuote(file) + " --out " + ShellQuote(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::size_t at = r.output.find("maxrss_kb=");
  ASSERT_NE(at, std::string::npos) << r.output;
  long rss_kb = std::stol(r.output.substr(at + 10));
  std::cout << "qsealctl peak RSS for a 4 GiB digest-only submit: " << rss_kb << " KiB\n";
  EXPECT_LT(rss_kb, 64 * 1024) << r.output;
  EXPECT_EQ(testing::OpensslVerify(out + "/big.bin.p7s", qseald_->ca_pem(), file), "");
}

}  // namespace
}  // namespace qseal
