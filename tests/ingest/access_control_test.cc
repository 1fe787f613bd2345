// Unit tests of the API's authentication (bearer tokens known by their SHA-256, client
// certificates by subject or SPKI pin) and profile grants, with the refusals they report for the
// audit trail.
#include "ingest/detail/access_control.h"

#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "common/sha256.h"

namespace qseal::ingest::detail {
namespace {

Bytes HashOf(std::string_view token) {
  Result<Bytes> h = Digest(DigestAlgorithm::kSha256, AsBytes(token));
  EXPECT_TRUE(h.ok());
  return *h;
}

ApiClient TokenClient(std::string name, Bytes token_sha256, std::vector<std::string> profiles) {
  ApiClient c;
  c.name = std::move(name);
  c.token_sha256 = std::move(token_sha256);
  c.profiles = std::move(profiles);
  return c;
}

RequestHeader WithAuthorization(std::vector<std::string> values) {
  RequestHeader req;
  req.version(11);
  for (const auto& v : values) req.insert(http::field::authorization, v);
  return req;
}

const PeerCertificate kNoCertificate;

class AccessControlTest : public ::testing::Test {
 protected:
  AccessControlTest() {
    clients_ = {TokenClient("alice", HashOf("alice-token"), {"default"}),
                TokenClient("bob", HashOf("bob-token"), {"*"}),
                TokenClient("carol", HashOf("carol-token"), {"invoices", "missing"})};
    profiles_ = {{"default", "cades-detached", "sha256", "ecdsa", "PEM-D"},
                 {"invoices", "cades-enveloping", "sha256", "ecdsa", "PEM-I"}};
    on_refusal_ = [this](std::string_view kind, std::string_view client, std::string_view profile,
                         std::string_view reason, std::string_view source) {
      EXPECT_EQ(source, "192.0.2.7");
      refusals_.emplace_back(std::string(kind), std::string(client), std::string(profile),
                             std::string(reason));
    };
  }

  std::vector<ApiClient> clients_;
  std::vector<ApiProfile> profiles_;
  RefusalListener on_refusal_;
  std::vector<std::tuple<std::string, std::string, std::string, std::string>> refusals_;
  AccessControl access_{clients_, profiles_, on_refusal_};
};

TEST_F(AccessControlTest, AuthenticatesEachClientByItsToken) {
  const ApiClient* a =
      access_.Authenticate(WithAuthorization({"Bearer alice-token"}), kNoCertificate);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->name, "alice");
  const ApiClient* b =
      access_.Authenticate(WithAuthorization({"Bearer bob-token"}), kNoCertificate);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->name, "bob");
}

TEST_F(AccessControlTest, SchemeIsCaseInsensitiveTokenIsNot) {
  EXPECT_NE(access_.Authenticate(WithAuthorization({"bearer alice-token"}), kNoCertificate),
            nullptr);
  EXPECT_NE(access_.Authenticate(WithAuthorization({"BEARER alice-token"}), kNoCertificate),
            nullptr);
  EXPECT_EQ(access_.Authenticate(WithAuthorization({"Bearer ALICE-TOKEN"}), kNoCertificate),
            nullptr);
  EXPECT_EQ(access_.Authenticate(WithAuthorization({"Bearer alice-token."}), kNoCertificate),
            nullptr);
  EXPECT_EQ(access_.Authenticate(WithAuthorization({"Bearer alice-toke"}), kNoCertificate),
            nullptr);
  EXPECT_EQ(access_.Authenticate(WithAuthorization({"Bearer  alice-token"}), kNoCertificate),
            nullptr);
}

TEST_F(AccessControlTest, RefusesMissingMalformedAndRepeatedCredentials) {
  EXPECT_EQ(access_.Authenticate(WithAuthorization({}), kNoCertificate), nullptr);
  EXPECT_EQ(access_.Authenticate(WithAuthorization({""}), kNoCertificate), nullptr);
  EXPECT_EQ(access_.Authenticate(WithAuthorization({"Bearer "}), kNoCertificate), nullptr);
  EXPECT_EQ(access_.Authenticate(WithAuthorization({"Bearer"}), kNoCertificate), nullptr);
  EXPECT_EQ(access_.Authenticate(WithAuthorization({"Basic YWxpY2U6eA=="}), kNoCertificate),
            nullptr);
  EXPECT_EQ(access_.Authenticate(WithAuthorization({"Bearer nobody-token"}), kNoCertificate),
            nullptr);
  // The token's hash itself is not a token.
  EXPECT_EQ(access_.Authenticate(WithAuthorization({"Bearer " + HexEncode(HashOf("alice-token"))}),
                                 kNoCertificate),
            nullptr);
  // Two Authorization fields, even both valid: which one would count is ambiguous.
  EXPECT_EQ(access_.Authenticate(WithAuthorization({"Bearer alice-token", "Bearer alice-token"}),
                                 kNoCertificate),
            nullptr);
  EXPECT_EQ(access_.Authenticate(WithAuthorization({"Bearer alice-token", "Bearer bob-token"}),
                                 kNoCertificate),
            nullptr);
}

TEST_F(AccessControlTest, AllowedByNameOrWildcard) {
  EXPECT_TRUE(AccessControl::Allowed(clients_[0], "default"));
  EXPECT_FALSE(AccessControl::Allowed(clients_[0], "invoices"));
  EXPECT_FALSE(AccessControl::Allowed(clients_[0], "Default"));
  EXPECT_TRUE(AccessControl::Allowed(clients_[1], "anything"));
  EXPECT_TRUE(AccessControl::Allowed(clients_[2], "invoices"));
  EXPECT_FALSE(AccessControl::Allowed(TokenClient("none", {}, {}), "default"));
}

