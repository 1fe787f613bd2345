// The audit trail against a real qseald (SoftHSM2 behind the p11shim, which counts C_Sign):
// every seal has exactly one `sealed` record whose digests match the seal (computed here from the
// seal itself, independently of qseald), no C_Sign runs without a durable `sign_intent`, the
// trail verifies with `qsealctl audit verify`, and a full audit disk stops sealing (not ready)
// until space is back.
#include <sys/mount.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/cms.h>
#include <openssl/evp.h>

#include "tests/p11shim/p11shim.h"
#include "tests/testing/qseald_harness.h"

namespace qseal {
namespace {

using testing::Qseald;
using testing::QsealdOptions;
using testing::TempDir;

std::string Sha256Hex(const unsigned char* data, std::size_t size) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data, size, md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}
std::string Sha256Hex(const std::string& s) {
  return Sha256Hex(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

// SHA-256 of the SignerInfo's signature value, parsed from the DER seal with OpenSSL's CMS code.
std::string SignatureSha256(const std::string& seal_der) {
  const auto* p = reinterpret_cast<const unsigned char*>(seal_der.data());
  CMS_ContentInfo* cms = d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(seal_der.size()));
  if (cms == nullptr) return "unparseable";
  STACK_OF(CMS_SignerInfo)* infos = CMS_get0_SignerInfos(cms);
  std::string out = "no signer";
  if (infos != nullptr && sk_CMS_SignerInfo_num(infos) == 1) {
    ASN1_OCTET_STRING* sig = CMS_SignerInfo_get0_signature(sk_CMS_SignerInfo_value(infos, 0));
    out = Sha256Hex(ASN1_STRING_get0_data(sig), static_cast<std::size_t>(ASN1_STRING_length(sig)));
  }
  CMS_ContentInfo_free(cms);
  return out;
}

std::string Qsealctl(const Qseald& q, const std::string& args, int* exit_code = nullptr) {
  testing::CommandResult r = testing::RunCommand(q.CliEnv() + std::string(QSEAL_BINARY_DIR) +
                                                 "/cli/qsealctl " + args + " 2>&1");
  if (exit_code != nullptr) *exit_code = r.exit_code;
  return r.output;
}

std::vector<nlohmann::json> AuditRecords(const Qseald& q, const std::string& args = "") {
  std::vector<nlohmann::json> out;
  std::istringstream in(Qsealctl(q, "audit show " + args));
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::size_t CountEvent(const std::vector<nlohmann::json>& records, const std::string& event) {
  std::size_t n = 0;
  for (const auto& r : records) n += r["event"] == event ? 1 : 0;
  return n;
}

void Replace(std::string& text, const std::string& from, const std::string& to) {
  std::size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
}

class AuditE2eTest : public ::testing::Test {
 protected:
  QsealdOptions Options(std::function<void(std::string&)> edit = nullptr) {
    shim_ = tmp_.Sub("shim.so");
    std::filesystem::copy_file(QSEAL_P11SHIM_PATH, shim_);
    QsealdOptions o;
    o.module = shim_;
    o.edit_config = [edit](std::string& conf) {
      Replace(conf, "checkpoint_records = 10000", "checkpoint_records = 16");
      Replace(conf, "retry_backoff = \"2s\"", "retry_backoff = \"100ms\"");
      if (edit) edit(conf);
    };
    return o;
  }
  std::uint64_t Signs() const { return p11shim::ReadCount(shim_ + ".counts", p11shim::kSign); }

  // Submits and returns the id, or "" (with a test failure) when not accepted.
  static std::string Submit(const Qseald& q, const std::string& body, const std::string& profile,
                            int wait_s) {
    auto r = q.Client().Request(
        "POST", "/v1/documents?profile=" + profile + "&wait=" + std::to_string(wait_s), body);
    EXPECT_TRUE(r.ok() && (r->status == 200 || r->status == 202)) << (r.ok() ? r->body : "");
    if (!r.ok()) return "";
    return nlohmann::json::parse(r->body)["id"].get<std::string>();
  }

  static std::string Status(const Qseald& q, const std::string& id) {
    auto r = q.Client().Request("GET", "/v1/documents/" + id);
    return r.ok() ? nlohmann::json::parse(r->body)["status"].get<std::string>() : "error";
  }

  // Fetches the seal, checks it with openssl, and returns its bytes.
  std::string FetchVerified(const Qseald& q, const std::string& id, const std::string& content,
                            bool detached) {
    std::string seal = tmp_.Sub(id + ".seal");
    std::string doc = tmp_.Sub(id + ".doc");
    testing::WriteFile(doc, content);
    auto r = q.Client().Download("/v1/documents/" + id + "/seal", seal);
    EXPECT_TRUE(r.ok() && r->status == 200);
    std::string out = tmp_.Sub(id + ".out");
    EXPECT_EQ(testing::OpensslVerify(seal, q.ca_pem(), detached ? doc : "", detached ? "" : out),
              "");
    if (!detached) {
      EXPECT_EQ(testing::ReadFile(out), content);
    }
    return testing::ReadFile(seal);
  }

  TempDir tmp_;
  std::string shim_;
};

TEST_F(AuditE2eTest, EverySealHasOneMatchingSealedRecord) {
  Qseald q(tmp_.Sub("d"), Options());
  ASSERT_TRUE(q.Start().ok()) << q.Stderr();
  std::uint64_t self_tests = Signs();  // startup self-test signatures carry no intent
  std::map<std::string, std::pair<std::string, bool>> docs;  // id -> content, detached
  for (int i = 0; i < 24; ++i) {
    std::string content = "invoice " + std::to_string(i) + " " + std::string(i * 37, 'x');
    bool detached = i % 3 != 0;
    std::string id = Submit(q, content, detached ? "default" : "invoice-p7m", 30);
    ASSERT_FALSE(id.empty());
    docs[id] = {content, detached};
  }
  cli::HttpClient wrong = q.Client("not-the-token");
  EXPECT_EQ(wrong.Request("POST", "/v1/documents?profile=default", "x")->status, 401);
  std::map<std::string, std::string> seals;
  for (const auto& [id, doc] : docs) seals[id] = FetchVerified(q, id, doc.first, doc.second);
  ASSERT_EQ(q.Stop(), 0) << q.Stderr();

  int rc = -1;
  std::string verified = Qsealctl(q, "audit verify", &rc);
  EXPECT_EQ(rc, 0) << verified;
  EXPECT_NE(verified.find("audit log verified"), std::string::npos) << verified;
  EXPECT_NE(verified.find("0 record(s) after the last checkpoint"), std::string::npos) << verified;
  EXPECT_NE(verified.find("no --key given: trusting"), std::string::npos) << verified;
  std::string with_key =
      Qsealctl(q, "audit verify --key " + q.var() + "/pki/audit-checkpoint.pem.pub.pem", &rc);
  EXPECT_EQ(rc, 0) << with_key;
  EXPECT_EQ(with_key.find("no --key given"), std::string::npos) << with_key;

  std::vector<nlohmann::json> records = AuditRecords(q);
  for (const auto& [id, doc] : docs) {
    std::vector<nlohmann::json> sealed = AuditRecords(q, "--event sealed --id " + id);
    ASSERT_EQ(sealed.size(), 1u) << id;
    EXPECT_EQ(sealed[0]["document_sha256"], Sha256Hex(doc.first)) << id;
    EXPECT_EQ(sealed[0]["signature_sha256"], SignatureSha256(seals[id])) << id;
    EXPECT_EQ(sealed[0]["key"], "seal");
    EXPECT_EQ(AuditRecords(q, "--event sign_intent --id " + id).size(), 1u) << id;
  }
  std::uint64_t signs = Signs() - self_tests;
  EXPECT_GE(signs, docs.size());
  EXPECT_LE(signs, CountEvent(records, "sign_intent"));
  EXPECT_EQ(CountEvent(records, "startup"), 1u);
  EXPECT_EQ(CountEvent(records, "config_loaded"), 1u);
  EXPECT_EQ(CountEvent(records, "shutdown"), 1u);
  EXPECT_GE(CountEvent(records, "auth_denied"), 1u);
  EXPECT_GE(CountEvent(records, "partition_up"), 2u);
  EXPECT_GE(CountEvent(records, "checkpoint"), 3u);
  EXPECT_EQ(records.front()["event"], "segment_start");

  // Tampering with the file qseald wrote is found by the CLI.
  std::string dir = q.var() + "/audit";
  std::string seg =
      dir + "/" + std::filesystem::directory_iterator(dir)->path().filename().string();
  std::string text = testing::ReadFile(seg);
  std::size_t at = text.find("\"event\":\"sealed\"");
  ASSERT_NE(at, std::string::npos);
  std::size_t sig = text.find("\"signature_sha256\":\"", at) + 20;
  text[sig] = text[sig] == '0' ? '1' : '0';
  testing::WriteFile(seg, text);
  std::string bad = Qsealctl(q, "audit verify", &rc);
  EXPECT_EQ(rc, 65) << bad;
  EXPECT_NE(bad.find("hash mismatch"), std::string::npos) << bad;
}

// Issue 19 item 2 through a real qseald: the checkpoint key deleted under an existing trail
// refuses the start (exit 78, saying why) instead of a silent new key; `--new-audit-key` starts
// one, the trail records it with the old and the new key_id (the old one computed here by
// openssl from the old public key), and the new public key verifies the segments from there on.
TEST_F(AuditE2eTest, MissingCheckpointKeyRefusesTheStartUnlessANewKeyIsAskedFor) {
  Qseald q(tmp_.Sub("d"), Options());
  ASSERT_TRUE(q.Start().ok()) << q.Stderr();
  ASSERT_EQ(q.Stop(), 0) << q.Stderr();
  const std::string key = q.var() + "/pki/audit-checkpoint.pem";
  const std::string pub = key + ".pub.pem";
  auto key_id = [](const std::string& pem) {
    testing::CommandResult r =
        testing::RunCommand("openssl pkey -pubin -in " + testing::ShellQuote(pem) +
                            " -outform DER | sha256sum | cut -c1-64");
    return r.exit_code == 0 && r.output.size() > 64 ? r.output.substr(0, 64) : "openssl failed";
  };
  const std::string old_id = key_id(pub);
  ASSERT_EQ(old_id.size(), 64u) << old_id;
  ASSERT_TRUE(std::filesystem::remove(key));

  EXPECT_FALSE(q.Start().ok());
  EXPECT_EQ(q.process().Wait(std::chrono::seconds(30)), 78) << q.Stderr();
  EXPECT_NE(q.Stderr().find("is missing but"), std::string::npos) << q.Stderr();
  EXPECT_NE(q.Stderr().find("--new-audit-key"), std::string::npos) << q.Stderr();
  EXPECT_FALSE(std::filesystem::exists(key));

  q.options().extra_args = {"--new-audit-key"};
  ASSERT_TRUE(q.Start().ok()) << q.Stderr();
  std::string id = Submit(q, "after the new key", "default", 30);
  ASSERT_FALSE(id.empty());
  FetchVerified(q, id, "after the new key", true);
  ASSERT_EQ(q.Stop(), 0) << q.Stderr();
  const std::string new_id = key_id(pub);
  ASSERT_EQ(new_id.size(), 64u) << new_id;
  EXPECT_NE(new_id, old_id);
  EXPECT_EQ(key_id(key + "." + old_id.substr(0, 16) + ".pub.pem"), old_id);

  std::vector<nlohmann::json> changes = AuditRecords(q, "--event checkpoint_key_new");
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0]["detail"], "old key_id=" + old_id + "; new key_id=" + new_id);
  const std::string from = std::to_string(changes[0]["seq"].get<std::uint64_t>() - 1);
  int rc = -1;
  std::string after = Qsealctl(q, "audit verify --key " + pub + " --from " + from, &rc);
  EXPECT_EQ(rc, 0) << after;
  EXPECT_NE(after.find("audit log verified"), std::string::npos) << after;
  std::string whole = Qsealctl(q, "audit verify --key " + pub, &rc);
  EXPECT_NE(rc, 0) << whole;  // the first segment's checkpoints are the old key's
  EXPECT_NE(whole.find("unknown key " + old_id), std::string::npos) << whole;
}

// An Idempotency-Key reused for other content is refused (422) with an audit record that names
// the client and the source address, for one document and for a batch part alike.
TEST_F(AuditE2eTest, IdempotencyConflictRefusalNamesClientAndSource) {
  Qseald q(tmp_.Sub("d"), Options());
  ASSERT_TRUE(q.Start().ok()) << q.Stderr();
  auto c = q.Client();
  auto first = c.Request("POST", "/v1/documents?profile=default", "first content",
                         {{"Idempotency-Key", "conflict-1"}});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->status, 202) << first->body;
  auto again = c.Request("POST", "/v1/documents?profile=default", "other content",
                         {{"Idempotency-Key", "conflict-1"}});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->status, 422) << again->body;
  const std::string boundary = "qseal-conflict-b";
  const std::string batch = "--" + boundary +
                            "\r\nIdempotency-Key: conflict-1\r\n\r\nbatch content\r\n--" +
                            boundary + "--\r\n";
  auto part = c.Request("POST", "/v1/batches?profile=default", batch,
                        {{"Content-Type", "multipart/mixed; boundary=" + boundary}});
  ASSERT_TRUE(part.ok()) << part.status();
  EXPECT_NE(part->body.find("Idempotency-Key was used before"), std::string::npos) << part->body;

  std::vector<nlohmann::json> refused;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    refused = AuditRecords(q, "--event rejected");
    std::erase_if(refused, [](const nlohmann::json& r) {
      return r.value("detail", "").find("Idempotency-Key reused") == std::string::npos;
    });
    if (refused.size() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(refused.size(), 2u);
  for (const auto& r : refused) {
    EXPECT_EQ(r.value("source", ""), "127.0.0.1") << r.dump();
    EXPECT_EQ(r.value("client", ""), "default") << r.dump();
  }
  ASSERT_EQ(q.Stop(), 0) << q.Stderr();
}

