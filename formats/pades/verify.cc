// Verify(): qpdf finds the signature dictionaries; the byte ranges are checked against the raw
// bytes (not qpdf's view of them), and the CMS goes to cades::Verify over exactly those bytes.
#include "formats/pades/verify.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include <openssl/asn1.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <time.h>

#include "formats/cades/verify.h"
#include "formats/pades/detail/pdf_open.h"

namespace qseal::formats::pades {
namespace {

constexpr int kMaxFieldDepth = 32;

// Frees what a d2i_ call made; true when it made something.
bool Parsed(X509* x) {
  X509_free(x);
  return x != nullptr;
}
bool Parsed(OCSP_RESPONSE* r) {
  OCSP_RESPONSE_free(r);
  return r != nullptr;
}
bool Parsed(X509_CRL* c) {
  X509_CRL_free(c);
  return c != nullptr;
}

struct SignatureField {
  std::string name;
  QPDFObjectHandle value;  // the signature dictionary (/V)
};

void CollectSignatures(QPDFObjectHandle fields, const std::string& parent, int depth,
                       std::vector<SignatureField>& out) {
  if (!fields.isArray() || depth > kMaxFieldDepth) return;
  for (QPDFObjectHandle& f : fields.getArrayAsVector()) {
    if (!f.isDictionary()) continue;
    std::string name = parent;
    if (f.getKey("/T").isString()) {
      name += (name.empty() ? "" : ".") + f.getKey("/T").getUTF8Value();
    }
    if (f.getKey("/Kids").isArray()) CollectSignatures(f.getKey("/Kids"), name, depth + 1, out);
    if (f.getKey("/FT").isNameAndEquals("/Sig") && f.getKey("/V").isDictionary()) {
      out.push_back({name.empty() ? "signature" : name, f.getKey("/V")});
    }
  }
}

bool IsHex(std::uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// "D:YYYYMMDDHHmmSS" followed by Z, +HH'mm' or -HH'mm' (or nothing: taken as UTC).
Result<std::chrono::system_clock::time_point> ParsePdfDate(const std::string& s) {
  if (s.size() < 16 || s.compare(0, 2, "D:") != 0 ||
      !std::all_of(s.begin() + 2, s.begin() + 16, [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgumentError("/M \"" + s + "\" is not a PDF date D:YYYYMMDDHHmmSS");
  }
  auto num = [&](std::size_t at, std::size_t n) { return std::stoi(s.substr(at, n)); };
  std::tm tm{};
  tm.tm_year = num(2, 4) - 1900;
  tm.tm_mon = num(6, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(10, 2);
  tm.tm_min = num(12, 2);
  tm.tm_sec = num(14, 2);
  auto t = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (s.size() >= 19 && (s[16] == '+' || s[16] == '-')) {
    int minutes = num(17, 2) * 60 + (s.size() >= 23 ? num(20, 2) : 0);
    t -= std::chrono::minutes(s[16] == '+' ? minutes : -minutes);
  }
  return t;
}

struct Validity {
  std::chrono::system_clock::time_point not_before, not_after;
};

Result<Validity> CertificateValidity(const Bytes& der) {
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (cert == nullptr) return InvalidArgumentError("signer certificate does not parse");
  std::tm before{}, after{};
  bool ok = ASN1_TIME_to_tm(X509_get0_notBefore(cert), &before) == 1 &&
            ASN1_TIME_to_tm(X509_get0_notAfter(cert), &after) == 1;
  X509_free(cert);
  if (!ok) return InvalidArgumentError("signer certificate validity does not parse");
  return Validity{std::chrono::system_clock::from_time_t(timegm(&before)),
                  std::chrono::system_clock::from_time_t(timegm(&after))};
}

// The length of the DER TLV starting `der` (a CMS ContentInfo SEQUENCE), or 0 if malformed.
std::size_t TlvLength(ByteSpan der) {
  if (der.size() < 2 || der[0] != 0x30) return 0;
  std::size_t len = der[1], header = 2;
  if (len & 0x80) {
    std::size_t n = len & 0x7f;
    if (n == 0 || n > 4 || der.size() < 2 + n) return 0;
    len = 0;
    for (std::size_t i = 0; i < n; ++i) len = (len << 8) | der[2 + i];
    header += n;
  }
  return header + len <= der.size() ? header + len : 0;
}

// Reads `pdf`[0, a) then [b, b + c): the bytes a ByteRange signs.
ReadFn ByteRangeReader(ByteSpan pdf, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  auto pieces = std::make_shared<std::vector<ByteSpan>>(
      std::vector<ByteSpan>{pdf.subspan(0, static_cast<std::size_t>(a)),
                            pdf.subspan(static_cast<std::size_t>(b), static_cast<std::size_t>(c))});
  return [pieces](std::span<std::uint8_t> buffer) -> Result<std::size_t> {
    while (!pieces->empty() && pieces->front().empty()) pieces->erase(pieces->begin());
    if (pieces->empty()) return std::size_t{0};
    ByteSpan& p = pieces->front();
    std::size_t n = std::min(buffer.size(), p.size());
    std::copy_n(p.begin(), n, buffer.begin());
    p = p.subspan(n);
    return n;
  };
}

// True when pdf[0, end) ends with "%%EOF" and an optional end-of-line: the end of a revision.
bool EndsRevision(ByteSpan pdf, std::uint64_t end) {
  auto e = static_cast<std::size_t>(end);
  while (e > 0 && (pdf[e - 1] == '\n' || pdf[e - 1] == '\r')) --e;
  static constexpr char kEof[] = "%%EOF";
  return e >= 5 && std::equal(kEof, kEof + 5, pdf.begin() + static_cast<long>(e - 5));
}

// The keys of `dict` but /DSS with their values unparsed: what the catalog may not change in a
// validation-data update.
std::map<std::string, std::string> CatalogWithoutDss(QPDFObjectHandle dict) {
  std::map<std::string, std::string> out;
  for (const std::string& key : dict.getKeys()) {
    if (key != "/DSS") out[key] = dict.getKey(key).unparse();
  }
  return out;
}

// Whether the updates after byte `signed_end` (where the revision the last signature covers
// ends) add only validation data (PAdES B-LT, EN 319 142-1 §5.4): every object they write is new
// or the catalog, the catalog changes only its /DSS, and the trailer keeps its /Root and /Info.
// New objects are then reachable only through the DSS, so what the signature covers is still
// the whole document as displayed. kInvalidArgument says what else changed.
Status OnlyValidationDataAfter(QPDF& whole, ByteSpan pdf, std::uint64_t signed_end) {
  // Later revisions, not bytes merely appended: the file ends one, and its last xref is in them.
  Result<std::uint64_t> last_xref = detail::LastStartXref(detail::PdfBytes::InMemory(pdf));
  if (!EndsRevision(pdf, pdf.size()) || !last_xref.ok() || *last_xref < signed_end) {
    return InvalidArgumentError("they are not an incremental update");
  }
  QSEAL_ASSIGN_OR_RETURN(std::unique_ptr<QPDF> signed_revision,
                         detail::OpenPdf(pdf.subspan(0, static_cast<std::size_t>(signed_end))));
  return detail::CatchQpdf("PDF structure is broken", [&]() -> Status {
    std::map<QPDFObjGen, QPDFXRefEntry> before = signed_revision->getXRefTable();
    std::map<QPDFObjGen, QPDFXRefEntry> after = whole.getXRefTable();
    auto written_later = [&](const QPDFXRefEntry& e) {
      if (e.getType() == 1) return static_cast<std::uint64_t>(e.getOffset()) >= signed_end;
      if (e.getType() != 2) return false;
      auto stream = after.find(QPDFObjGen(e.getObjStreamNumber(), 0));
      return stream == after.end() || stream->second.getType() != 1 ||
             static_cast<std::uint64_t>(stream->second.getOffset()) >= signed_end;
    };
    QPDFObjectHandle root = whole.getRoot(), signed_root = signed_revision->getRoot();
    if (root.getObjGen() != signed_root.getObjGen()) {
      return InvalidArgumentError("a later update replaces the catalog");
    }
    if (whole.getTrailer().getKey("/Info").unparse() !=
        signed_revision->getTrailer().getKey("/Info").unparse()) {
      return InvalidArgumentError("a later update replaces the document information");
    }
    for (const auto& [og, entry] : after) {
      if (!written_later(entry) || before.count(og) == 0) continue;
      if (og != root.getObjGen()) {
        return InvalidArgumentError("a later update changes object " + og.unparse(' '));
      }
      if (CatalogWithoutDss(root) != CatalogWithoutDss(signed_root)) {
        return InvalidArgumentError("a later update changes the catalog beyond its /DSS");
      }
    }
    return Status::Ok();
  });
}

// The catalog's /DSS, each stream parsed as what its array holds: "N certificate(s), ..." or
// why not; "" when there is no DSS.
Result<std::string> DescribeDss(QPDF& q) {
  return detail::CatchQpdf("DSS", [&]() -> Result<std::string> {
    QPDFObjectHandle dss = q.getRoot().getKey("/DSS");
    if (!dss.isDictionary()) return std::string();
    struct Kind {
      const char* key;
      const char* what;
      bool (*parses)(const unsigned char** p, long size);
    };
    static const Kind kKinds[] = {
        {"/Certs", "certificate(s)",
         [](const unsigned char** p, long n) { return Parsed(d2i_X509(nullptr, p, n)); }},
        {"/OCSPs", "OCSP response(s)",
         [](const unsigned char** p, long n) { return Parsed(d2i_OCSP_RESPONSE(nullptr, p, n)); }},
        {"/CRLs", "CRL(s)",
         [](const unsigned char** p, long n) { return Parsed(d2i_X509_CRL(nullptr, p, n)); }},
    };
    std::string out;
    for (const Kind& kind : kKinds) {
      QPDFObjectHandle array = dss.getKey(kind.key);
      std::size_t count = 0;
      if (array.isArray()) {
        for (QPDFObjectHandle& item : array.getArrayAsVector()) {
          if (!item.isStream())
            return InvalidArgumentError(std::string(kind.key) + " holds a non-stream");
          std::shared_ptr<Buffer> data = item.getStreamData(qpdf_dl_generalized);
          const unsigned char* p = data->getBuffer();
          if (!kind.parses(&p, static_cast<long>(data->getSize()))) {
            return InvalidArgumentError(std::string(kind.key) + " item " + std::to_string(count) +
                                        " does not parse as DER");
          }
          ++count;
        }
      }
      out += (out.empty() ? "" : ", ") + std::to_string(count) + " " + kind.what;
    }
    return out;
  });
}

}  // namespace

Result<VerifyReport> Verify(ByteSpan pdf, const std::vector<Bytes>& trust_anchors_der,
                            const VerifyOptions& options) {
  VerifyReport report;
  report.format = "pades";
  auto add = [&report](std::string name, bool ok, std::string detail) {
    report.checks.push_back(Check{std::move(name), ok, std::move(detail)});
    return ok;
  };
  auto finish = [&report]() {
    report.ok = !report.checks.empty() && std::all_of(report.checks.begin(), report.checks.end(),
                                                      [](const Check& c) { return c.ok; });
    return report;
  };

  auto opened = detail::OpenPdf(pdf);
  if (!opened.ok()) {
    add("structure", false, opened.status().message());
    return finish();
  }
  QPDF& q = **opened;
  std::vector<SignatureField> signatures;
  Status walked = detail::CatchQpdf("PDF structure is broken", [&]() -> Status {
    QPDFObjectHandle acroform = q.getRoot().getKey("/AcroForm");
    if (acroform.isDictionary()) CollectSignatures(acroform.getKey("/Fields"), "", 0, signatures);
    return Status::Ok();
  });
  if (!walked.ok() || signatures.empty()) {
    add("structure", false, walked.ok() ? "no signature field with a value" : walked.message());
    return finish();
  }
  add("structure", true, std::to_string(signatures.size()) + " signature(s)");

  std::uint64_t last_end = 0;
  for (SignatureField& sig : signatures) {
    const std::string& n = sig.name;
    std::string sub_filter, date;
    std::vector<long long> range;
    std::string contents;
    Status read = detail::CatchQpdf("signature dictionary", [&]() -> Status {
      QPDFObjectHandle v = sig.value;
      if (v.getKey("/SubFilter").isName()) sub_filter = v.getKey("/SubFilter").getName();
      if (v.getKey("/M").isString()) date = v.getKey("/M").getUTF8Value();
      if (v.getKey("/Contents").isString()) contents = v.getKey("/Contents").getStringValue();
      QPDFObjectHandle br = v.getKey("/ByteRange");
      if (br.isArray()) {
        for (QPDFObjectHandle& e : br.getArrayAsVector()) {
          range.push_back(e.isInteger() ? e.getIntValue() : -1);
        }
      }
      return Status::Ok();
    });
    if (!read.ok()) {
      add(n + "/structure", false, read.message());
      continue;
    }
    if (!add(n + "/sub-filter", sub_filter == "/ETSI.CAdES.detached",
             sub_filter.empty()
                 ? "no /SubFilter"
                 : sub_filter + (sub_filter == "/ETSI.CAdES.detached"
                                     ? ""
                                     : " (PAdES baseline needs /ETSI.CAdES.detached)"))) {
      continue;
    }

    // byte-range: [0 a b c], the gap [a, b) is exactly the /Contents hex string.
    bool shape =
        range.size() == 4 && range[0] == 0 && range[1] > 0 && range[2] > range[1] &&
        range[3] >= 0 &&
        static_cast<std::uint64_t>(range[2]) + static_cast<std::uint64_t>(range[3]) <= pdf.size();
    if (!shape) {
      add(n + "/byte-range", false, "not [0 a b c] with 0 < a < b and b + c within the file");
      continue;
    }
    auto a = static_cast<std::uint64_t>(range[1]), b = static_cast<std::uint64_t>(range[2]),
         c = static_cast<std::uint64_t>(range[3]);
    ByteSpan gap = pdf.subspan(static_cast<std::size_t>(a), static_cast<std::size_t>(b - a));
    bool delimited = gap.size() >= 2 && gap.front() == '<' && gap.back() == '>' &&
                     std::all_of(gap.begin() + 1, gap.end() - 1, IsHex);
    auto decoded = delimited ? HexDecode(std::string_view(
                                   reinterpret_cast<const char*>(gap.data()) + 1, gap.size() - 2))
                             : Result<Bytes>(InvalidArgumentError("not hex"));
    if (!delimited || !decoded.ok() || std::string(decoded->begin(), decoded->end()) != contents) {
      add(n + "/byte-range", false,
          "the gap [" + std::to_string(a) + ", " + std::to_string(b) +
              ") is not exactly the /Contents hex string");
      continue;
    }
    std::uint64_t end = b + c;
    bool whole = end == pdf.size();
    if (!add(n + "/byte-range", whole || EndsRevision(pdf, end),
             whole ? "covers the whole file except /Contents"
                   : "covers the revision ending at byte " + std::to_string(end) +
                         (EndsRevision(pdf, end) ? " (later incremental updates follow)"
                                                 : ", which is not the end of a revision"))) {
      continue;
    }
    last_end = std::max(last_end, end);

    // contents: one DER CMS, then only the placeholder's zero padding.
    std::size_t cms_size = TlvLength(*decoded);
    bool padded =
        cms_size > 0 && std::all_of(decoded->begin() + static_cast<long>(cms_size), decoded->end(),
                                    [](std::uint8_t x) { return x == 0; });
    if (!add(n + "/contents", padded,
             padded ? "DER CMS of " + std::to_string(cms_size) + " bytes in " +
                          std::to_string(decoded->size())
                    : "/Contents is not one DER SEQUENCE followed by zero padding")) {
      continue;
    }

    QSEAL_ASSIGN_OR_RETURN(
        VerifyReport cms,
        cades::Verify(ByteSpan(decoded->data(), cms_size), ByteRangeReader(pdf, a, b, c),
                      trust_anchors_der, options, cades::SigningTimeAttribute::kAbsent));
    for (Check& check : cms.checks) {
      add(n + "/" + check.name, check.ok, std::move(check.detail));
    }

    // m: the signing time PAdES states, inside the certificate's validity.
    auto when = ParsePdfDate(date);
    if (!when.ok()) {
      add(n + "/m", false, date.empty() ? "no /M" : when.status().message());
    } else if (!cms.signer_certificate_der.empty()) {
      auto validity = CertificateValidity(cms.signer_certificate_der);
      bool inside = validity.ok() && *when >= validity->not_before && *when <= validity->not_after;
      add(n + "/m", inside,
          date + (inside ? " within the signer certificate's validity"
                         : " is outside the signer certificate's validity"));
    }
    if (end == last_end) {
      report.signing_time = when.ok() ? *when : std::chrono::system_clock::time_point{};
      report.signer_certificate_der = std::move(cms.signer_certificate_der);
    }
  }
  if (last_end == pdf.size()) {
    add("whole-document", true, "the last signature covers the whole file");
  } else {
    const std::string uncovered =
        "bytes " + std::to_string(last_end) + ".." + std::to_string(pdf.size());
    Status later = last_end == 0 ? InvalidArgumentError("no signature checks out")
                                 : OnlyValidationDataAfter(q, pdf, last_end);
    add("whole-document", later.ok(),
        later.ok() ? "the last signature covers the whole file but " + uncovered +
                         ", which add only validation data (a DSS)"
                   : uncovered + " are covered by no signature: " + later.message());
  }
  Result<std::string> dss = DescribeDss(q);
  if (!dss.ok()) {
    add("dss", false, dss.status().message());
  } else if (!dss->empty()) {
    add("dss", true, *dss);
  }
  return finish();
}

}  // namespace qseal::formats::pades
