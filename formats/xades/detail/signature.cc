#include "formats/xades/detail/signature.h"

#include <cstdio>
#include <ctime>
#include <memory>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>

namespace qseal::formats::xades::detail {
namespace {

constexpr std::string_view kCiiNs = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100";
constexpr std::string_view kUblNsPrefix = "urn:oasis:names:specification:ubl:schema:xsd:";
constexpr std::string_view kFatturaNsPrefix =
    "http://ivaservizi.agenziaentrate.gov.it/docs/xsd/fatture/";

struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

std::string Ns(const xmlNode* e) {
  return e->ns != nullptr ? reinterpret_cast<const char*>(e->ns->href) : "";
}

}  // namespace

std::string_view DigestUri(DigestAlgorithm digest) {
  switch (digest) {
    case DigestAlgorithm::kSha256:
      return "http://www.w3.org/2001/04/xmlenc#sha256";
    case DigestAlgorithm::kSha384:
      return "http://www.w3.org/2001/04/xmldsig-more#sha384";
    case DigestAlgorithm::kSha512:
      return "http://www.w3.org/2001/04/xmlenc#sha512";
  }
  return "";
}

std::string_view SignatureUri(DigestAlgorithm digest, SignatureScheme scheme) {
  static constexpr std::string_view kUris[3][3] = {
      {"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
       "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
       "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"},
      // RFC 6931 §2.3.10: MGF1 with the same digest, salt length = digest length, trailer 1.
      {"http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
       "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1",
       "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1"},
      {"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
       "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
       "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"},
  };
  return kUris[static_cast<int>(scheme)][static_cast<int>(digest)];
}

std::string_view C14nUri(C14nMode mode) {
  switch (mode) {
    case C14nMode::kInclusive10:
      return "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
    case C14nMode::kExclusive10:
      return "http://www.w3.org/2001/10/xml-exc-c14n#";
    case C14nMode::kInclusive11:
      return "http://www.w3.org/2006/12/xml-c14n11";
  }
  return "";
}

std::optional<DigestAlgorithm> ParseDigestUri(std::string_view uri) {
  for (DigestAlgorithm d :
       {DigestAlgorithm::kSha256, DigestAlgorithm::kSha384, DigestAlgorithm::kSha512}) {
    if (DigestUri(d) == uri) return d;
  }
  return std::nullopt;
}

std::optional<std::pair<DigestAlgorithm, SignatureScheme>> ParseSignatureUri(std::string_view uri) {
  for (SignatureScheme s :
       {SignatureScheme::kRsaPkcs1v15, SignatureScheme::kRsaPss, SignatureScheme::kEcdsa}) {
    for (DigestAlgorithm d :
         {DigestAlgorithm::kSha256, DigestAlgorithm::kSha384, DigestAlgorithm::kSha512}) {
      if (SignatureUri(d, s) == uri) return std::make_pair(d, s);
    }
  }
  return std::nullopt;
}

std::optional<C14nMode> ParseC14nUri(std::string_view uri) {
  for (C14nMode m : {C14nMode::kInclusive10, C14nMode::kExclusive10, C14nMode::kInclusive11}) {
    if (C14nUri(m) == uri) return m;
  }
  return std::nullopt;
}

Result<Insertion> PlanInsertion(xmlDoc* doc, ByteSpan bytes) {
  xmlNode* root = xmlDocGetRootElement(doc);
  QSEAL_ASSIGN_OR_RETURN(std::vector<ElementSpan> spans, ScanElements(bytes));
  if (spans.empty()) return InternalError("XML scan found no element");
  const ElementSpan& root_span = spans[0];
  const std::string ns = Ns(root);
  const std::string local = reinterpret_cast<const char*>(root->name);
  if (root_span.self_closing) {
    return InvalidArgumentError("the root element <" + local + "/> is empty: not an invoice");
  }
  Insertion ins;
  if (ns.starts_with(kUblNsPrefix)) {
    ins.syntax = "UBL";
    const std::string ext_ns(kUblExtensionNs);
    xmlNode* extensions = OnlyChild(root, kUblExtensionNs, "UBLExtensions");
    if (!Children(root, kUblExtensionNs, "UBLExtensions").empty() && extensions == nullptr) {
      return InvalidArgumentError("UBL document with more than one ext:UBLExtensions");
    }
    if (extensions != nullptr) {
      std::size_t index = ElementIndex(extensions);
      if (index >= spans.size()) return InternalError("XML scan disagrees with the parser");
      const ElementSpan& s = spans[index];
      if (s.self_closing) {
        return InvalidArgumentError(
            "UBL ext:UBLExtensions is written empty (<.../>): the signature cannot be added "
            "without rewriting it");
      }
      ins.offset = s.end_tag_start;
      ins.parent = extensions;
      ins.open = "<ext:UBLExtension xmlns:ext=\"" + ext_ns + "\"><ext:ExtensionContent>";
      ins.close = "</ext:ExtensionContent></ext:UBLExtension>";
    } else {
      // UBL 2.1 wants UBLExtensions as the root's first child.
      ins.offset = root_span.start_tag_end;
      ins.parent = root;
      ins.before = root->children;
      ins.open = "<ext:UBLExtensions xmlns:ext=\"" + ext_ns +
                 "\"><ext:UBLExtension><ext:ExtensionContent>";
      ins.close = "</ext:ExtensionContent></ext:UBLExtension></ext:UBLExtensions>";
    }
    return ins;
  }
  if (ns == kCiiNs && local == "CrossIndustryInvoice") {
    ins.syntax = "CII";
  } else if (local == "FatturaElettronica" && ns.starts_with(kFatturaNsPrefix)) {
    ins.syntax = "FatturaPA";
  } else {
    return InvalidArgumentError(
        "unknown root element {" + ns + "}" + local +
        " for xades-enveloped (known: UBL 2.1 documents, CII rsm:CrossIndustryInvoice, FatturaPA "
        "FatturaElettronica; use xades-detached for other XML)");
  }
  ins.offset = root_span.end_tag_start;
  ins.parent = root;
  return ins;
}

SignatureText BuildSignatureText(const SignatureFields& f) {
  const std::string c14n(C14nUri(f.c14n));
  const std::string digest(DigestUri(f.digest));
  const std::string ref_id = DocumentReferenceId(f.id);
  const std::string props_id = SignedPropertiesId(f.id);
  auto digest_method = [&] { return "<ds:DigestMethod Algorithm=\"" + digest + "\"/>"; };
  SignatureText t;
  std::string& h = t.head;
  h = "<ds:Signature xmlns:ds=\"" + std::string(kDsigNs) + "\" Id=\"" + f.id + "\">";
  h += "<ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"" + c14n + "\"/>";
  h += "<ds:SignatureMethod Algorithm=\"" + std::string(SignatureUri(f.digest, f.scheme)) + "\"/>";
  h += "<ds:Reference Id=\"" + ref_id + "\" URI=\"" + (f.enveloped ? "" : f.document_uri) + "\">";
  if (f.enveloped) {
    h += "<ds:Transforms><ds:Transform Algorithm=\"" + std::string(kEnvelopedTransformUri) +
         "\"/><ds:Transform Algorithm=\"" + c14n + "\"/></ds:Transforms>";
  }
  h += digest_method() + "<ds:DigestValue>" + f.document_digest + "</ds:DigestValue>";
  h += "</ds:Reference>";
  h += "<ds:Reference Type=\"" + std::string(kSignedPropertiesType) + "\" URI=\"#" + props_id +
       "\"><ds:Transforms><ds:Transform Algorithm=\"" + c14n + "\"/></ds:Transforms>";
  h += digest_method() + "<ds:DigestValue>" + f.properties_digest + "</ds:DigestValue>";
  h += "</ds:Reference></ds:SignedInfo>";
  h += "<ds:SignatureValue Id=\"" + f.id + "-sigvalue\">";

  std::string& tl = t.tail;
  tl = "</ds:SignatureValue><ds:KeyInfo><ds:X509Data>";
  for (const std::string& cert : f.chain) {
    tl += "<ds:X509Certificate>" + cert + "</ds:X509Certificate>";
  }
  tl += "</ds:X509Data></ds:KeyInfo>";
  tl += "<ds:Object><xades:QualifyingProperties xmlns:xades=\"" + std::string(kXadesNs) +
        "\" Target=\"#" + f.id + "\">";
  tl += "<xades:SignedProperties Id=\"" + props_id + "\"><xades:SignedSignatureProperties>";
  tl += "<xades:SigningTime>" + f.signing_time + "</xades:SigningTime>";
  tl += "<xades:SigningCertificateV2><xades:Cert><xades:CertDigest>" + digest_method() +
        "<ds:DigestValue>" + f.cert_digest + "</ds:DigestValue></xades:CertDigest>";
  tl += "<xades:IssuerSerialV2>" + f.issuer_serial +
        "</xades:IssuerSerialV2></xades:Cert></xades:SigningCertificateV2>";
  tl += "</xades:SignedSignatureProperties><xades:SignedDataObjectProperties>";
  tl += "<xades:DataObjectFormat ObjectReference=\"#" + ref_id + "\"><xades:MimeType>" +
        XmlEscape(f.mime_type) + "</xades:MimeType></xades:DataObjectFormat>";
  tl += "</xades:SignedDataObjectProperties></xades:SignedProperties>";
  tl += "</xades:QualifyingProperties></ds:Object></ds:Signature>";
  return t;
}

std::string FormatDateTime(std::chrono::system_clock::time_point t) {
  std::time_t secs =
      std::chrono::system_clock::to_time_t(std::chrono::time_point_cast<std::chrono::seconds>(t));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<std::chrono::system_clock::time_point> ParseDateTime(std::string_view text) {
  std::string s(text);
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return InvalidArgumentError("not an xsd:dateTime: \"" + s + "\"");
  }
  std::string_view rest = std::string_view(s).substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest.front() == '.') {
    std::size_t i = 1;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) ++i;
    rest.remove_prefix(i);
  }
  long offset_s = 0;
  if (rest == "Z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int hh = std::stoi(std::string(rest.substr(1, 2)));
    int mm = std::stoi(std::string(rest.substr(4, 2)));
    offset_s = (rest[0] == '+' ? 1 : -1) * (hh * 3600L + mm * 60L);
  } else {
    return InvalidArgumentError("xsd:dateTime without a time zone: \"" + s + "\"");
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm) - offset_s);
}

Result<Bytes> EcdsaDerToRaw(ByteSpan der, std::size_t coordinate_size) {
  const unsigned char* p = der.data();
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (sig == nullptr || p != der.data() + der.size()) {
    return InvalidArgumentError("ECDSA signature is not a DER ECDSA-Sig-Value");
  }
  Bytes raw(2 * coordinate_size);
  const int n = static_cast<int>(coordinate_size);
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw.data(), n) != n ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw.data() + coordinate_size, n) != n) {
    return InvalidArgumentError("ECDSA signature value larger than the curve");
  }
  return raw;
}

Result<Bytes> EcdsaRawToDer(ByteSpan raw) {
  if (raw.empty() || raw.size() % 2 != 0) {
    return InvalidArgumentError("ECDSA SignatureValue has an odd length");
  }
  const int half = static_cast<int>(raw.size() / 2);
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw.data(), half, nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + half, half, nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return InternalError("cannot build an ECDSA-Sig-Value");
  }
  unsigned char* out = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &out);
  if (len <= 0) return InternalError("cannot encode an ECDSA-Sig-Value");
  Bytes der(out, out + len);
  OPENSSL_free(out);
  return der;
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace qseal::formats::xades::detail
