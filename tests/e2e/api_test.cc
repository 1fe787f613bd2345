// The HTTP API against a real qseald: authentication, limits, idempotency, backpressure, ?wait,
// status and seal download. Every seal is checked with `openssl cms -verify`. The HSM is SoftHSM2
// behind the p11shim, which counts C_Sign calls: a refused request must not cause one.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/p11shim/p11shim.h"
#include "tests/testing/qseald_harness.h"
#include "tests/testing/raw_client.h"

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

// Sends raw bytes on a fresh connection (TLS when the daemon serves it) and returns what the
// server answers within `timeout`.
std::string RawExchange(const std::string& api, const std::string& request,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  testing::RawClient raw(api);
  if (!raw.connected() || !raw.Send(request)) return "";
  return raw.ReadResponse(timeout);
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
      auto set = [&conf](const std::string& from, const std::string& to) {
        conf.replace(conf.find(from), from.size(), to);
      };
      set("max_batch_parts = 1000", "max_batch_parts = 50");
      set("max_batch_bytes = \"64MiB\"", "max_batch_bytes = \"1MiB\"");
      set("max_batch_part_bytes = \"16MiB\"", "max_batch_part_bytes = \"64KiB\"");
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
  cli::HttpClient anonymous = qseald_->Client("");
  cli::HttpClient wrong = qseald_->Client("not-the-token");
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
  cli::HttpClient limited = qseald_->Client(kLimitedToken);
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

// A request line with another version is refused as such (505), not as a malformed request.
TEST_F(ApiTest, RequestLineVersionOutsideHttp1Is505AndSignsNothing) {
  std::uint64_t signs_before = Signs();
  for (const char* version : {"HTTP/0.1", "HTTP/0.9", "HTTP/2.0", "HTTP/9.9"}) {
    std::string req = std::string("POST /v1/documents?profile=default ") + version +
                      "\r\nHost: x\r\nAuthorization: Bearer " + qseald_->token() +
                      "\r\nContent-Length: 1\r\n\r\nx";
    std::string answer = RawExchange(qseald_->api(), req);
    EXPECT_EQ(answer.rfind("HTTP/1.1 505", 0), 0u) << version << ": " << answer;
  }
  // A garbled version is a malformed request; HTTP/1.0 is served, and answered as HTTP/1.0.
  std::string answer = RawExchange(qseald_->api(), "GET /readyz HTTQ/1.1\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
  answer = RawExchange(qseald_->api(), "GET /readyz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.0 200", 0), 0u) << answer;
  EXPECT_EQ(Signs(), signs_before);
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
  cli::HttpClient limited = qseald_->Client(kLimitedToken);
  EXPECT_EQ(limited.Request("GET", "/v1/documents/" + id)->status, 404);
  EXPECT_EQ(c.Request("DELETE", "/v1/documents/" + id)->status, 405);
}

// ---- POST /v1/batches and POST /v1/batches/status ----

struct TestPart {
  std::string body;
  std::map<std::string, std::string> headers;
};

std::string Multipart(const std::vector<TestPart>& parts, const std::string& boundary = "qb-7") {
  std::string out;
  for (const auto& p : parts) {
    out += "--" + boundary + "\r\n";
    for (const auto& [k, v] : p.headers) out += k + ": " + v + "\r\n";
    out += "\r\n" + p.body + "\r\n";
  }
  return out + "--" + boundary + "--\r\n";
}

const std::map<std::string, std::string> kMultipart = {
    {"Content-Type", "multipart/mixed; boundary=qb-7"}};

nlohmann::json StatusOf(cli::HttpClient& c, const std::vector<std::string>& ids, int wait) {
  nlohmann::json req;
  req["ids"] = ids;
  auto r = c.Request("POST", "/v1/batches/status?wait=" + std::to_string(wait), req.dump(),
                     {{"Content-Type", "application/json"}});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  return nlohmann::json::parse(r->body);
}

TEST_F(ApiTest, BatchIsAcceptedInOneRequestAndEverySealVerifies) {
  TempDir tmp;
  std::vector<TestPart> parts;
  for (int i = 0; i < 40; ++i) {
    // Bodies with CRLFs and dashes, as binary invoices have.
    std::string body = "<invoice n=\"" + std::to_string(i) + "\">\r\n--qb-\r\n-- qb-7\r\n" +
                       std::string(static_cast<std::size_t>(i * 37), '\0') + "</invoice>";
    parts.push_back({body,
                     {{"Content-Type", "application/xml"},
                      {"X-Filename", "../inv-" + std::to_string(i) + ".xml"},
                      {"Idempotency-Key", "batch-" + std::to_string(i)}}});
  }
  auto c = qseald_->Client();
  auto r = c.Request("POST", "/v1/batches?profile=default", Multipart(parts), kMultipart);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 202) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["accepted"], 40);
  EXPECT_EQ(j["rejected"], 0);
  ASSERT_EQ(j["documents"].size(), 40u);
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < 40; ++i) {
    const auto& d = j["documents"][i];
    EXPECT_EQ(d["index"], i);
    EXPECT_EQ(d["status"], "queued");
    EXPECT_EQ(d["name"], "inv-" + std::to_string(i) + ".xml");
    EXPECT_EQ(d["size"], parts[i].body.size());
    ids.push_back(d["id"]);
  }
  // Resent (a lost answer): the same ids, marked duplicate, nothing queued twice.
  auto again = c.Request("POST", "/v1/batches?profile=default", Multipart(parts), kMultipart);
  ASSERT_EQ(again->status, 202) << again->body;
  auto ja = nlohmann::json::parse(again->body);
  for (std::size_t i = 0; i < 40; ++i) {
    EXPECT_EQ(ja["documents"][i]["id"], ids[i]);
    EXPECT_EQ(ja["documents"][i]["duplicate"], true);
  }

  nlohmann::json status = StatusOf(c, ids, 30);
  ASSERT_EQ(status["done"], true) << status.dump();
  for (std::size_t i = 0; i < 40; ++i) {
    const auto& d = status["documents"][i];
    ASSERT_EQ(d["status"], "sealed") << d.dump();
    auto seal = c.Request("GET", "/v1/documents/" + ids[i] + "/seal");
    ASSERT_EQ(seal->status, 200);
    std::string content = tmp.Sub("inv-" + std::to_string(i));
    testing::WriteFile(content, parts[i].body);
    testing::WriteFile(content + ".p7s", seal->body);
    EXPECT_EQ(testing::OpensslVerify(content + ".p7s", qseald_->ca_pem(), content), "")
        << "part " << i;
  }
}

