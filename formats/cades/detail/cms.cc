#include "formats/cades/detail/cms.h"

#include "formats/cades/detail/der.h"

namespace qseal::formats::cades::detail {
namespace {

constexpr std::uint8_t kNull[] = {kTagNull, 0x00};

void PutDigits(Bytes& out, unsigned value, int width) {
  char buf[4];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.insert(out.end(), buf, buf + width);
}

bool ReadDigits(ByteSpan s, std::size_t pos, int width, unsigned& value) {
  value = 0;
  for (int i = 0; i < width; ++i) {
    std::uint8_t c = s[pos + static_cast<std::size_t>(i)];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  return true;
}

}  // namespace

const Oids& GetOids() {
  static const Oids kOids = [] {
    Oids o;
    o.signed_data = Oid("1.2.840.113549.1.7.2");
    o.data = Oid("1.2.840.113549.1.7.1");
    o.content_type = Oid("1.2.840.113549.1.9.3");
    o.message_digest = Oid("1.2.840.113549.1.9.4");
    o.signing_time = Oid("1.2.840.113549.1.9.5");
    o.signing_certificate_v2 = Oid("1.2.840.113549.1.9.16.2.47");
    o.signing_certificate_v1 = Oid("1.2.840.113549.1.9.16.2.12");
    o.rsa_encryption = Oid("1.2.840.113549.1.1.1");
    o.rsassa_pss = Oid("1.2.840.113549.1.1.10");
    o.mgf1 = Oid("1.2.840.113549.1.1.8");
    o.sha_with_rsa[0] = Oid("1.2.840.113549.1.1.11");
    o.sha_with_rsa[1] = Oid("1.2.840.113549.1.1.12");
    o.sha_with_rsa[2] = Oid("1.2.840.113549.1.1.13");
    o.ecdsa_with_sha[0] = Oid("1.2.840.10045.4.3.2");
    o.ecdsa_with_sha[1] = Oid("1.2.840.10045.4.3.3");
    o.ecdsa_with_sha[2] = Oid("1.2.840.10045.4.3.4");
    o.sha[0] = Oid("2.16.840.1.101.3.4.2.1");
    o.sha[1] = Oid("2.16.840.1.101.3.4.2.2");
    o.sha[2] = Oid("2.16.840.1.101.3.4.2.3");
    return o;
  }();
  return kOids;
}

Bytes DigestAlgorithmId(DigestAlgorithm digest, bool null_parameters) {
  const Bytes& oid = GetOids().sha[Index(digest)];
  if (null_parameters) return Tlv(kTagSequence, {oid, kNull});
  return Tlv(kTagSequence, {oid});
}

Bytes SignatureAlgorithmId(DigestAlgorithm digest, SignatureScheme scheme) {
  const Oids& o = GetOids();
  switch (scheme) {
    case SignatureScheme::kRsaPkcs1v15:
      return Tlv(kTagSequence, {o.sha_with_rsa[Index(digest)], kNull});
    case SignatureScheme::kEcdsa:
      return Tlv(kTagSequence, {o.ecdsa_with_sha[Index(digest)]});
    case SignatureScheme::kRsaPss: {
      // RSASSA-PSS-params (RFC 4055): hashAlgorithm [0], maskGenAlgorithm [1] = MGF1 with the
      // same hash, saltLength [2] = hash length; trailerField [3] is 1, the DEFAULT, so DER omits
      // it.
      Bytes hash = DigestAlgorithmId(digest, /*null_parameters=*/true);
      Bytes mgf = Tlv(kTagSequence, {o.mgf1, hash});
      Bytes salt = SmallInteger(static_cast<std::uint32_t>(DigestSize(digest)));
      Bytes params = Tlv(kTagSequence, {Tlv(ContextTag(0), {hash}), Tlv(ContextTag(1), {mgf}),
                                        Tlv(ContextTag(2), {salt})});
      return Tlv(kTagSequence, {o.rsassa_pss, params});
    }
  }
  return {};
}

std::optional<DigestAlgorithm> ParseDigestAlgorithmId(ByteSpan algorithm_identifier) {
  Reader outer(algorithm_identifier);
  auto seq = outer.Expect(kTagSequence, "AlgorithmIdentifier");
  if (!seq.ok() || !outer.empty()) return std::nullopt;
  Reader r(seq->value);
  auto oid = r.Expect(kTagOid, "algorithm");
  if (!oid.ok()) return std::nullopt;
  if (!r.empty()) {
    auto params = r.Next();
    if (!params.ok() || params->tag != kTagNull || !params->value.empty() || !r.empty()) {
      return std::nullopt;
    }
  }
  const Oids& o = GetOids();
  for (std::size_t i = 0; i < 3; ++i) {
    if (ByteSpan(o.sha[i]).size() == oid->whole.size() &&
        std::equal(oid->whole.begin(), oid->whole.end(), o.sha[i].begin())) {
      return static_cast<DigestAlgorithm>(i);
    }
  }
  return std::nullopt;
}

Result<Bytes> EncodeTime(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto secs = floor<seconds>(t);
  auto day_point = floor<days>(secs);
  year_month_day ymd{day_point};
  hh_mm_ss hms{secs - day_point};
  int y = static_cast<int>(ymd.year());
  if (y < 1950 || y > 9999) {
    return InvalidArgumentError("signing time year " + std::to_string(y) +
                                " is outside 1950..9999");
  }
  bool utc = y <= 2049;
  Bytes out;
  out.reserve(17);
  out.push_back(utc ? kTagUtcTime : kTagGeneralizedTime);
  out.push_back(utc ? 13 : 15);
  if (utc) {
    PutDigits(out, static_cast<unsigned>(y % 100), 2);
  } else {
    PutDigits(out, static_cast<unsigned>(y), 4);
  }
  PutDigits(out, static_cast<unsigned>(ymd.month()), 2);
  PutDigits(out, static_cast<unsigned>(ymd.day()), 2);
  PutDigits(out, static_cast<unsigned>(hms.hours().count()), 2);
  PutDigits(out, static_cast<unsigned>(hms.minutes().count()), 2);
  PutDigits(out, static_cast<unsigned>(hms.seconds().count()), 2);
  out.push_back('Z');
  return out;
}

Result<std::chrono::system_clock::time_point> ParseTime(ByteSpan tlv) {
  Reader r(tlv);
  QSEAL_ASSIGN_OR_RETURN(Element e, r.Next());
  ByteSpan s = e.value;
  unsigned year = 0;
  std::size_t pos = 0;
  if (e.tag == kTagUtcTime && s.size() == 13) {
    if (!ReadDigits(s, 0, 2, year)) return InvalidArgumentError("malformed UTCTime");
    year += year >= 50 ? 1900 : 2000;
    pos = 2;
  } else if (e.tag == kTagGeneralizedTime && s.size() == 15) {
    if (!ReadDigits(s, 0, 4, year)) return InvalidArgumentError("malformed GeneralizedTime");
    if (year < 2050) {
      return InvalidArgumentError("GeneralizedTime before 2050 (RFC 5652 requires UTCTime)");
    }
    pos = 4;
  } else {
    return InvalidArgumentError(
        "time is neither YYMMDDHHMMSSZ UTCTime nor YYYYMMDDHHMMSSZ "
        "GeneralizedTime");
  }
  unsigned mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!ReadDigits(s, pos, 2, mo) || !ReadDigits(s, pos + 2, 2, d) ||
      !ReadDigits(s, pos + 4, 2, h) || !ReadDigits(s, pos + 6, 2, mi) ||
      !ReadDigits(s, pos + 8, 2, sec) || s[pos + 10] != 'Z') {
    return InvalidArgumentError("malformed time");
  }
  using namespace std::chrono;
  year_month_day ymd{std::chrono::year{static_cast<int>(year)}, month{mo}, day{d}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 59) return InvalidArgumentError("invalid time");
  return system_clock::time_point(sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec});
}

Result<CertificateIds> ParseCertificateIds(ByteSpan certificate_der) {
  Reader top(certificate_der);
  QSEAL_ASSIGN_OR_RETURN(Element cert, top.Expect(kTagSequence, "Certificate"));
  Reader c(cert.value);
  QSEAL_ASSIGN_OR_RETURN(Element tbs, c.Expect(kTagSequence, "TBSCertificate"));
  Reader t(tbs.value);
  if (t.PeekTag() == ContextTag(0)) {
    QSEAL_RETURN_IF_ERROR(t.Next().status());  // version
  }
  CertificateIds ids;
  QSEAL_ASSIGN_OR_RETURN(Element serial, t.Expect(kTagInteger, "serialNumber"));
  QSEAL_ASSIGN_OR_RETURN(Element sig, t.Expect(kTagSequence, "signature"));
  (void)sig;
  QSEAL_ASSIGN_OR_RETURN(Element issuer, t.Expect(kTagSequence, "issuer"));
  ids.serial = serial.whole;
  ids.issuer = issuer.whole;
  return ids;
}

}  // namespace qseal::formats::cades::detail
