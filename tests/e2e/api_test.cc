// The HTTP API against a real qseald: authentication, limits, idempotency, backpressure, ?wait,
// status and seal download. Every seal is checked with `openssl cms -verify`. The HSM is SoftHSM2
// behind the p11shim, which counts C_Sign calls: a refused request must not cause one.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>

#include "tests/p11shim/p11shim.h"
#include "tests/testing/qseald_harness.h"

namespace qseal {
namespace {

using testing::Qseald;
using testing::QsealdOptions;
using testing::TempDir;

constexpr const char* kLimitedToken = "limited-client-token";

std::string Sha256Hex(const std::string& s) {
  return testing::RunCommand("printf %s " + testing::ShellQuote(s) + " | sha256sum | cut -d' ' -f1")
      .output.substr(0, 64);
}

// Sends raw bytes on a fresh connection and returns what the server answers within `timeout`.
std::string RawExchange(const std::string& api, const std::string& request,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::size_t colon = api.rfind(':');
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(api.substr(colon + 1))));
  inet_pton(AF_INET, api.substr(0, colon).c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  (void)!write(fd, request.data(), request.size());
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.find("\r\n\r\n") != std::string::npos &&
        out.find("Content-Length: ") != std::string::npos) {
      std::size_t cl = std::stoul(out.substr(out.find("Content-Length: ") + 16));
      if (out.size() >= out.find("\r\n\r\n") + 4 + cl) break;
    }
  }
  close(fd);
  return out;
}

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir();
    shim_ = tmp_->Sub("shim.so");
    std::filesystem::copy_file(QSEAL_P11SHIM_PATH, shim_);
    QsealdOptions o;
    o.module = shim_;
    o.edit_config = [](std::string& conf) {
      conf += "\n[[client]]\nname = \"limited\"\ntoken_sha256 = \"" + Sha256Hex(kLimitedToken) +
              "\"\nprofiles = [\"invoice-p7m\"]\n";
      conf.replace(conf.find("max_body_bytes = \"256MiB\""), 25, "max_body_bytes = \"8MiB\"");
    };
    qseald_ = new Qseald(tmp_->Sub("d"), o);
    Status s = qseald_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }
  static void TearDownTestSuite() {
    if (qseald_ != nullptr) {
      EXPECT_EQ(qseald_->Stop(), 0) << qseald_->Stderr();
    }
    delete qseald_;
    delete tmp_;
  }

  static std::uint64_t Signs() { return p11shim::ReadCount(shim_ + ".counts", p11shim::kSign); }

  static inline TempDir* tmp_ = nullptr;
  static inline Qseald* qseald_ = nullptr;
  static inline std::string shim_;
};