TEST_F(ApiTest, BatchWaitAnswersWithTheFinalStatusOfEachPart) {
  TempDir tmp;
  std::vector<TestPart> parts = {{"one", {}}, {"two", {{"Content-Type", "text/plain"}}}};
  auto c = qseald_->Client();
  auto r =
      c.Request("POST", "/v1/batches?profile=invoice-p7m&wait=30", Multipart(parts), kMultipart);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    ASSERT_EQ(j["documents"][i]["status"], "sealed") << r->body;
    std::string id = j["documents"][i]["id"];
    auto seal = c.Request("GET", "/v1/documents/" + id + "/seal");
    testing::WriteFile(tmp.Sub("s.p7m"), seal->body);
    EXPECT_EQ(testing::OpensslVerify(tmp.Sub("s.p7m"), qseald_->ca_pem(), "", tmp.Sub("out")), "");
    EXPECT_EQ(testing::ReadFile(tmp.Sub("out")), parts[i].body);
  }
}

TEST_F(ApiTest, BadPartsAreRefusedOneByOneAndTheGoodOnesAreSealed) {
  TempDir tmp;
  auto c = qseald_->Client();
  auto first = c.Request("POST", "/v1/documents?profile=default", "original",
                         {{"Idempotency-Key", "bp-conflict"}});
  ASSERT_EQ(first->status, 202);
  std::vector<TestPart> parts = {
      {"good 0", {}},
      {std::string(65 * 1024, 'x'), {}},                        // over max_batch_part_bytes
      {"changed", {{"Idempotency-Key", "bp-conflict"}}},        // key reused: 422
      {"Z29vZA==", {{"Content-Transfer-Encoding", "base64"}}},  // not sealed as sent: 415
      {"k", {{"Idempotency-Key", std::string(201, 'k')}}},      // key too long: 400
      {"good 5", {{"X-Filename", "five.txt"}}},
  };
  auto r = c.Request("POST", "/v1/batches?profile=default", Multipart(parts), kMultipart);
  ASSERT_EQ(r->status, 202) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["accepted"], 2);
  EXPECT_EQ(j["rejected"], 4);
  const auto& d = j["documents"];
  EXPECT_EQ(d[1]["status"], "rejected");
  EXPECT_EQ(d[1]["error"]["status"], 413);
  EXPECT_EQ(d[2]["error"]["status"], 422);
  EXPECT_EQ(d[3]["error"]["status"], 415);
  EXPECT_EQ(d[4]["error"]["status"], 400);
  for (std::size_t i : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{4}}) {
    EXPECT_FALSE(d[i].contains("id")) << d[i].dump();
  }
  std::vector<std::string> ids = {d[0]["id"], d[5]["id"]};
  auto status = StatusOf(c, ids, 30);
  ASSERT_EQ(status["done"], true) << status.dump();
  for (std::size_t k = 0; k < 2; ++k) {
    ASSERT_EQ(status["documents"][k]["status"], "sealed");
    auto seal = c.Request("GET", "/v1/documents/" + ids[k] + "/seal");
    testing::WriteFile(tmp.Sub("c"), parts[k == 0 ? 0 : 5].body);
    testing::WriteFile(tmp.Sub("c.p7s"), seal->body);
    EXPECT_EQ(testing::OpensslVerify(tmp.Sub("c.p7s"), qseald_->ca_pem(), tmp.Sub("c")), "");
  }
}

