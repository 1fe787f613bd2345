#include "tests/tsa/test_tsa.h"

#include <cstdint>
#include <filesystem>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ts.h>

#include "tests/testing/testing.h"

namespace qseal::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Status Run(const std::string& command) {
  CommandResult r = RunCommand(command);
  if (r.exit_code != 0) return InternalError(command + " -> " + r.output);
  return Status::Ok();
}

X509* LoadCert(const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  X509* cert = bio ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  return cert;
}

EVP_PKEY* LoadKey(const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  return key;
}

ASN1_INTEGER* NextSerial(TS_RESP_CTX*, void* data) {
  auto* counter = static_cast<std::atomic<long>*>(data);
  ASN1_INTEGER* serial = ASN1_INTEGER_new();
  ASN1_INTEGER_set(serial, ++*counter);
  return serial;
}

std::string Der(TS_RESP* resp) {
  int len = i2d_TS_RESP(resp, nullptr);
  std::string out(static_cast<std::size_t>(len > 0 ? len : 0), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_TS_RESP(resp, &p);
  return out;
}

}  // namespace

TsaPki TsaPkiPaths(const std::string& dir) {
  TsaPki pki;
  pki.dir = dir;
  pki.ca_pem = dir + "/ca.pem";
  pki.tsa_pem = dir + "/tsa.pem";
  pki.tsa_key = dir + "/tsa.key";
  pki.noncritical_pem = dir + "/tsa-noncritical.pem";
  pki.rogue_pem = dir + "/rogue-tsa.pem";
  pki.rogue_key = dir + "/rogue-tsa.key";
  pki.tls_pem = dir + "/tls.pem";
  pki.tls_key = dir + "/tls.key";
  if (std::filesystem::exists(dir + "/tsa-expired.pem")) pki.expired_pem = dir + "/tsa-expired.pem";
  return pki;
}

Result<TsaPki> MakeTsaPki(const std::string& dir) {
  TsaPki pki = TsaPkiPaths(dir);
  WriteFile(dir + "/ext.cnf",
            "[tsa]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=critical,timeStamping\n"
            "[noncritical]\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=timeStamping\n"
            "[tls]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n");
  const std::string d = ShellQuote(dir);
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
  auto ca = [&](const std::string& name, const std::string& cn) {
    return Run("openssl req -x509" + ec + "-keyout " + d + "/" + name + ".key -out " + d + "/" +
               name + ".pem -days 30 -subj '/CN=" + cn +
               "' -addext basicConstraints=critical,CA:TRUE"
               " -addext keyUsage=critical,keyCertSign,cRLSign 2>&1");
  };
  auto leaf = [&](const std::string& name, const std::string& key, const std::string& issuer,
                  const std::string& ext, const std::string& env = "") -> Status {
    std::string key_arg =
        key.empty() ? ec + "-keyout " + d + "/" + name + ".key" : " -key " + d + "/" + key + ".key";
    QSEAL_RETURN_IF_ERROR(Run("openssl req -new" + key_arg + " -out " + d + "/" + name +
                              ".csr -subj '/CN=" + name + "' 2>&1"));
    return Run(env + "openssl x509 -req -in " + d + "/" + name + ".csr -CA " + d + "/" + issuer +
               ".pem -CAkey " + d + "/" + issuer + ".key -CAcreateserial -days 30 -out " + d + "/" +
               name + ".pem -extfile " + d + "/ext.cnf -extensions " + ext + " 2>&1");
  };
  QSEAL_RETURN_IF_ERROR(ca("ca", "qseal test TSA CA"));
  QSEAL_RETURN_IF_ERROR(ca("rogue-ca", "rogue CA"));
  QSEAL_RETURN_IF_ERROR(leaf("tsa", "", "ca", "tsa"));
  QSEAL_RETURN_IF_ERROR(leaf("tsa-noncritical", "tsa", "ca", "noncritical"));
  QSEAL_RETURN_IF_ERROR(leaf("rogue-tsa", "", "rogue-ca", "tsa"));
  QSEAL_RETURN_IF_ERROR(leaf("tls", "", "ca", "tls"));
  // Valid for 30 days from 40 days ago: expired since 10 days.
  const std::string faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
  if (std::filesystem::exists(faketime)) {
    QSEAL_RETURN_IF_ERROR(
        leaf("tsa-expired", "tsa", "ca", "tsa", "LD_PRELOAD=" + faketime + " FAKETIME=-40d "));
    pki.expired_pem = dir + "/tsa-expired.pem";
  }
  return pki;
}