TEST_F(ApiTest, ReadyzReportsReady) {
  auto r = qseald_->Client().Request("GET", "/readyz");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(ApiTest, MissingOrWrongTokenIs401AndSignsNothing) {
  std::uint64_t before = Signs();
  cli::HttpClient anonymous(qseald_->api(), "");
  cli::HttpClient wrong(qseald_->api(), "not-the-token");
  for (auto* c : {&anonymous, &wrong}) {
    auto r = c->Request("POST", "/v1/documents?profile=default", "invoice");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(r->headers["content-type"], "application/problem+json");
    EXPECT_NE(r->headers["www-authenticate"].find("Bearer"), std::string::npos);
    EXPECT_EQ(c->Request("GET", "/v1/profiles")->status, 401);
  }
  // Give a (wrongly) accepted document time to reach the HSM before counting.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Signs(), before);
}

TEST_F(ApiTest, ProfileNotGrantedIs403) {
  cli::HttpClient limited(qseald_->api(), kLimitedToken);
  std::uint64_t before = Signs();
  auto r = limited.Request("POST", "/v1/documents?profile=default", "invoice");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 403) << r->body;
  auto profiles = limited.Request("GET", "/v1/profiles");
  ASSERT_EQ(profiles->status, 200);
  auto j = nlohmann::json::parse(profiles->body);
  ASSERT_EQ(j["profiles"].size(), 1u);
  EXPECT_EQ(j["profiles"][0]["name"], "invoice-p7m");
  EXPECT_NE(j["profiles"][0]["certificate_chain"].get<std::string>().find("BEGIN CERTIFICATE"),
            std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Signs(), before);
  auto ok = limited.Request("POST", "/v1/documents?profile=invoice-p7m&wait=10", "invoice");
  EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST_F(ApiTest, OversizedBodyIs413BeforeTheBodyIsSent) {
  std::string req =
      "POST /v1/documents?profile=default HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
      qseald_->token() + "\r\nContent-Length: 1099511627776\r\n\r\n";
  std::string answer = RawExchange(qseald_->api(), req);
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer;
}

TEST_F(ApiTest, ChunkedBodyOverTheLimitIs413) {
  std::string chunk(1 << 20, 'a');
  std::string req =
      "POST /v1/documents?profile=default HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
      qseald_->token() + "\r\nTransfer-Encoding: chunked\r\n\r\n";
  char size_line[32];
  std::snprintf(size_line, sizeof(size_line), "%zx\r\n", chunk.size());
  for (int i = 0; i < 9; ++i) req += size_line + chunk + "\r\n";
  req += "0\r\n\r\n";
  std::string answer = RawExchange(qseald_->api(), req);
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer.substr(0, 200);
}

TEST_F(ApiTest, IdempotencyKeyReturnsTheSameIdAndConflictIs422) {
  auto c = qseald_->Client();
  auto first = c.Request("POST", "/v1/documents?profile=default", "invoice A",
                         {{"Idempotency-Key", "inv-42"}});
  ASSERT_EQ(first->status, 202) << first->body;
  auto again = c.Request("POST", "/v1/documents?profile=default", "invoice A",
                         {{"Idempotency-Key", "inv-42"}});
  ASSERT_EQ(again->status, 202) << again->body;
  EXPECT_EQ(nlohmann::json::parse(first->body)["id"], nlohmann::json::parse(again->body)["id"]);
  auto conflict = c.Request("POST", "/v1/documents?profile=default", "invoice B",
                            {{"Idempotency-Key", "inv-42"}});
  EXPECT_EQ(conflict->status, 422) << conflict->body;
}

TEST_F(ApiTest, WaitReturnsSealedStatusAndTheSealVerifies) {
  TempDir tmp;
  std::string doc = "<invoice number=\"1\">100.00 EUR</invoice>\n";
  testing::WriteFile(tmp.Sub("doc.xml"), doc);
  auto c = qseald_->Client();
  auto r = c.Request("POST", "/v1/documents?profile=default&wait=20", doc,
                     {{"X-Filename", "../../doc.xml"}});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["status"], "sealed");
  EXPECT_EQ(j["name"], "doc.xml");  // Path components are stripped.
  EXPECT_EQ(j["sha256"], testing::RunCommand("sha256sum " + tmp.Sub("doc.xml") + " | cut -d' ' -f1")
                             .output.substr(0, 64));
  std::string id = j["id"];
  auto status = c.Request("GET", "/v1/documents/" + id);
  ASSERT_EQ(status->status, 200);
  EXPECT_EQ(nlohmann::json::parse(status->body)["status"], "sealed");
  auto seal = c.Request("GET", "/v1/documents/" + id + "/seal");
  ASSERT_EQ(seal->status, 200);
  EXPECT_EQ(seal->headers["content-type"], "application/pkcs7-signature");
  testing::WriteFile(tmp.Sub("doc.p7s"), seal->body);
  EXPECT_EQ(testing::OpensslVerify(tmp.Sub("doc.p7s"), qseald_->ca_pem(), tmp.Sub("doc.xml")), "");
  // The seal covers exactly the bytes received: one changed byte fails.
  testing::WriteFile(tmp.Sub("tampered.xml"), "<invoice number=\"1\">900.00 EUR</invoice>\n");
  EXPECT_NE(testing::OpensslVerify(tmp.Sub("doc.p7s"), qseald_->ca_pem(), tmp.Sub("tampered.xml")),
            "");
}

TEST_F(ApiTest, EnvelopingProfileReturnsAP7mHoldingTheDocument) {
  TempDir tmp;
  std::string doc(100000, '\0');
  for (std::size_t i = 0; i < doc.size(); ++i) doc[i] = static_cast<char>(i * 7919 % 251);
  auto c = qseald_->Client();
  auto r = c.Request("POST", "/v1/documents?profile=invoice-p7m&wait=20", doc);
  ASSERT_EQ(r->status, 200) << r->body;
  std::string id = nlohmann::json::parse(r->body)["id"];
  auto seal = c.Request("GET", "/v1/documents/" + id + "/seal");
  ASSERT_EQ(seal->status, 200);
  EXPECT_EQ(seal->headers["content-type"], "application/pkcs7-mime");
  testing::WriteFile(tmp.Sub("doc.p7m"), seal->body);
  EXPECT_EQ(testing::OpensslVerify(tmp.Sub("doc.p7m"), qseald_->ca_pem(), "", tmp.Sub("out.bin")),
            "");
  EXPECT_EQ(testing::ReadFile(tmp.Sub("out.bin")), doc);
}

