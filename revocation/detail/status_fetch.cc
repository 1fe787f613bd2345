#include "revocation/detail/status_fetch.h"

#include <algorithm>
#include <string_view>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <time.h>

#include "common/openssl_errors.h"

namespace qseal::revocation::detail {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
struct OcspRequestFree {
  void operator()(OCSP_REQUEST* r) const { OCSP_REQUEST_free(r); }
};
struct OcspResponseFree {
  void operator()(OCSP_RESPONSE* r) const { OCSP_RESPONSE_free(r); }
};
struct OcspBasicFree {
  void operator()(OCSP_BASICRESP* r) const { OCSP_BASICRESP_free(r); }
};
struct OcspCertIdFree {
  void operator()(OCSP_CERTID* id) const { OCSP_CERTID_free(id); }
};
struct CrlFree {
  void operator()(X509_CRL* c) const { X509_CRL_free(c); }
};
struct CertStackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};

// OpenSSL's queued errors as one line (and the queue cleared), e.g. for a refused response.
std::string OpenSslErrors() {
  std::string out = DrainOpenSslErrors();
  return out.empty() ? "no detail" : out;
}

Status Refused(std::string_view what) {
  return UnavailableError(std::string(what) + " (" + OpenSslErrors() + ")");
}

std::chrono::system_clock::time_point ToTimePoint(const ASN1_GENERALIZEDTIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

bool IsHttp(std::string_view url) { return url.rfind("http://", 0) == 0; }

int TimeoutSeconds(const FetchLimits& limits) {
  return static_cast<int>(std::max<std::int64_t>(1, (limits.timeout.count() + 999) / 1000));
}

Result<Bytes> ReadAll(BIO* bio, std::size_t max_bytes) {
  Bytes out;
  std::uint8_t buf[16384];
  for (;;) {
    int n = BIO_read(bio, buf, sizeof(buf));
    if (n <= 0) break;
    out.insert(out.end(), buf, buf + n);
    if (out.size() > max_bytes) return UnavailableError("the answer exceeds max_response_bytes");
  }
  if (out.empty()) return UnavailableError("empty answer");
  return out;
}

// POSTs (with `body`) or GETs `url` through OpenSSL's HTTP client; the body of a 200 answer.
Result<Bytes> HttpExchange(const std::string& url, const Bytes* body, const char* content_type,
                           const char* expected_type, const FetchLimits& limits) {
  if (!IsHttp(url)) return UnavailableError("only http:// URLs are fetched: " + url);
  std::unique_ptr<BIO, BioFree> answer;
  if (body == nullptr) {
    answer.reset(OSSL_HTTP_get(url.c_str(), nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0,
                               nullptr, expected_type, 1, limits.max_bytes,
                               TimeoutSeconds(limits)));
  } else {
    char *host = nullptr, *port = nullptr, *path = nullptr;
    int ssl = 0;
    if (OSSL_HTTP_parse_url(url.c_str(), &ssl, nullptr, &host, &port, nullptr, &path, nullptr,
                            nullptr) != 1) {
      return Refused("unparsable URL " + url);
    }
    std::unique_ptr<BIO, BioFree> request(
        BIO_new_mem_buf(body->data(), static_cast<int>(body->size())));
    answer.reset(OSSL_HTTP_transfer(nullptr, host, port, path, ssl, nullptr, nullptr, nullptr,
                                    nullptr, nullptr, nullptr, 0, nullptr, content_type,
                                    request.get(), expected_type, 1, limits.max_bytes,
                                    TimeoutSeconds(limits), 0));
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
  }
  if (!answer) return Refused("no answer from " + url);
  return ReadAll(answer.get(), limits.max_bytes);
}

std::string UriOf(const GENERAL_NAME* name) {
  if (name == nullptr || name->type != GEN_URI) return "";
  const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
  std::string s(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                static_cast<std::size_t>(ASN1_STRING_length(uri)));
  return IsHttp(s) ? s : "";
}

}  // namespace

std::string OcspUrl(X509* cert) {
  auto* aia = static_cast<AUTHORITY_INFO_ACCESS*>(
      X509_get_ext_d2i(cert, NID_info_access, nullptr, nullptr));
  std::string url;
  for (int i = 0; aia != nullptr && i < sk_ACCESS_DESCRIPTION_num(aia) && url.empty(); ++i) {
    ACCESS_DESCRIPTION* ad = sk_ACCESS_DESCRIPTION_value(aia, i);
    if (OBJ_obj2nid(ad->method) == NID_ad_OCSP) url = UriOf(ad->location);
  }
  AUTHORITY_INFO_ACCESS_free(aia);
  return url;
}

std::string CrlUrl(X509* cert) {
  auto* points = static_cast<STACK_OF(DIST_POINT)*>(
      X509_get_ext_d2i(cert, NID_crl_distribution_points, nullptr, nullptr));
  std::string url;
  for (int i = 0; points != nullptr && i < sk_DIST_POINT_num(points) && url.empty(); ++i) {
    DIST_POINT* dp = sk_DIST_POINT_value(points, i);
    if (dp->distpoint == nullptr || dp->distpoint->type != 0) continue;  // fullName only
    GENERAL_NAMES* names = dp->distpoint->name.fullname;
    for (int j = 0; j < sk_GENERAL_NAME_num(names) && url.empty(); ++j) {
      url = UriOf(sk_GENERAL_NAME_value(names, j));
    }
  }
  sk_DIST_POINT_pop_free(points, DIST_POINT_free);
  return url;
}