class TestTsa::Impl {
 public:
  Impl(TestTsa& owner, const TsaPki& pki)
      : owner_(owner), tls_ctx_(asio::ssl::context::tls_server) {
    cert_ = LoadCert(pki.tsa_pem);
    key_ = LoadKey(pki.tsa_key);
    noncritical_ = LoadCert(pki.noncritical_pem);
    rogue_cert_ = LoadCert(pki.rogue_pem);
    rogue_key_ = LoadKey(pki.rogue_key);
    if (!pki.expired_pem.empty()) expired_ = LoadCert(pki.expired_pem);
    if (owner_.tls_) {
      tls_ctx_.use_certificate_chain_file(pki.tls_pem);
      tls_ctx_.use_private_key_file(pki.tls_key, asio::ssl::context::pem);
    }
  }
  ~Impl() {
    Stop();
    X509_free(cert_);
    X509_free(noncritical_);
    X509_free(rogue_cert_);
    X509_free(expired_);
    EVP_PKEY_free(key_);
    EVP_PKEY_free(rogue_key_);
  }

  Status Start(int* port) {  // *port: the port asked for (0: any), then the one bound
    if (!cert_ || !key_ || !noncritical_ || !rogue_cert_ || !rogue_key_) {
      return InternalError("test TSA: cannot load its certificates");
    }
    beast::error_code ec;
    acceptor_.open(tcp::v4(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec)
      acceptor_.bind(
          tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(*port)),
          ec);
    if (!ec) acceptor_.listen(64, ec);
    if (ec) return UnavailableError("test TSA listen: " + ec.message());
    *port = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
    return Status::Ok();
  }