// A checkpoint key swapped while qseald is stopped (key and public key replaced by another P-256
// pair, as someone who can write the trail's directory would do) is not noticed by qseald, which
// cannot tell; `qsealctl audit verify --key` with the operator's copy of the public key fails at
// the first checkpoint the swapped key made, naming that key. Without --key it says it trusts the
// file beside the trail.
TEST_F(AuditE2eTest, SwappedCheckpointKeyIsDetectedWithTheOperatorsKey) {
  Qseald q(tmp_.Sub("d"), Options());
  ASSERT_TRUE(q.Start().ok()) << q.Stderr();
  std::string id = Submit(q, "before the swap", "default", 30);
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(q.Stop(), 0) << q.Stderr();
  const std::string key = q.var() + "/pki/audit-checkpoint.pem";
  const std::string pub = key + ".pub.pem";
  const std::string operators_copy = tmp_.Sub("operator-audit.pub.pem");
  std::filesystem::copy_file(pub, operators_copy);
  int rc = -1;
  std::string before = Qsealctl(q, "audit verify --key " + operators_copy, &rc);
  ASSERT_EQ(rc, 0) << before;

  testing::CommandResult swap = testing::RunCommand(
      "umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " +
      testing::ShellQuote(key) + " && openssl pkey -in " + testing::ShellQuote(key) +
      " -pubout -out " + testing::ShellQuote(pub) + " 2>&1");
  ASSERT_EQ(swap.exit_code, 0) << swap.output;
  testing::CommandResult swapped_id = testing::RunCommand(
      "openssl pkey -pubin -in " + testing::ShellQuote(pub) + " -outform DER | sha256sum");
  ASSERT_GE(swapped_id.output.size(), 64u);

  // qseald notices a swap of both files (the trail's newest segment names the key it was signed
  // with) and refuses to start; whoever can also pass --new-audit-key gets a recorded new key,
  // which the operator's copy then exposes.
  testing::CommandResult refused = q.Run("");
  EXPECT_EQ(refused.exit_code, 78) << refused.output;
  EXPECT_NE(refused.output.find("is not the one"), std::string::npos) << refused.output;
  q.options().extra_args = {"--new-audit-key"};
  ASSERT_TRUE(q.Start().ok()) << q.Stderr();
  id = Submit(q, "after the swap", "default", 30);
  ASSERT_FALSE(id.empty());
  FetchVerified(q, id, "after the swap", true);
  ASSERT_EQ(q.Stop(), 0) << q.Stderr();

  std::string with_key = Qsealctl(q, "audit verify --key " + operators_copy, &rc);
  EXPECT_NE(rc, 0) << with_key;
  EXPECT_NE(with_key.find("unknown key " + swapped_id.output.substr(0, 64)), std::string::npos)
      << with_key;
  std::string beside = Qsealctl(q, "audit verify", &rc);
  EXPECT_NE(beside.find("the key beside the trail; give the operator's copy with --key"),
            std::string::npos)
      << beside;
}