TEST_F(AccessControlTest, FindsConfiguredProfilesOnly) {
  const ApiProfile* p = access_.FindProfile("invoices");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->certificate_chain_pem, "PEM-I");
  EXPECT_EQ(access_.FindProfile("missing"), nullptr);
}

TEST_F(AccessControlTest, ProfileRefusalForbidsUngrantedAndReportsIt) {
  RequestHeader req = WithAuthorization({});
  EXPECT_FALSE(access_.ProfileRefusal(req, clients_[0], "default", "192.0.2.7").has_value());
  EXPECT_TRUE(refusals_.empty());

  std::optional<HttpResponse> r = access_.ProfileRefusal(req, clients_[0], "invoices", "192.0.2.7");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::forbidden);
  ASSERT_EQ(refusals_.size(), 1u);
  EXPECT_EQ(refusals_[0],
            std::make_tuple(std::string("auth_denied"), std::string("alice"),
                            std::string("invoices"), std::string("profile not granted")));
}

TEST_F(AccessControlTest, ProfileRefusalRejectsGrantedButUnknown) {
  RequestHeader req = WithAuthorization({});
  // Granted by name but not configured, and granted by "*" but not configured: 404 both.
  for (const ApiClient* c : {&clients_[2], &clients_[1]}) {
    std::optional<HttpResponse> r = access_.ProfileRefusal(req, *c, "missing", "192.0.2.7");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->result(), http::status::not_found);
    EXPECT_NE(r->body().find("unknown profile"), std::string::npos);
  }
  ASSERT_EQ(refusals_.size(), 2u);
  EXPECT_EQ(std::get<0>(refusals_[0]), "rejected");
  EXPECT_EQ(std::get<1>(refusals_[0]), "carol");
  EXPECT_EQ(std::get<3>(refusals_[0]), "unknown profile");
  EXPECT_EQ(std::get<1>(refusals_[1]), "bob");
}

PeerCertificate Certificate(std::string subject, Bytes spki_sha256) {
  PeerCertificate cert;
  cert.present = true;
  cert.subject = std::move(subject);
  cert.spki_sha256 = std::move(spki_sha256);
  return cert;
}

TEST(AccessControlCertificateTest, ClientsAreMatchedByEveryCredentialTheyHave) {
  const Bytes pin_a = HashOf("spki-a");
  const Bytes pin_b = HashOf("spki-b");
  std::vector<ApiClient> clients(4);
  clients[0].name = "by-subject";
  clients[0].certificate_subject = "CN=a,O=Bank";
  clients[1].name = "by-pin";
  clients[1].certificate_spki_sha256 = pin_b;
  clients[2].name = "token-and-subject";
  clients[2].token_sha256 = HashOf("t2");
  clients[2].certificate_subject = "CN=a,O=Bank";
  clients[3].name = "token-only";
  clients[3].token_sha256 = HashOf("t3");
  std::vector<ApiProfile> profiles;
  RefusalListener none;
  AccessControl access(clients, profiles, none);
  auto name = [&](const RequestHeader& req, const PeerCertificate& cert) -> std::string {
    const ApiClient* c = access.Authenticate(req, cert);
    return c == nullptr ? "" : c->name;
  };
  const RequestHeader no_token = WithAuthorization({});
  EXPECT_EQ(name(no_token, Certificate("CN=a,O=Bank", pin_a)), "by-subject");
  EXPECT_EQ(name(no_token, Certificate("CN=other", pin_b)), "by-pin");
  // Both credentials of a client given: that client wins over the one with the subject alone.
  EXPECT_EQ(name(WithAuthorization({"Bearer t2"}), Certificate("CN=a,O=Bank", pin_a)),
            "token-and-subject");
  // Its token without its certificate matches nothing (every configured credential must match).
  EXPECT_EQ(name(WithAuthorization({"Bearer t2"}), kNoCertificate), "");
  EXPECT_EQ(name(WithAuthorization({"Bearer t3"}), kNoCertificate), "token-only");
  // Unknown subject and pin, or no certificate at all.
  EXPECT_EQ(name(no_token, Certificate("CN=a,O=Bank2", pin_a)), "");
  EXPECT_EQ(name(no_token, Certificate("cn=a,o=bank", pin_a)), "");
  EXPECT_EQ(name(no_token, kNoCertificate), "");
  PeerCertificate absent = Certificate("CN=a,O=Bank", pin_b);
  absent.present = false;
  EXPECT_EQ(name(no_token, absent), "");
}

TEST(AccessControlNoListenerTest, RefusalWithoutListenerStillAnswers) {
  std::vector<ApiClient> clients = {TokenClient("alice", HashOf("t"), {"default"})};
  std::vector<ApiProfile> profiles;
  RefusalListener none;
  AccessControl access(clients, profiles, none);
  RequestHeader req;
  std::optional<HttpResponse> r = access.ProfileRefusal(req, clients[0], "other", "192.0.2.7");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::forbidden);
  access.Refused("rejected", "alice", "", "nobody listens", "192.0.2.7");  // must not crash
}

TEST(RequestedProfileTest, DefaultsWhenAbsent) {
  EXPECT_EQ(RequestedProfile({}), "default");
  EXPECT_EQ(RequestedProfile({{"profile", "invoices"}}), "invoices");
  EXPECT_EQ(RequestedProfile({{"profile", ""}}), "");
  EXPECT_EQ(RequestedProfile({{"wait", "3"}}), "default");
}

}  // namespace
}  // namespace qseal::ingest::detail