  void Stop() {
    if (stopped_.exchange(true)) return;
    beast::error_code ec;
    // shutdown() wakes the blocked accept(); close() alone does not on Linux.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    if (accept_thread_.joinable()) accept_thread_.join();
    acceptor_.close(ec);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (tcp::socket* s : sockets_) s->shutdown(tcp::socket::shutdown_both, ec);
    }
    for (auto& t : threads_) t.join();
  }

 private:
  void AcceptLoop() {
    while (!stopped_) {
      auto socket = std::make_shared<tcp::socket>(io_);
      beast::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec || stopped_) return;
      ++owner_.connections_;
      std::lock_guard<std::mutex> lock(mu_);
      sockets_.push_back(socket.get());
      threads_.emplace_back([this, socket] {
        if (owner_.tls_) {
          beast::ssl_stream<tcp::socket&> stream(*socket, tls_ctx_);
          beast::error_code hec;
          stream.handshake(asio::ssl::stream_base::server, hec);
          if (!hec) Serve(stream);
        } else {
          Serve(*socket);
        }
        std::lock_guard<std::mutex> inner(mu_);
        sockets_.remove(socket.get());
      });
    }
  }

  template <typename Stream>
  void Serve(Stream& stream) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      beast::error_code ec;
      http::read(stream, buffer, req, ec);
      if (ec) return;
      ++owner_.requests_;
      int now = ++owner_.concurrent_;
      int seen = owner_.max_concurrent_;
      while (now > seen && !owner_.max_concurrent_.compare_exchange_weak(seen, now)) {
      }
      if (int ms = owner_.delay_ms_; ms > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      }
      TsaFault fault = owner_.fault_;
      --owner_.concurrent_;
      if (fault == TsaFault::kDrop) return;
      http::response<http::string_body> res;
      res.version(11);
      res.keep_alive(req.keep_alive());
      if (fault == TsaFault::kHttp503) {
        res.result(http::status::service_unavailable);
        res.body() = "busy";
      } else {
        res.result(http::status::ok);
        res.set(http::field::content_type, "application/timestamp-reply");
        res.body() =
            fault == TsaFault::kGarbage ? "not a DER TimeStampResp" : Answer(req.body(), fault);
      }
      res.prepare_payload();
      http::write(stream, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }

  // The token comes from TS_RESP_CTX; the nonce and imprint faults tamper with the request it
  // is given, so the TSA signs a well-formed token that does not answer the client's request.
  std::string Answer(const std::string& body, TsaFault fault) {
    if (fault == TsaFault::kRejection) {
      TS_RESP* resp = TS_RESP_new();
      TS_STATUS_INFO* info = TS_STATUS_INFO_new();
      TS_STATUS_INFO_set_status(info, TS_STATUS_REJECTION);
      TS_RESP_set_status_info(resp, info);
      TS_STATUS_INFO_free(info);
      std::string out = Der(resp);
      TS_RESP_free(resp);
      return out;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(body.data());
    TS_REQ* req = d2i_TS_REQ(nullptr, &p, static_cast<long>(body.size()));
    if (req == nullptr) return "";
    if (fault == TsaFault::kWrongNonce) {
      ASN1_INTEGER* nonce = ASN1_INTEGER_new();
      ASN1_INTEGER_set(nonce, 12345);
      TS_REQ_set_nonce(req, nonce);
      ASN1_INTEGER_free(nonce);
    } else if (fault == TsaFault::kWrongImprint) {
      ASN1_OCTET_STRING* msg = TS_MSG_IMPRINT_get_msg(TS_REQ_get_msg_imprint(req));
      std::string digest(reinterpret_cast<const char*>(ASN1_STRING_get0_data(msg)),
                         static_cast<std::size_t>(ASN1_STRING_length(msg)));
      digest[0] = static_cast<char>(digest[0] ^ 0x01);
      ASN1_STRING_set(msg, digest.data(), static_cast<int>(digest.size()));
    }
    BIO* in = BIO_new(BIO_s_mem());
    unsigned char* der = nullptr;
    int len = i2d_TS_REQ(req, &der);
    BIO_write(in, der, len);
    OPENSSL_free(der);
    TS_REQ_free(req);

    TS_RESP_CTX* ctx = TS_RESP_CTX_new();
    X509* signer = fault == TsaFault::kUntrusted                        ? rogue_cert_
                   : fault == TsaFault::kExpired && expired_ != nullptr ? expired_
                                                                        : cert_;
    TS_RESP_CTX_set_signer_cert(ctx, signer);
    TS_RESP_CTX_set_signer_key(ctx, fault == TsaFault::kUntrusted ? rogue_key_ : key_);
    TS_RESP_CTX_set_signer_digest(ctx, EVP_sha256());
    TS_RESP_CTX_set_ess_cert_id_digest(ctx, EVP_sha256());
    ASN1_OBJECT* policy = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
    TS_RESP_CTX_set_def_policy(ctx, policy);
    ASN1_OBJECT_free(policy);
    ASN1_OBJECT* other = OBJ_txt2obj("1.3.6.1.4.1.99999.2", 1);
    TS_RESP_CTX_add_policy(ctx, other);
    ASN1_OBJECT_free(other);
    TS_RESP_CTX_add_md(ctx, EVP_sha256());
    TS_RESP_CTX_add_md(ctx, EVP_sha384());
    TS_RESP_CTX_add_md(ctx, EVP_sha512());
    TS_RESP_CTX_set_serial_cb(ctx, NextSerial, &serial_);
    TS_RESP* resp = TS_RESP_create_response(ctx, in);
    if (resp != nullptr && fault == TsaFault::kEkuNotCritical) ResignWithNonCritical(resp);
    std::string out = resp ? Der(resp) : "";
    // The SignerInfo's signature (an ECDSA-Sig-Value) is the response's last element.
    if (fault == TsaFault::kBadSignature && !out.empty()) out.back() ^= 0x01;
    TS_RESP_free(resp);
    TS_RESP_CTX_free(ctx);
    BIO_free(in);
    ERR_clear_error();
    return out;
  }

  // TS_RESP_CTX refuses to sign with a certificate whose EKU is not critical, so this fault
  // re-signs the TSTInfo with plain CMS (no ESS attribute: the client refuses before it looks).
  void ResignWithNonCritical(TS_RESP* resp) {
    unsigned char* der = nullptr;
    int len = i2d_TS_TST_INFO(TS_RESP_get_tst_info(resp), &der);
    BIO* content = BIO_new_mem_buf(der, len);
    CMS_ContentInfo* cms =
        CMS_sign(nullptr, nullptr, nullptr, nullptr, CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP);
    CMS_set1_eContentType(cms, OBJ_nid2obj(NID_id_smime_ct_TSTInfo));
    CMS_add1_signer(cms, noncritical_, key_, EVP_sha256(), CMS_BINARY | CMS_NOSMIMECAP);
    CMS_final(cms, content, nullptr, CMS_BINARY);
    unsigned char* cms_der = nullptr;
    int cms_len = i2d_CMS_ContentInfo(cms, &cms_der);
    const unsigned char* p = cms_der;
    PKCS7* token = d2i_PKCS7(nullptr, &p, cms_len);
    const unsigned char* q = der;
    TS_TST_INFO* tst = d2i_TS_TST_INFO(nullptr, &q, len);
    TS_RESP_set_tst_info(resp, token, tst);
    OPENSSL_free(cms_der);
    CMS_ContentInfo_free(cms);
    BIO_free(content);
    OPENSSL_free(der);
  }

  TestTsa& owner_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  asio::ssl::context tls_ctx_;
  X509* cert_ = nullptr;
  X509* noncritical_ = nullptr;
  X509* rogue_cert_ = nullptr;
  X509* expired_ = nullptr;  // null without libfaketime (kExpired then signs with cert_)
  EVP_PKEY* key_ = nullptr;
  EVP_PKEY* rogue_key_ = nullptr;
  std::atomic<long> serial_{0};
  std::atomic<bool> stopped_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::list<tcp::socket*> sockets_;
  std::vector<std::thread> threads_;
};

