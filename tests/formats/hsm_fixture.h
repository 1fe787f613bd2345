// Shared by the SoftHSM2-backed formats tests: one SoftHSM2 directory per test process holding
// an RSA-3072, a P-256 and a P-384 key (tests/testing provisioning), sealing a file through it,
// and the independent checks with the openssl CLI. Header-only, test-only; not thread-safe.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <iomanip>
#include <map>
#include <memory>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "formats/cades/cades.h"
#include "formats/cades/verify.h"
#include "tests/formats/cades_test_util.h"
#include "tests/formats/p11_test_signer.h"
#include "tests/testing/testing.h"

namespace qseal::formats::cades::hsmtest {

using formats::testing::FileReader;
using formats::testing::FileWriter;
using formats::testing::P11TestSigner;
using formats::testing::Sh;
using qseal::testing::ShellQuote;
using std::chrono::system_clock;

struct KeyKind {
  std::string name;      // test name part
  std::string key_type;  // provision-softhsm --key-type
  std::string label;     // token and key label
  SignatureScheme scheme;
  DigestAlgorithm digest;
};

inline const KeyKind kRsaPkcs1{"RsaPkcs1", "rsa-3072", "rsa", SignatureScheme::kRsaPkcs1v15,
                               DigestAlgorithm::kSha256};
inline const KeyKind kRsaPss{"RsaPss", "rsa-3072", "rsa", SignatureScheme::kRsaPss,
                             DigestAlgorithm::kSha256};
inline const KeyKind kP256{"EcdsaP256", "ec-p256", "p256", SignatureScheme::kEcdsa,
                           DigestAlgorithm::kSha256};
inline const KeyKind kP384{"EcdsaP384", "ec-p384", "p384", SignatureScheme::kEcdsa,
                           DigestAlgorithm::kSha256};

// One SoftHSM2 directory per test process (gtest_discover_tests runs each test in its own
// process) holding the three keys: RSA-3072, P-256, P-384; removed by HsmEnvironment at exit.
class Hsm {
 public:
  // The first call provisions the keys with these token/key labels ("rsa", "p256", "p384");
  // later calls return the same instance whatever they ask for.
  static Hsm& Get(const std::vector<std::string>& labels = {"rsa", "p256", "p384"}) {
    if (!instance_) instance_.reset(new Hsm(labels));
    return *instance_;
  }
  // Closes the sessions (the module-initialising signer last) and removes the directory.
  static void Reset() { instance_.reset(); }

  ~Hsm() {
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) keys_.at(*it).signer.reset();
  }

  // All keys are provisioned before the module is first initialised: SoftHSM2 only sees the
  // tokens that exist at C_Initialize.
  explicit Hsm(const std::vector<std::string>& labels) {
    const std::map<std::string, std::string> kTypes = {
        {"rsa", "rsa-3072"}, {"p256", "ec-p256"}, {"p384", "ec-p384"}};
    std::vector<std::pair<std::string, std::string>> kinds;
    for (const std::string& label : labels) kinds.emplace_back(label, kTypes.at(label));
    std::vector<qseal::testing::SoftHsm> provs;
    for (const auto& [label, type] : kinds) {
      auto prov = qseal::testing::ProvisionSoftHsm(dir_.Sub("hsm"), {label}, type, label);
      if (!prov.ok()) {
        ADD_FAILURE() << prov.status();
        std::abort();
      }
      provs.push_back(*prov);
    }
    for (std::size_t i = 0; i < kinds.size(); ++i) {
      const std::string& label = kinds[i].first;
      const auto& prov = provs[i];
      ca_pem_ = prov.ca_pem;
      Key key;
      auto signer = P11TestSigner::Open(prov.module, label, prov.pin, label);
      if (!signer.ok()) {
        ADD_FAILURE() << signer.status();
        std::abort();
      }
      key.signer = std::move(signer).value();
      key.chain_pem = prov.ChainPem(label);
      key.cert_pem = prov.CertPem(label);
      key.chain = formats::testing::LoadPemCertificates(key.chain_pem);
      keys_.emplace(label, std::move(key));
      order_.push_back(label);
    }
  }

  struct Key {
    std::unique_ptr<P11TestSigner> signer;
    std::vector<Bytes> chain;
    std::string chain_pem;
    std::string cert_pem;
  };

  Key& For(const KeyKind& kind) { return keys_.at(kind.label); }

  const std::string& ca_pem() const { return ca_pem_; }
  std::string Sub(const std::string& name) const { return dir_.Sub(name); }

 private:
  static inline std::unique_ptr<Hsm> instance_;
  qseal::testing::TempDir dir_;
  std::string ca_pem_;
  std::map<std::string, Key> keys_;
  std::vector<std::string> order_;
};

class HsmEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { Hsm::Reset(); }
};

inline std::string Hex(ByteSpan b) { return HexEncode(b); }

inline std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// First whitespace-separated field of a command's output (e.g. sha256sum).
inline std::string FirstField(const std::string& output) {
  return output.substr(0, output.find(' '));
}

inline system_clock::time_point ParseIsoZ(const std::string& s) {  // "2026-11-25 21:58:37Z"
  std::tm tm{};
  std::istringstream in(s);
  in >> std::get_time(&tm, "%Y-%m-%d %H:%M:%S");
  return system_clock::from_time_t(timegm(&tm));
}

inline system_clock::time_point ParseAsn1Time(
    const std::string& s) {  // UTCTIME / GENERALIZEDTIME text
  std::string full = s.size() == 13 ? (std::stoi(s.substr(0, 2)) >= 50 ? "19" : "20") + s : s;
  std::tm tm{};
  std::istringstream in(full.substr(0, 14));
  in >> std::get_time(&tm, "%Y%m%d%H%M%S");
  return system_clock::from_time_t(timegm(&tm));
}

// A sealed document and where things are.
struct Sealed {
  std::string doc;
  std::string seal;
  Packaging packaging;
  Bytes content_digest;
  ToBeSigned tbs;
};

inline Sealed SealFile(const KeyKind& kind, const std::string& doc, Packaging packaging,
                       const std::string& seal_path,
                       const std::vector<Bytes>* chain_override = nullptr) {
  Hsm::Key& key = Hsm::Get().For(kind);
  auto ctx =
      SignerContext::Create(chain_override ? *chain_override : key.chain, kind.digest, kind.scheme);
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  Sealed s{doc, seal_path, packaging, {}, {}};
  auto digest = formats::testing::DigestFile(doc, kind.digest);
  EXPECT_TRUE(digest.ok());
  s.content_digest = *digest;
  auto tbs = BuildToBeSigned(**ctx, *digest, system_clock::now());
  EXPECT_TRUE(tbs.ok()) << tbs.status();
  s.tbs = *tbs;
  auto sig = key.signer->Sign(tbs->digest, kind.digest, kind.scheme);
  EXPECT_TRUE(sig.ok()) << sig.status();
  if (chain_override == nullptr) {
    EXPECT_TRUE((*ctx)->VerifySignature(tbs->signed_attributes_der, *sig).ok());
  }
  if (packaging == Packaging::kDetached) {
    auto seal = AssembleDetached(**ctx, *tbs, *sig);
    EXPECT_TRUE(seal.ok()) << seal.status();
    formats::testing::WriteBinaryFile(seal_path, *seal);
  } else {
    struct stat st {};
    EXPECT_EQ(stat(doc.c_str(), &st), 0);
    auto size = static_cast<std::uint64_t>(st.st_size);
    Status st2 =
        AssembleEnveloping(**ctx, *tbs, *sig, size, FileReader(doc), FileWriter(seal_path));
    EXPECT_TRUE(st2.ok()) << st2;
    struct stat out {};
    EXPECT_EQ(stat(seal_path.c_str(), &out), 0);
    EXPECT_EQ(static_cast<std::uint64_t>(out.st_size),
              EnvelopingSealSize(**ctx, *tbs, sig->size(), size));
  }
  return s;
}

inline formats::testing::Cmd OpensslVerify(const Sealed& s, const std::string& ca_pem,
                                           const std::string& content, const std::string& out) {
  std::string cmd = "openssl cms -verify -binary -inform DER -in " + ShellQuote(s.seal) +
                    " -CAfile " + ShellQuote(ca_pem) + " -out " + ShellQuote(out);
  if (s.packaging == Packaging::kDetached) cmd += " -content " + ShellQuote(content);
  return Sh(cmd);
}

inline Result<VerifyReport> OurVerify(const Sealed& s, const std::string& ca_pem,
                                      const std::string& content) {
  std::optional<ReadFn> reader;
  if (s.packaging == Packaging::kDetached) reader = FileReader(content);
  return Verify(formats::testing::ReadBinaryFile(s.seal), reader,
                formats::testing::LoadPemCertificates(ca_pem));
}

inline std::string Describe(const VerifyReport& r) {
  std::string out;
  for (const Check& c : r.checks) out += c.name + (c.ok ? " ok: " : " FAILED: ") + c.detail + "\n";
  return out;
}

