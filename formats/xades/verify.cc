// Verify(): the seal is parsed with the same hardened libxml2 parser as documents, each node-set
// is canonicalised by libxml2 exactly as the builder does, and OpenSSL does the cryptography and
// path validation (through formats/cades/detail/openssl_util.h, shared with the CAdES verifier).
#include "formats/xades/verify.h"

#include <algorithm>
#include <string>
#include <utility>

#include <openssl/x509v3.h>

#include "common/sha256.h"
#include "formats/cades/detail/cms.h"
#include "formats/cades/detail/der.h"
#include "formats/cades/detail/openssl_util.h"
#include "formats/xades/detail/signature.h"
#include "formats/xades/detail/xml.h"

namespace qseal::formats::xades {
namespace {

namespace cd = cades::detail;
using detail::C14nMode;
using detail::kDsigNs;
using detail::kXadesNs;

constexpr std::size_t kReadBufferSize = 64 * 1024;

struct DataReference {
  xmlNode* node = nullptr;
  bool enveloped = false;
  C14nMode c14n = C14nMode::kInclusive10;  // XML-DSig's default for a node-set
  std::string uri;
};

// The parts of SignedInfo the checks need, or why the structure is refused.
struct Parsed {
  xmlNode* signature = nullptr;
  xmlNode* signed_info = nullptr;
  C14nMode c14n = C14nMode::kInclusive10;
  DigestAlgorithm sig_digest = DigestAlgorithm::kSha256;
  SignatureScheme scheme = SignatureScheme::kEcdsa;
  DataReference data;
  xmlNode* properties_ref = nullptr;
  xmlNode* properties = nullptr;
};

Result<DigestAlgorithm> ReferenceDigest(const xmlNode* reference) {
  xmlNode* method = detail::OnlyChild(reference, kDsigNs, "DigestMethod");
  auto d = method ? detail::ParseDigestUri(detail::Attribute(method, "Algorithm")) : std::nullopt;
  if (!d) return InvalidArgumentError("Reference DigestMethod missing or not SHA-256/384/512");
  return *d;
}

Result<Bytes> ReferenceValue(const xmlNode* reference) {
  xmlNode* value = detail::OnlyChild(reference, kDsigNs, "DigestValue");
  if (value == nullptr) return InvalidArgumentError("Reference without one DigestValue");
  return detail::Base64Decode(detail::Text(value));
}

std::vector<xmlNode*> Transforms(const xmlNode* reference) {
  xmlNode* t = detail::OnlyChild(reference, kDsigNs, "Transforms");
  return t ? detail::Children(t, kDsigNs, "Transform") : std::vector<xmlNode*>{};
}

Result<Parsed> ParseSignature(xmlDoc* doc) {
  Parsed p;
  xmlNode* root = xmlDocGetRootElement(doc);
  std::vector<xmlNode*> signatures = detail::Descendants(root, kDsigNs, "Signature");
  if (signatures.empty()) return InvalidArgumentError("no ds:Signature");
  p.signature = signatures[0];
  p.signed_info = detail::OnlyChild(p.signature, kDsigNs, "SignedInfo");
  if (p.signed_info == nullptr) return InvalidArgumentError("ds:Signature without one SignedInfo");
  xmlNode* cm = detail::OnlyChild(p.signed_info, kDsigNs, "CanonicalizationMethod");
  auto c14n = cm ? detail::ParseC14nUri(detail::Attribute(cm, "Algorithm")) : std::nullopt;
  if (!c14n) return InvalidArgumentError("CanonicalizationMethod missing or unknown");
  p.c14n = *c14n;
  xmlNode* sm = detail::OnlyChild(p.signed_info, kDsigNs, "SignatureMethod");
  auto alg = sm ? detail::ParseSignatureUri(detail::Attribute(sm, "Algorithm")) : std::nullopt;
  if (!alg) return InvalidArgumentError("SignatureMethod missing or unknown");
  if (sm->children != nullptr && xmlFirstElementChild(sm) != nullptr) {
    return InvalidArgumentError("SignatureMethod parameters are not supported");
  }
  p.sig_digest = alg->first;
  p.scheme = alg->second;

  for (xmlNode* ref : detail::Children(p.signed_info, kDsigNs, "Reference")) {
    if (detail::Attribute(ref, "Type") == detail::kSignedPropertiesType) {
      if (p.properties_ref != nullptr) {
        return InvalidArgumentError("more than one SignedProperties Reference");
      }
      p.properties_ref = ref;
      continue;
    }
    if (p.data.node != nullptr) return InvalidArgumentError("more than one data Reference");
    p.data.node = ref;
    xmlChar* uri = xmlGetNoNsProp(ref, reinterpret_cast<const xmlChar*>("URI"));
    if (uri == nullptr) return InvalidArgumentError("data Reference without URI");
    p.data.uri = reinterpret_cast<const char*>(uri);
    xmlFree(uri);
    std::vector<xmlNode*> transforms = Transforms(ref);
    if (p.data.uri.empty()) {
      for (xmlNode* t : transforms) {
        std::string a = detail::Attribute(t, "Algorithm");
        if (a == detail::kEnvelopedTransformUri) {
          p.data.enveloped = true;
        } else if (auto m = detail::ParseC14nUri(a); m && t == transforms.back()) {
          p.data.c14n = *m;
        } else {
          return InvalidArgumentError("unsupported Transform " + a);
        }
      }
      if (!p.data.enveloped) {
        return InvalidArgumentError("Reference URI=\"\" without the enveloped-signature transform");
      }
    } else if (p.data.uri.front() == '#') {
      return InvalidArgumentError("same-document data Reference " + p.data.uri +
                                  " is not supported");
    } else if (!transforms.empty()) {
      return InvalidArgumentError("transforms on a detached Reference are not supported");
    }
  }
  if (p.data.node == nullptr) return InvalidArgumentError("no data Reference");
  if (p.properties_ref == nullptr) return InvalidArgumentError("no SignedProperties Reference");
  std::string target = detail::Attribute(p.properties_ref, "URI");
  if (target.size() < 2 || target.front() != '#') {
    return InvalidArgumentError("SignedProperties Reference URI is not #id");
  }
  std::vector<xmlNode*> t = Transforms(p.properties_ref);
  if (t.size() > 1 ||
      (t.size() == 1 && !detail::ParseC14nUri(detail::Attribute(t[0], "Algorithm")))) {
    return InvalidArgumentError("SignedProperties Reference transforms must be one C14N");
  }
  // The Id is looked up inside this signature; Verify also requires it to be unique in the
  // whole document (no signature wrapping).
  std::string id = target.substr(1);
  std::vector<xmlNode*> props = detail::FindById(p.signature, kXadesNs, "SignedProperties", id);
  if (props.size() != 1) {
    return InvalidArgumentError("SignedProperties " + target + " not found once in the signature");
  }
  p.properties = props[0];
  return p;
}

// Counts every element (any name) carrying Id="id" under `root`.
std::size_t CountIds(const xmlNode* n, const std::string& id) {
  std::size_t count = 0;
  for (; n != nullptr; n = n->next) {
    if (n->type != XML_ELEMENT_NODE) continue;
    if (detail::Attribute(n, "Id") == id) ++count;
    count += CountIds(n->children, id);
  }
  return count;
}

Result<Bytes> DigestStream(const ReadFn& read, DigestAlgorithm digest) {
  Hasher hasher(digest);
  std::vector<std::uint8_t> buf(kReadBufferSize);
  while (true) {
    QSEAL_ASSIGN_OR_RETURN(std::size_t n, read(buf));
    if (n == 0) break;
    QSEAL_RETURN_IF_ERROR(hasher.Update(ByteSpan(buf.data(), n)));
  }
  return hasher.Final();
}

// Compares IssuerSerialV2 (DER IssuerSerial) with the certificate's issuer and serial.
Status CheckIssuerSerial(ByteSpan der, ByteSpan certificate) {
  QSEAL_ASSIGN_OR_RETURN(cd::CertificateIds ids, cd::ParseCertificateIds(certificate));
  cd::Reader outer(der);
  QSEAL_ASSIGN_OR_RETURN(cd::Element seq, outer.Expect(cd::kTagSequence, "IssuerSerial"));
  cd::Reader in(seq.value);
  QSEAL_ASSIGN_OR_RETURN(cd::Element names, in.Expect(cd::kTagSequence, "GeneralNames"));
  QSEAL_ASSIGN_OR_RETURN(cd::Element serial, in.Expect(cd::kTagInteger, "serialNumber"));
  cd::Reader gn(names.value);
  QSEAL_ASSIGN_OR_RETURN(cd::Element dir, gn.Expect(cd::ContextTag(4), "directoryName"));
  if (!gn.empty()) return InvalidArgumentError("IssuerSerialV2 names more than one issuer");
  if (!cd::SameName(dir.value, ids.issuer)) {
    return InvalidArgumentError("IssuerSerialV2 issuer differs from the certificate's");
  }
  if (!std::equal(serial.whole.begin(), serial.whole.end(), ids.serial.begin(), ids.serial.end())) {
    return InvalidArgumentError("IssuerSerialV2 serial differs from the certificate's");
  }
  return Status::Ok();
}

}  // namespace

bool LooksLikeXml(ByteSpan seal) {
  std::size_t i = seal.size() >= 3 && seal[0] == 0xEF && seal[1] == 0xBB && seal[2] == 0xBF ? 3 : 0;
  while (i < seal.size() &&
         (seal[i] == ' ' || seal[i] == '\t' || seal[i] == '\r' || seal[i] == '\n')) {
    ++i;
  }
  return i < seal.size() && seal[i] == '<';
}

Result<formats::VerifyReport> Verify(ByteSpan seal, const std::optional<ReadFn>& detached_content,
                                     const std::vector<Bytes>& trust_anchors_der,
                                     const formats::VerifyOptions& options) {
  std::vector<cd::X509Ptr> anchors;
  for (const Bytes& a : trust_anchors_der) {
    auto cert = cd::ParseCertificate(a);
    if (!cert.ok()) return cert.status().WithContext("trust anchor");
    anchors.push_back(std::move(cert).value());
  }
  formats::VerifyReport report;
  auto add = [&](std::string name, bool ok, std::string detail) {
    report.checks.push_back({std::move(name), ok, std::move(detail)});
  };
  auto finish = [&]() -> Result<formats::VerifyReport> {
    report.ok = !report.checks.empty() && std::all_of(report.checks.begin(), report.checks.end(),
                                                      [](const Check& c) { return c.ok; });
    return report;
  };

  auto doc = detail::ParseXml(seal, "seal");
  if (!doc.ok()) {
    add("structure", false, doc.status().message());
    return finish();
  }
  auto parsed = ParseSignature(doc->get());
  if (!parsed.ok()) {
    add("structure", false, parsed.status().message());
    return finish();
  }
  Parsed& p = *parsed;
  report.format = p.data.enveloped ? "xades-enveloped" : "xades-detached";
  if (p.data.enveloped && detached_content.has_value()) {
    return InvalidArgumentError("enveloped seal: it carries its content, none may be given");
  }
  if (!p.data.enveloped && !detached_content.has_value()) {
    return InvalidArgumentError("detached seal: the content is needed to verify it");
  }
  if (CountIds(xmlDocGetRootElement(doc->get()), detail::Attribute(p.properties, "Id")) != 1) {
    add("structure", false, "the SignedProperties Id is not unique in the document");
    return finish();
  }
  add("structure", true,
      std::string(report.format) + ", " + std::string(detail::C14nUri(p.c14n)) + ", " +
          std::string(SchemeName(p.scheme)) + "/" + std::string(DigestName(p.sig_digest)));

  // Signer certificate: the KeyInfo certificate SigningCertificateV2 names (else the first).
  xmlNode* sig_props = detail::OnlyChild(p.properties, kXadesNs, "SignedSignatureProperties");
  std::vector<Bytes> certs;
  if (xmlNode* ki = detail::OnlyChild(p.signature, kDsigNs, "KeyInfo")) {
    for (xmlNode* c : detail::Descendants(ki, kDsigNs, "X509Certificate")) {
      auto der = detail::Base64Decode(detail::Text(c));
      if (der.ok()) certs.push_back(std::move(der).value());
    }
  }
  std::vector<xmlNode*> v2 = sig_props
                                 ? detail::Children(sig_props, kXadesNs, "SigningCertificateV2")
                                 : std::vector<xmlNode*>{};
  std::vector<xmlNode*> cert_refs =
      v2.size() == 1 ? detail::Children(v2[0], kXadesNs, "Cert") : std::vector<xmlNode*>{};
  std::optional<std::size_t> signer;
  xmlNode* signer_ref = nullptr;
  for (xmlNode* ref : cert_refs) {
    xmlNode* cd_node = detail::OnlyChild(ref, kXadesNs, "CertDigest");
    if (cd_node == nullptr) continue;
    auto alg = ReferenceDigest(cd_node);
    auto value = ReferenceValue(cd_node);
    if (!alg.ok() || !value.ok()) continue;
    for (std::size_t i = 0; i < certs.size() && !signer; ++i) {
      auto d = Digest(*alg, certs[i]);
      if (d.ok() && *d == *value) {
        signer = i;
        signer_ref = ref;
      }
    }
  }
  if (!signer && !certs.empty()) signer = 0;
  if (!signer) {
    add("signer-certificate", false, "no X509Certificate in KeyInfo");
    return finish();
  }
  auto leaf = cd::ParseCertificate(certs[*signer]);
  if (!leaf.ok()) {
    add("signer-certificate", false, leaf.status().message());
    return finish();
  }
  report.signer_certificate_der = certs[*signer];
  char* subject = X509_NAME_oneline(X509_get_subject_name(leaf->get()), nullptr, 0);
  add("signer-certificate", true, std::string("found: ") + (subject ? subject : "?"));
  OPENSSL_free(subject);

  // The document.
  {
    auto alg = ReferenceDigest(p.data.node);
    auto expected = ReferenceValue(p.data.node);
    Result<Bytes> actual = InvalidArgumentError("unreachable");
    if (alg.ok()) {
      actual = p.data.enveloped
                   ? detail::DigestCanonical(doc->get(), nullptr, p.signature, p.data.c14n, *alg)
                   : DigestStream(*detached_content, *alg);
      if (!p.data.enveloped && !actual.ok()) return actual.status();
    }
    if (!alg.ok() || !expected.ok() || !actual.ok()) {
      add("reference-digest", false,
          (!alg.ok()        ? alg.status()
           : !expected.ok() ? expected.status()
                            : actual.status())
              .message());
    } else {
      add("reference-digest", *actual == *expected,
          *actual == *expected ? "document digest matches (" + std::string(DigestName(*alg)) + ")"
                               : "document digest differs: the document was changed");
    }
  }
  // SignedProperties.
  {
    std::vector<xmlNode*> t = Transforms(p.properties_ref);
    C14nMode mode = t.empty() ? C14nMode::kInclusive10
                              : *detail::ParseC14nUri(detail::Attribute(t[0], "Algorithm"));
    auto alg = ReferenceDigest(p.properties_ref);
    auto expected = ReferenceValue(p.properties_ref);
    auto actual = alg.ok() ? detail::DigestCanonical(doc->get(), p.properties, nullptr, mode, *alg)
                           : Result<Bytes>(alg.status());
    bool ok = expected.ok() && actual.ok() && *actual == *expected;
    add("signed-properties-digest", ok, ok ? "matches" : "SignedProperties digest differs");
  }
  // SigningTime.
  {
    std::vector<xmlNode*> times =
        sig_props ? detail::Children(sig_props, kXadesNs, "SigningTime") : std::vector<xmlNode*>{};
    if (times.size() != 1) {
      add("signing-time", false, std::to_string(times.size()) + " SigningTime elements");
    } else if (auto t = detail::ParseDateTime(detail::Text(times[0])); !t.ok()) {
      add("signing-time", false, t.status().message());
    } else {
      report.signing_time = *t;
      bool within = *t >= cd::NotBefore(leaf->get()) && *t <= cd::NotAfter(leaf->get());
      add("signing-time", within,
          detail::FormatDateTime(*t) + (within ? " within" : " outside") +
              " the signer certificate's validity");
    }
  }
  // SigningCertificateV2.
  if (v2.size() != 1 || signer_ref == nullptr) {
    add("signing-certificate-v2", false,
        v2.size() != 1 ? std::to_string(v2.size()) + " SigningCertificateV2 elements"
                       : "no Cert digest matches a KeyInfo certificate");
  } else if (xmlNode* is = detail::OnlyChild(signer_ref, kXadesNs, "IssuerSerialV2")) {
    auto der = detail::Base64Decode(detail::Text(is));
    Status st = der.ok() ? CheckIssuerSerial(*der, certs[*signer]) : der.status();
    add("signing-certificate-v2", st.ok(),
        st.ok() ? "certificate digest and IssuerSerialV2 match" : st.message());
  } else {
    add("signing-certificate-v2", true, "certificate digest matches (no IssuerSerialV2)");
  }
  // DataObjectFormat for the data reference.
  {
    std::string ref_id = detail::Attribute(p.data.node, "Id");
    xmlNode* sdop = detail::OnlyChild(p.properties, kXadesNs, "SignedDataObjectProperties");
    std::size_t found = 0;
    std::string mime;
    if (sdop != nullptr && !ref_id.empty()) {
      for (xmlNode* f : detail::Children(sdop, kXadesNs, "DataObjectFormat")) {
        if (detail::Attribute(f, "ObjectReference") != "#" + ref_id) continue;
        ++found;
        if (xmlNode* m = detail::OnlyChild(f, kXadesNs, "MimeType")) mime = detail::Text(m);
      }
    }
    bool ok = found == 1 && !mime.empty();
    add("data-object-format", ok,
        ok ? "MimeType " + mime
           : "no single DataObjectFormat with a MimeType for the data Reference");
  }
  // SignatureValue over the canonical SignedInfo.
  {
    std::string canonical;
    Status st = detail::Canonicalize(doc->get(), p.signed_info, nullptr, p.c14n,
                                     [&](std::string_view piece) { canonical += piece; });
    xmlNode* sv = detail::OnlyChild(p.signature, kDsigNs, "SignatureValue");
    Result<Bytes> value = sv ? detail::Base64Decode(detail::Text(sv))
                             : Result<Bytes>(InvalidArgumentError("no SignatureValue"));
    if (st.ok() && value.ok() && p.scheme == SignatureScheme::kEcdsa) {
      value = detail::EcdsaRawToDer(*value);
    }
    if (st.ok()) st = value.status();
    if (st.ok()) {
      st = cd::VerifySignature(X509_get0_pubkey(leaf->get()), p.sig_digest, p.scheme,
                               DigestSize(p.sig_digest), AsBytes(canonical), *value);
    }
    add("signature", st.ok(),
        st.ok() ? std::string(SchemeName(p.scheme)) + " signature verifies" : st.message());
  }
  // Chain and key usage.
  {
    std::vector<cd::X509Ptr> others;
    std::vector<X509*> untrusted;
    for (std::size_t i = 0; i < certs.size(); ++i) {
      if (i == *signer) continue;
      if (auto c = cd::ParseCertificate(certs[i]); c.ok()) {
        untrusted.push_back(c->get());
        others.push_back(std::move(c).value());
      }
    }
    std::vector<X509*> anchor_ptrs;
    for (auto& a : anchors) anchor_ptrs.push_back(a.get());
    if (anchor_ptrs.empty()) {
      add("chain", false, "no trust anchor given");
    } else {
      Status s =
          cd::VerifyChain(leaf->get(), untrusted, anchor_ptrs,
                          options.validation_time.value_or(std::chrono::system_clock::now()));
      add("chain", s.ok(), s.ok() ? "chains to a trust anchor" : s.message());
    }
    auto ku = cd::KeyUsage(leaf->get());
    if (!ku) {
      add("key-usage", false, "signer certificate has no keyUsage extension");
    } else if ((*ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) == 0) {
      add("key-usage", false, "keyUsage has neither digitalSignature nor nonRepudiation");
    } else {
      add("key-usage", true,
          std::string((*ku & KU_NON_REPUDIATION) ? "nonRepudiation " : "") +
              ((*ku & KU_DIGITAL_SIGNATURE) ? "digitalSignature" : ""));
    }
  }
  return finish();
}

}  // namespace qseal::formats::xades