TEST_F(ApiTest, BatchFramingErrorsAndLimitsAcceptNothing) {
  auto c = qseald_->Client();
  std::string good = Multipart({{"a", {}}});
  struct Case {
    std::string what;
    std::string body;
    std::map<std::string, std::string> headers;
    int status;
  };
  std::string many;
  for (int i = 0; i < 51; ++i) many += "--qb-7\r\n\r\nx\r\n";
  many += "--qb-7--\r\n";
  std::vector<Case> cases = {
      {"no boundary parameter", good, {{"Content-Type", "multipart/mixed"}}, 415},
      {"not multipart", good, {{"Content-Type", "application/pdf"}}, 415},
      {"boundary not in the body", good, {{"Content-Type", "multipart/mixed; boundary=zz"}}, 400},
      {"truncated", good.substr(0, good.size() - 10), kMultipart, 400},
      {"malformed part header", "--qb-7\r\nno colon\r\n\r\nx\r\n--qb-7--", kMultipart, 400},
      {"no parts", "--qb-7--\r\n", kMultipart, 400},
      {"too many parts", many, kMultipart, 413},
      {"body over max_batch_bytes", Multipart({{std::string(1100 * 1024, 'y'), {}}}), kMultipart,
       413},
  };
  for (const auto& k : cases) {
    auto r = c.Request("POST", "/v1/batches?profile=default", k.body, k.headers);
    ASSERT_TRUE(r.ok()) << k.what << ": " << r.status();
    EXPECT_EQ(r->status, k.status) << k.what << ": " << r->body;
    EXPECT_EQ(r->headers["content-type"], "application/problem+json") << k.what;
  }
  // Too many parts, streamed chunked (no Content-Length to refuse it up front).
  std::string req =
      "POST /v1/batches?profile=default HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
      qseald_->token() +
      "\r\nContent-Type: multipart/mixed; boundary=qb-7\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  char size_line[32];
  std::snprintf(size_line, sizeof(size_line), "%zx\r\n", many.size());
  req += size_line + many + "\r\n0\r\n\r\n";
  std::string answer = RawExchange(qseald_->api(), req);
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer.substr(0, 300);
}

TEST_F(ApiTest, BatchWithoutValidCredentialsIs401AndSignsNothing) {
  std::uint64_t before = Signs();
  cli::HttpClient anonymous = qseald_->Client("");
  cli::HttpClient wrong = qseald_->Client("not-the-token");
  cli::HttpClient limited = qseald_->Client(kLimitedToken);
  std::string body = Multipart({{"invoice", {}}, {"invoice 2", {}}});
  for (auto* c : {&anonymous, &wrong}) {
    auto r = c->Request("POST", "/v1/batches?profile=default", body, kMultipart);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 401) << r->body;
    auto s = c->Request("POST", "/v1/batches/status", "{\"ids\":[]}");
    EXPECT_EQ(s->status, 401);
  }
  auto denied = limited.Request("POST", "/v1/batches?profile=default", body, kMultipart);
  EXPECT_EQ(denied->status, 403) << denied->body;
  // Give a (wrongly) accepted document time to reach the HSM before counting.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Signs(), before);
}

TEST_F(ApiTest, BatchStatusReportsUnknownAndForeignIdsAsNotFound) {
  auto c = qseald_->Client();
  auto mine = c.Request("POST", "/v1/documents?profile=default&wait=20", "x");
  ASSERT_EQ(mine->status, 200) << mine->body;
  std::string id = nlohmann::json::parse(mine->body)["id"];
  cli::HttpClient limited = qseald_->Client(kLimitedToken);
  nlohmann::json foreign = StatusOf(limited, {id, "not-an-id"}, 1);
  EXPECT_EQ(foreign["documents"][0]["error"]["status"], 404);
  EXPECT_EQ(foreign["documents"][1]["error"]["status"], 404);
  EXPECT_FALSE(foreign["documents"][0].contains("status"));
  nlohmann::json own = StatusOf(c, {id, "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 5);
  EXPECT_EQ(own["done"], true);  // unknown ids are not waited for
  EXPECT_EQ(own["documents"][0]["status"], "sealed");
  auto bad = c.Request("POST", "/v1/batches/status", "{\"ids\": 5}");
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(c.Request("GET", "/v1/batches/status")->status, 405);
}

// Regression: ?wait=nan and ?wait=1e300 converted a double out of range to an integer (undefined
// behaviour); now nan is refused and a huge wait is capped at max_wait.
TEST_F(ApiTest, WaitOutOfRangeIsRefusedOrCapped) {
  auto c = qseald_->Client();
  EXPECT_EQ(c.Request("POST", "/v1/documents?profile=default&wait=nan", "w")->status, 400);
  auto r = c.Request("POST", "/v1/documents?profile=default&wait=1e300", "w");
  EXPECT_EQ(r->status, 200) << r->body;
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