// Reads the signed attributes back with `openssl asn1parse` and checks each B-B attribute is
// present exactly once and correct against sha256sum of the content and the certificate.
inline void CheckAttributesWithOpenssl(const Sealed& s, const KeyKind& kind) {
  Hsm::Key& key = Hsm::Get().For(kind);
  // Long lines (the eContent hex dump) are cut: every value checked here fits.
  auto parsed = Sh("openssl asn1parse -inform DER -in " + ShellQuote(s.seal) + " | cut -c1-400");
  ASSERT_EQ(parsed.exit_code, 0) << parsed.output;
  std::vector<std::string> lines;
  std::istringstream in(parsed.output);
  for (std::string line; std::getline(in, line);) lines.push_back(line);

  auto find_all = [&](const std::regex& re) {
    std::vector<std::size_t> at;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (std::regex_search(lines[i], re)) at.push_back(i);
    }
    return at;
  };
  // Value of the first line at or after `from` matching `re` (group 1).
  auto next_value = [&](std::size_t from, const std::regex& re) -> std::string {
    std::smatch m;
    for (std::size_t i = from; i < lines.size() && i < from + 60; ++i) {
      if (std::regex_search(lines[i], m, re)) return m[1];
    }
    return "";
  };
  const std::regex hex_dump(R"(OCTET STRING\s+\[HEX DUMP\]:([0-9A-F]+))");

  auto content_type = find_all(std::regex(R"(OBJECT\s+:contentType\s*$)"));
  auto message_digest = find_all(std::regex(R"(OBJECT\s+:messageDigest\s*$)"));
  auto signing_time = find_all(std::regex(R"(OBJECT\s+:signingTime\s*$)"));
  auto signing_cert = find_all(std::regex(R"(OBJECT\s+:.*[Ss]igning ?[Cc]ertificate ?V2\s*$)"));
  ASSERT_EQ(content_type.size(), 1u) << parsed.output.substr(0, 8000);
  ASSERT_EQ(message_digest.size(), 1u);
  ASSERT_EQ(signing_time.size(), 1u);
  ASSERT_EQ(signing_cert.size(), 1u);
  EXPECT_TRUE(find_all(std::regex(R"(OBJECT\s+:.*[Ss]igning ?[Cc]ertificate\s*$)")).empty());

  EXPECT_EQ(next_value(content_type[0] + 1, std::regex(R"(OBJECT\s+:(\S+))")), "pkcs7-data");

  auto sha256sum = Sh("sha256sum " + ShellQuote(s.doc));
  ASSERT_EQ(sha256sum.exit_code, 0);
  EXPECT_EQ(Lower(next_value(message_digest[0] + 1, hex_dump)), FirstField(sha256sum.output));

  std::string time_text =
      next_value(signing_time[0] + 1, std::regex(R"((?:UTCTIME|GENERALIZEDTIME)\s+:(\d+Z))"));
  ASSERT_FALSE(time_text.empty());
  auto dates = Sh("openssl x509 -noout -startdate -enddate -dateopt iso_8601 -in " +
                  ShellQuote(key.cert_pem));
  ASSERT_EQ(dates.exit_code, 0) << dates.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(dates.output, m, std::regex(R"(notBefore=(.*Z))")));
  auto not_before = ParseIsoZ(m[1]);
  ASSERT_TRUE(std::regex_search(dates.output, m, std::regex(R"(notAfter=(.*Z))")));
  auto not_after = ParseIsoZ(m[1]);
  auto t = ParseAsn1Time(time_text);
  EXPECT_GE(t, not_before) << time_text;
  EXPECT_LE(t, not_after) << time_text;
  EXPECT_EQ(t, s.tbs.signing_time);

  auto cert_hash = Sh("openssl x509 -outform DER -in " + ShellQuote(key.cert_pem) + " | sha256sum");
  ASSERT_EQ(cert_hash.exit_code, 0);
  EXPECT_EQ(Lower(next_value(signing_cert[0] + 1, hex_dump)), FirstField(cert_hash.output));

  // ESSCertIDv2.issuerSerial names the signer certificate's serial.
  auto serial = Sh("openssl x509 -noout -serial -in " + ShellQuote(key.cert_pem));
  ASSERT_TRUE(std::regex_search(serial.output, m, std::regex(R"(serial=([0-9A-F]+))")));
  std::string serial_hex = m[1];
  std::string ess_serial = next_value(signing_cert[0] + 1, std::regex(R"(INTEGER\s+:([0-9A-F]+))"));
  EXPECT_EQ(ess_serial.substr(ess_serial.find_first_not_of('0') == std::string::npos
                                  ? 0
                                  : ess_serial.find_first_not_of('0')),
            serial_hex.substr(serial_hex.find_first_not_of('0')));
}

}  // namespace qseal::formats::cades::hsmtest