// The checkpoint key in the HSM (`checkpoint_key = "key:seal"`: the test token's only key): the
// checkpoints are signed through the signer, no key file is made, `qsealctl audit verify --key`
// with the key's certificate accepts the trail and with another public key refuses it.
TEST_F(AuditE2eTest, CheckpointKeyInTheHsmSignsTheTrailThroughTheSigner) {
  Qseald q(tmp_.Sub("d"), Options([](std::string& conf) {
             const std::size_t at = conf.find("\ncheckpoint_key = ");
             ASSERT_NE(at, std::string::npos);
             conf.replace(at + 1, conf.find('\n', at + 1) - at - 1,
                          "checkpoint_key = \"key:seal\"");
           }));
  ASSERT_TRUE(q.Start().ok()) << q.Stderr();
  const std::uint64_t signs_at_start = Signs();
  constexpr int kDocs = 40;
  for (int i = 0; i < kDocs; ++i) {
    std::string id = Submit(q, "hsm checkpoint " + std::to_string(i), "default", 30);
    ASSERT_FALSE(id.empty());
  }
  ASSERT_EQ(q.Stop(), 0) << q.Stderr();
  EXPECT_FALSE(std::filesystem::exists(q.var() + "/pki/audit-checkpoint.pem"));
  const std::size_t checkpoints = CountEvent(AuditRecords(q), "checkpoint");
  EXPECT_GE(checkpoints, 2u);  // every 16 records, and one at the stop
  // Each checkpoint was one more C_Sign through the shim.
  EXPECT_GE(Signs() - signs_at_start, kDocs + checkpoints);
  int rc = -1;
  std::string ok = Qsealctl(q, "audit verify --key " + q.var() + "/pki/seal.pem", &rc);
  EXPECT_EQ(rc, 0) << ok;
  std::string other = Qsealctl(q, "audit verify --key " + q.ca_pem(), &rc);
  EXPECT_NE(rc, 0) << other;
  EXPECT_NE(other.find("unknown key"), std::string::npos) << other;
}