Result<CertStatus> FetchOcsp(X509* cert, X509* issuer, X509_STORE* trusted, const std::string& url,
                             const FetchLimits& limits) {
  std::unique_ptr<OCSP_CERTID, OcspCertIdFree> id(OCSP_cert_to_id(nullptr, cert, issuer));
  std::unique_ptr<OCSP_REQUEST, OcspRequestFree> request(OCSP_REQUEST_new());
  if (!id || !request) return Refused("making the OCSP request");
  OCSP_CERTID* request_id = OCSP_CERTID_dup(id.get());
  if (request_id == nullptr || OCSP_request_add0_id(request.get(), request_id) == nullptr) {
    OCSP_CERTID_free(request_id);
    return Refused("making the OCSP request");
  }
  int len = i2d_OCSP_REQUEST(request.get(), nullptr);
  if (len <= 0) return Refused("encoding the OCSP request");
  Bytes body(static_cast<std::size_t>(len));
  unsigned char* p = body.data();
  i2d_OCSP_REQUEST(request.get(), &p);

  QSEAL_ASSIGN_OR_RETURN(Bytes der, HttpExchange(url, &body, "application/ocsp-request",
                                                 "application/ocsp-response", limits));
  return CheckOcsp(cert, issuer, trusted, std::move(der));
}

Result<CertStatus> CheckOcsp(X509* cert, X509* issuer, X509_STORE* trusted, Bytes der) {
  std::unique_ptr<OCSP_CERTID, OcspCertIdFree> id(OCSP_cert_to_id(nullptr, cert, issuer));
  if (!id) return Refused("making the OCSP certificate id");
  const unsigned char* q = der.data();
  std::unique_ptr<OCSP_RESPONSE, OcspResponseFree> response(
      d2i_OCSP_RESPONSE(nullptr, &q, static_cast<long>(der.size())));
  if (!response || q != der.data() + der.size()) return Refused("the OCSP response is not DER");
  int status = OCSP_response_status(response.get());
  if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    return UnavailableError(std::string("the OCSP responder answered ") +
                            OCSP_response_status_str(status));
  }
  std::unique_ptr<OCSP_BASICRESP, OcspBasicFree> basic(OCSP_response_get1_basic(response.get()));
  if (!basic) return Refused("the OCSP response has no basic response");
  // The issuer may have signed it, or a responder certificate it issued (id-kp-OCSPSigning).
  std::unique_ptr<STACK_OF(X509), CertStackFree> untrusted(sk_X509_new_null());
  if (!untrusted || sk_X509_push(untrusted.get(), issuer) <= 0) return Refused("out of memory");
  if (OCSP_basic_verify(basic.get(), untrusted.get(), trusted, 0) <= 0) {
    return Refused("the OCSP response's signature does not verify");
  }
  int cert_status = 0, reason = 0;
  ASN1_GENERALIZEDTIME *revoked_at = nullptr, *this_update = nullptr, *next_update = nullptr;
  if (OCSP_resp_find_status(basic.get(), id.get(), &cert_status, &reason, &revoked_at, &this_update,
                            &next_update) != 1) {
    return UnavailableError("the OCSP response does not name the certificate");
  }
  if (OCSP_check_validity(this_update, next_update, 300, -1) != 1) {
    return Refused("the OCSP response is not current");
  }
  if (cert_status == V_OCSP_CERTSTATUS_REVOKED) {
    std::time_t at = std::chrono::system_clock::to_time_t(ToTimePoint(revoked_at));
    return FailedPreconditionError("OCSP: the certificate was revoked at " + std::to_string(at) +
                                   " (Unix time), reason " + OCSP_crl_reason_str(reason));
  }
  if (cert_status != V_OCSP_CERTSTATUS_GOOD) {
    return UnavailableError("OCSP: the responder does not know the certificate");
  }
  CertStatus out;
  out.der = std::move(der);
  out.this_update = ToTimePoint(this_update);
  if (next_update != nullptr) out.next_update = ToTimePoint(next_update);
  return out;
}

Result<CertStatus> FetchCrl(X509* cert, X509* issuer, const std::string& url,
                            const FetchLimits& limits) {
  QSEAL_ASSIGN_OR_RETURN(Bytes der, HttpExchange(url, nullptr, nullptr, nullptr, limits));
  return CheckCrl(cert, issuer, std::move(der));
}

Result<CertStatus> CheckCrl(X509* cert, X509* issuer, Bytes der) {
  const unsigned char* q = der.data();
  std::unique_ptr<X509_CRL, CrlFree> crl(d2i_X509_CRL(nullptr, &q, static_cast<long>(der.size())));
  if (!crl || q != der.data() + der.size()) return Refused("the CRL is not DER");
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(issuer)) != 0 ||
      X509_CRL_verify(crl.get(), X509_get0_pubkey(issuer)) != 1) {
    return Refused("the CRL is not signed by the certificate's issuer");
  }
  const auto now = std::chrono::system_clock::now();
  const ASN1_TIME* last = X509_CRL_get0_lastUpdate(crl.get());
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
  if (ToTimePoint(last) > now + std::chrono::minutes(5) ||
      (next != nullptr && ToTimePoint(next) < now)) {
    return UnavailableError("the CRL is not current");
  }
  X509_REVOKED* entry = nullptr;
  if (X509_CRL_get0_by_cert(crl.get(), &entry, cert) == 1) {
    return FailedPreconditionError("CRL: the certificate is revoked");
  }
  CertStatus out;
  out.der = std::move(der);
  out.is_crl = true;
  out.this_update = ToTimePoint(last);
  if (next != nullptr) out.next_update = ToTimePoint(next);
  return out;
}

}  // namespace qseal::revocation::detail