TEST_F(ApiTest, EmptyDocumentIsSealed) {
  TempDir tmp;
  auto c = qseald_->Client();
  auto r = c.Request("POST", "/v1/documents?profile=default&wait=20", "");
  ASSERT_EQ(r->status, 200) << r->body;
  std::string id = nlohmann::json::parse(r->body)["id"];
  auto seal = c.Request("GET", "/v1/documents/" + id + "/seal");
  testing::WriteFile(tmp.Sub("e.p7s"), seal->body);
  testing::WriteFile(tmp.Sub("e"), "");
  EXPECT_EQ(testing::OpensslVerify(tmp.Sub("e.p7s"), qseald_->ca_pem(), tmp.Sub("e")), "");
}

TEST_F(ApiTest, UnknownAndForeignDocumentsAre404) {
  auto c = qseald_->Client();
  EXPECT_EQ(c.Request("GET", "/v1/documents/01ARZ3NDEKTSV4RRFFQ69G5FAV")->status, 404);
  EXPECT_EQ(c.Request("GET", "/v1/documents/not-an-id/seal")->status, 404);
  auto mine = c.Request("POST", "/v1/documents?profile=default", "x");
  std::string id = nlohmann::json::parse(mine->body)["id"];
  cli::HttpClient limited(qseald_->api(), kLimitedToken);
  EXPECT_EQ(limited.Request("GET", "/v1/documents/" + id)->status, 404);
  EXPECT_EQ(c.Request("DELETE", "/v1/documents/" + id)->status, 405);
}

// A slow HSM (200 ms per signature, one session per partition) and a tiny queue watermark: the
// API must push back with 503 + Retry-After, and everything it accepted must still be sealed.
TEST(ApiBackpressureTest, SaturatedQueueAnswers503WithRetryAfterAndLosesNothing) {
  TempDir tmp;
  std::string shim = tmp.Sub("slow.so");
  std::filesystem::copy_file(QSEAL_P11SHIM_PATH, shim);
  testing::WriteFile(shim + ".conf", "sign_latency_ms=200\n");
  QsealdOptions o;
  o.module = shim;
  o.edit_config = [](std::string& conf) {
    conf.replace(conf.find("high_watermark_documents = 1000000"), 34,
                 "high_watermark_documents = 4");
    conf.replace(conf.find("low_watermark_documents = 900000"), 32, "low_watermark_documents = 2");
    for (std::size_t p = conf.find("sessions = 4"); p != std::string::npos;
         p = conf.find("sessions = 4", p)) {
      conf.replace(p, 12, "sessions = 1");
    }
  };
  Qseald qseald(tmp.Sub("d"), o);
  ASSERT_TRUE(qseald.Start().ok()) << qseald.Stderr();
  std::atomic<int> accepted{0}, refused{0}, other{0};
  std::vector<std::string> ids(24);
  auto submit = [&](int i) {
    auto r = qseald.Client().Request("POST", "/v1/documents?profile=default",
                                     "doc " + std::to_string(i));
    if (!r.ok()) {
      other++;
    } else if (r->status == 202) {
      accepted++;
      ids[static_cast<std::size_t>(i)] = nlohmann::json::parse(r->body)["id"];
    } else if (r->status == 503 && !r->headers["retry-after"].empty()) {
      refused++;
    } else {
      other++;
    }
  };
  // A first wave fills the queue past its watermark (admission is checked before each commit,
  // so concurrent submissions can overshoot it a little); the ones after it must be refused.
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back(submit, i);
  for (auto& t : threads) t.join();
  for (int i = 8; i < 24; ++i) submit(i);
  EXPECT_GT(refused.load(), 0);
  EXPECT_GT(accepted.load(), 0);
  EXPECT_EQ(other.load(), 0);
  // Not sealed yet: 409 on the seal.
  std::string some_id;
  for (const auto& id : ids) {
    if (!id.empty()) some_id = id;
  }
  auto early = qseald.Client().Request("GET", "/v1/documents/" + some_id + "/seal");
  EXPECT_TRUE(early->status == 409 || early->status == 200) << early->status;
  // Every accepted document ends sealed.
  for (const auto& id : ids) {
    if (id.empty()) continue;
    std::string state;
    for (int i = 0; i < 200 && state != "sealed"; ++i) {
      auto r = qseald.Client().Request("GET", "/v1/documents/" + id);
      state = nlohmann::json::parse(r->body)["status"];
      if (state != "sealed") std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(state, "sealed") << id;
  }
  EXPECT_EQ(qseald.Stop(), 0) << qseald.Stderr();
}

}  // namespace
}  // namespace qseal