TestTsa::TestTsa(TsaPki pki, bool tls) : tls_(tls) { impl_ = std::make_unique<Impl>(*this, pki); }
TestTsa::~TestTsa() { Stop(); }

Status TestTsa::Start(int port) {
  port_ = port;
  return impl_->Start(&port_);
}
void TestTsa::Stop() {
  if (impl_) impl_->Stop();
}

std::string TestTsa::url() const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/tsa";
}

TimestampedSeal ReadTimestampedSeal(const std::string& seal_der) {
  TimestampedSeal out;
  const auto* p = reinterpret_cast<const unsigned char*>(seal_der.data());
  CMS_ContentInfo* cms = d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(seal_der.size()));
  if (cms == nullptr) return out;
  CMS_SignerInfo* si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
  if (si != nullptr) {
    out.parsed = true;
    ASN1_OCTET_STRING* sig = CMS_SignerInfo_get0_signature(si);
    out.signature.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(sig)),
                         static_cast<std::size_t>(ASN1_STRING_length(sig)));
    for (int i = -1;
         (i = CMS_unsigned_get_attr_by_NID(si, NID_id_smime_aa_timeStampToken, i)) >= 0;) {
      auto* value = static_cast<ASN1_STRING*>(
          X509_ATTRIBUTE_get0_data(CMS_unsigned_get_attr(si, i), 0, V_ASN1_SEQUENCE, nullptr));
      if (value == nullptr) continue;
      out.tokens.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                              static_cast<std::size_t>(ASN1_STRING_length(value)));
    }
  }
  CMS_ContentInfo_free(cms);
  return out;
}

std::string OpensslTsVerify(const std::string& token_der, const std::string& signature,
                            const std::string& tsa_ca_pem, const std::string& token_path) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(signature.data(), signature.size(), md, &n, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) {
    hex += "0123456789abcdef"[md[i] >> 4];
    hex += "0123456789abcdef"[md[i] & 15];
  }
  WriteFile(token_path, token_der);
  CommandResult r = RunCommand("openssl ts -verify -token_in -in " + ShellQuote(token_path) +
                               " -digest " + hex + " -CAfile " + ShellQuote(tsa_ca_pem) + " 2>&1");
  if (r.exit_code == 0 && r.output.find("Verification: OK") != std::string::npos) return "";
  return r.output.empty() ? "openssl exit " + std::to_string(r.exit_code) : r.output;
}

}  // namespace qseal::testing