// The signer's partition state changes reach the trail: both partitions down (the shim answers
// CKR_DEVICE_ERROR), then up again.
TEST_F(AuditE2eTest, PartitionDownAndUpAreRecorded) {
  Qseald q(tmp_.Sub("d"), Options([](std::string& conf) {
             Replace(conf, "reinit_interval = \"30s\"", "reinit_interval = \"200ms\"");
           }));
  ASSERT_TRUE(q.Start().ok()) << q.Stderr();
  auto count = [&](const std::string& event) { return AuditRecords(q, "--event " + event).size(); };
  auto wait_for = [&](const std::string& event, std::size_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (count(event) < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return count(event);
  };
  std::size_t up = wait_for("partition_up", 2);
  EXPECT_EQ(up, 2u);
  EXPECT_EQ(count("partition_down"), 0u);
  p11shim::WriteConfig(shim_ + ".conf", "down=1\n");
  std::string id = Submit(q, "while down", "default", 0);
  EXPECT_GE(wait_for("partition_down", 1), 1u);
  p11shim::WriteConfig(shim_ + ".conf", "down=0\n");
  EXPECT_GE(wait_for("partition_up", up + 1), up + 1);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (Status(q, id) != "sealed" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(Status(q, id), "sealed");
  FetchVerified(q, id, "while down", true);
  ASSERT_EQ(q.Stop(), 0) << q.Stderr();
  int rc = -1;
  std::string verified = Qsealctl(q, "audit verify", &rc);
  EXPECT_EQ(rc, 0) << verified;
}

// A flood of bad tokens: at most the burst plus the rate get records of their own, the rest are
// counted into later records, and every refusal is accounted for, with its source address; the
// flood signs nothing. The limit is per caller: a real client refused right after the flood (its
// profile not granted) still gets its own record.
TEST_F(AuditE2eTest, AuthDeniedFloodIsRateLimitedButEveryRefusalIsCounted) {
  Qseald q(tmp_.Sub("d"), Options([](std::string& conf) {
             Replace(conf, "refusal_records_per_second = 10", "refusal_records_per_second = 5");
             Replace(conf, "refusal_burst = 100", "refusal_burst = 20");
             conf += "\n[[client]]\nname = \"limited\"\ntoken_sha256 = \"" +
                     Sha256Hex("limited-token") + "\"\nprofiles = [\"invoice-p7m\"]\n";
           }));
  ASSERT_TRUE(q.Start().ok()) << q.Stderr();
  const std::uint64_t signs = Signs();
  constexpr int kRefusals = 400;
  cli::HttpClient intruder = q.Client("not-the-token");
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRefusals; ++i) {
    auto r = intruder.Request("POST", "/v1/documents?profile=default", "x");
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 401);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto refused = q.Client("limited-token").Request("POST", "/v1/documents?profile=default", "x");
  ASSERT_TRUE(refused.ok()) << refused.status();
  ASSERT_EQ(refused->status, 403);
  // Every refusal shows up: one per record, plus the counts that records and summaries carry.
  auto accounted = [&](std::size_t* records) {
    std::vector<nlohmann::json> denied = AuditRecords(q, "--event auth_denied");
    std::erase_if(denied, [](const nlohmann::json& r) { return r.value("client", "") != ""; });
    *records = denied.size();
    std::uint64_t total = 0;
    for (const auto& r : denied) {
      EXPECT_EQ(r.value("source", ""), "127.0.0.1") << r.dump();
      const std::string detail = r.value("detail", "");
      const std::size_t at = detail.find(" refusals of this kind not recorded");
      if (at == std::string::npos) {
        ++total;
        continue;
      }
      std::size_t begin = detail.find_last_of(" ,", at - 1);
      begin = begin == std::string::npos ? 0 : begin + 1;
      total += std::stoull(detail.substr(begin, at - begin));
      if (detail.rfind("; before it,", std::string::npos) != std::string::npos) ++total;
    }
    return total;
  };
  std::size_t records = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (accounted(&records) < kRefusals && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(accounted(&records), static_cast<std::uint64_t>(kRefusals));
  // Individual records: the burst, the refill during the flood, one summary per second after it.
  EXPECT_LE(records,
            20 + static_cast<std::size_t>(5 * seconds) + 1 + static_cast<std::size_t>(seconds) + 3)
      << seconds << " s";
  EXPECT_LT(records, static_cast<std::size_t>(kRefusals) / 4);
  std::vector<nlohmann::json> limited = AuditRecords(q, "--event auth_denied");
  std::erase_if(limited,
                [](const nlohmann::json& r) { return r.value("client", "") != "limited"; });
  ASSERT_EQ(limited.size(), 1u);
  EXPECT_EQ(limited[0].value("profile", ""), "default");
  EXPECT_EQ(limited[0].value("source", ""), "127.0.0.1");
  EXPECT_EQ(limited[0].value("detail", ""), "profile not granted");
  EXPECT_EQ(Signs(), signs);
  ASSERT_EQ(q.Stop(), 0) << q.Stderr();
  int rc = -1;
  std::string verified = Qsealctl(q, "audit verify", &rc);
  EXPECT_EQ(rc, 0) << verified;
}

// Fail closed: the audit directory on a small tmpfs fills up; sealing stops and /readyz says not
// ready; once space is back qseald is ready again and every accepted document gets sealed.
TEST_F(AuditE2eTest, FullAuditDiskStopsSealingUntilWritable) {
  std::string audit_dir = tmp_.Sub("auditfs");
  std::filesystem::create_directories(audit_dir);
  if (::mount("tmpfs", audit_dir.c_str(), "tmpfs", 0, "size=256k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs (needs root)";
  }
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{audit_dir};
  Qseald q(tmp_.Sub("d"), Options([&](std::string& conf) {
             Replace(conf, "dir = \"${QSEAL_VAR:-var}/audit\"", "dir = \"" + audit_dir + "\"");
             // A full disk must show within a few records, not a MiB later.
             Replace(conf, "preallocate_bytes = \"1MiB\"", "preallocate_bytes = \"4KiB\"");
           }));
  ASSERT_TRUE(q.Start().ok()) << q.Stderr();
  std::uint64_t self_tests = Signs();
  std::map<std::string, std::string> docs;
  std::string first = Submit(q, "before", "default", 30);
  docs[first] = "before";
  EXPECT_EQ(Status(q, first), "sealed");

  {
    std::ofstream filler(audit_dir + "/filler", std::ios::binary);
    std::string block(4096, 'x');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size())) &&
           filler.flush()) {
    }
  }
  auto ready = [&] { return q.Client().Request("GET", "/readyz")->status == 200; };
  // The last page of the segment may still take a few records: submit until a write fails.
  for (int i = 0; i < 200 && ready(); ++i) {
    std::string content = "during " + std::to_string(i);
    docs[Submit(q, content, "default", 0)] = content;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_FALSE(ready()) << "the audit disk never filled";
  auto readyz = q.Client().Request("GET", "/readyz");
  EXPECT_NE(readyz->body.find("audit"), std::string::npos) << readyz->body;
  {
    cli::HttpClient scraper(q.metrics(), "", std::chrono::seconds(10));
    auto scrape = scraper.Request("GET", "/metrics");
    ASSERT_TRUE(scrape.ok()) << scrape.status();
    EXPECT_NE(scrape->body.find("\nqseal_audit_healthy 0\n"), std::string::npos) << scrape->body;
  }

  // Not ready: documents are still accepted (they wait in the queue) but none is signed.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // in-flight signatures settle
  std::uint64_t signs = Signs();
  std::vector<std::string> waiting;
  for (int i = 0; i < 3; ++i) {
    std::string content = "while full " + std::to_string(i);
    waiting.push_back(Submit(q, content, "default", 0));
    docs[waiting.back()] = content;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(Signs(), signs);
  for (const auto& id : waiting) EXPECT_NE(Status(q, id), "sealed");

  std::filesystem::remove(audit_dir + "/filler");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!ready() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(ready()) << q.Stderr();
  for (const auto& [id, content] : docs) {
    while (Status(q, id) != "sealed" && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(Status(q, id), "sealed") << id;
    FetchVerified(q, id, content, true);
  }
  ASSERT_EQ(q.Stop(), 0) << q.Stderr();
  int rc = -1;
  std::string verified = Qsealctl(q, "audit verify --dir " + audit_dir, &rc);
  EXPECT_EQ(rc, 0) << verified;
  std::vector<nlohmann::json> records = AuditRecords(q, "--dir " + audit_dir);
  for (const auto& [id, content] : docs) {
    EXPECT_EQ(AuditRecords(q, "--dir " + audit_dir + " --event sealed --id " + id).size(), 1u)
        << id;
  }
  // No signature without a durable intent, across the failure too.
  EXPECT_LE(Signs() - self_tests, CountEvent(records, "sign_intent"));
}

}  // namespace
}  // namespace qseal
