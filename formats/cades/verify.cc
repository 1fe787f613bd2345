// Verify(): parses a seal with the local DER reader and checks each CAdES B-B requirement itself;
// OpenSSL is used only for the cryptography and the path validation.
#include "formats/cades/verify.h"

#include <algorithm>
#include <utility>

#include <openssl/x509v3.h>

#include "formats/cades/cades.h"
#include "formats/cades/detail/cms.h"
#include "formats/cades/detail/der.h"
#include "formats/cades/detail/openssl_util.h"

namespace qseal::formats::cades {
namespace {

using detail::ContextTag;
using detail::Element;
using detail::kTagInteger;
using detail::kTagOctetString;
using detail::kTagOctetStringConstructed;
using detail::kTagOid;
using detail::kTagSequence;
using detail::kTagSet;
using detail::Reader;

constexpr std::size_t kReadBufferSize = 64 * 1024;

bool Equal(ByteSpan a, ByteSpan b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

struct Attribute {
  ByteSpan oid;  // TLV
  std::vector<ByteSpan> values;
};

struct SignatureAlgorithm {
  DigestAlgorithm digest;
  SignatureScheme scheme;
  std::size_t pss_salt_length = 0;
  std::string name;
};

struct Parsed {
  ByteSpan econtent_type;                         // OID TLV
  std::optional<std::vector<ByteSpan>> econtent;  // OCTET STRING pieces when enveloping
  std::vector<ByteSpan> certificates;             // Certificate TLVs
  ByteSpan sid;                                   // IssuerAndSerialNumber contents
  ByteSpan digest_algorithm;                      // AlgorithmIdentifier TLV
  ByteSpan signed_attrs_content;                  // contents of [0] IMPLICIT SET OF
  std::vector<Attribute> attributes;
  ByteSpan signature_algorithm;  // AlgorithmIdentifier TLV
  ByteSpan signature;
};

Status ParseEContent(ByteSpan explicit_content, std::vector<ByteSpan>& pieces) {
  Reader r(explicit_content);
  QSEAL_ASSIGN_OR_RETURN(Element os, r.Next());
  if (!r.empty()) return InvalidArgumentError("eContent: trailing data");
  if (os.tag == kTagOctetString) {
    pieces.push_back(os.value);
    return Status::Ok();
  }
  if (os.tag != kTagOctetStringConstructed) {
    return InvalidArgumentError("eContent is not an OCTET STRING");
  }
  Reader chunks(os.value);  // constructed (BER) form with definite lengths
  while (!chunks.empty()) {
    QSEAL_ASSIGN_OR_RETURN(Element c, chunks.Expect(kTagOctetString, "eContent chunk"));
    pieces.push_back(c.value);
  }
  return Status::Ok();
}

Result<Parsed> Parse(ByteSpan seal) {
  Parsed p;
  Reader top(seal);
  QSEAL_ASSIGN_OR_RETURN(Element ci, top.Expect(kTagSequence, "ContentInfo"));
  if (!top.empty()) return InvalidArgumentError("trailing bytes after ContentInfo");
  Reader cir(ci.value);
  QSEAL_ASSIGN_OR_RETURN(Element ct, cir.Expect(kTagOid, "contentType"));
  if (!Equal(ct.whole, detail::GetOids().signed_data)) {
    return InvalidArgumentError("contentType is " + detail::OidToString(ct.value) +
                                ", not id-signedData");
  }
  QSEAL_ASSIGN_OR_RETURN(Element ex, cir.Expect(ContextTag(0), "content"));
  Reader exr(ex.value);
  QSEAL_ASSIGN_OR_RETURN(Element sd, exr.Expect(kTagSequence, "SignedData"));
  Reader s(sd.value);
  QSEAL_RETURN_IF_ERROR(s.Expect(kTagInteger, "SignedData.version").status());
  QSEAL_RETURN_IF_ERROR(s.Expect(kTagSet, "digestAlgorithms").status());
  QSEAL_ASSIGN_OR_RETURN(Element encap, s.Expect(kTagSequence, "encapContentInfo"));
  {
    Reader e(encap.value);
    QSEAL_ASSIGN_OR_RETURN(Element type, e.Expect(kTagOid, "eContentType"));
    p.econtent_type = type.whole;
    if (!e.empty()) {
      QSEAL_ASSIGN_OR_RETURN(Element ec, e.Expect(ContextTag(0), "eContent"));
      p.econtent.emplace();
      QSEAL_RETURN_IF_ERROR(ParseEContent(ec.value, *p.econtent));
    }
  }
  if (s.PeekTag() == ContextTag(0)) {
    QSEAL_ASSIGN_OR_RETURN(Element certs, s.Next());
    Reader cr(certs.value);
    while (!cr.empty()) {
      QSEAL_ASSIGN_OR_RETURN(Element c, cr.Next());
      if (c.tag == kTagSequence) p.certificates.push_back(c.whole);  // others: attribute certs
    }
  }
  if (s.PeekTag() == ContextTag(1)) QSEAL_RETURN_IF_ERROR(s.Next().status());  // crls
  QSEAL_ASSIGN_OR_RETURN(Element infos, s.Expect(kTagSet, "signerInfos"));
  Reader ir(infos.value);
  QSEAL_ASSIGN_OR_RETURN(Element si, ir.Expect(kTagSequence, "SignerInfo"));
  if (!ir.empty()) return InvalidArgumentError("more than one SignerInfo (not supported)");

  Reader r(si.value);
  QSEAL_RETURN_IF_ERROR(r.Expect(kTagInteger, "SignerInfo.version").status());
  if (r.PeekTag() != kTagSequence) {
    return InvalidArgumentError("SignerInfo.sid is not issuerAndSerialNumber");
  }
  QSEAL_ASSIGN_OR_RETURN(Element sid, r.Next());
  p.sid = sid.value;
  QSEAL_ASSIGN_OR_RETURN(Element da, r.Expect(kTagSequence, "SignerInfo.digestAlgorithm"));
  p.digest_algorithm = da.whole;
  if (r.PeekTag() != ContextTag(0)) {
    return InvalidArgumentError("SignerInfo has no signedAttrs (CAdES requires them)");
  }
  QSEAL_ASSIGN_OR_RETURN(Element sa, r.Next());
  p.signed_attrs_content = sa.value;
  QSEAL_ASSIGN_OR_RETURN(Element alg, r.Expect(kTagSequence, "SignerInfo.signatureAlgorithm"));
  p.signature_algorithm = alg.whole;
  QSEAL_ASSIGN_OR_RETURN(Element sig, r.Expect(kTagOctetString, "SignerInfo.signature"));
  p.signature = sig.value;

  Reader ar(p.signed_attrs_content);
  while (!ar.empty()) {
    QSEAL_ASSIGN_OR_RETURN(Element a, ar.Expect(kTagSequence, "Attribute"));
    Reader at(a.value);
    Attribute attr;
    QSEAL_ASSIGN_OR_RETURN(Element oid, at.Expect(kTagOid, "Attribute.type"));
    attr.oid = oid.whole;
    QSEAL_ASSIGN_OR_RETURN(Element values, at.Expect(kTagSet, "Attribute.values"));
    Reader vr(values.value);
    while (!vr.empty()) {
      QSEAL_ASSIGN_OR_RETURN(Element v, vr.Next());
      attr.values.push_back(v.whole);
    }
    p.attributes.push_back(std::move(attr));
  }
  return p;
}

Result<SignatureAlgorithm> ParseSignatureAlgorithm(ByteSpan alg, DigestAlgorithm digest) {
  const auto& oids = detail::GetOids();
  Reader outer(alg);
  QSEAL_ASSIGN_OR_RETURN(Element seq, outer.Expect(kTagSequence, "signatureAlgorithm"));
  Reader r(seq.value);
  QSEAL_ASSIGN_OR_RETURN(Element oid, r.Expect(kTagOid, "signatureAlgorithm.algorithm"));
  for (std::size_t i = 0; i < 3; ++i) {
    auto d = static_cast<DigestAlgorithm>(i);
    if (Equal(oid.whole, oids.sha_with_rsa[i])) {
      return SignatureAlgorithm{d, SignatureScheme::kRsaPkcs1v15, 0,
                                std::string(DigestName(d)) + "WithRSAEncryption"};
    }
    if (Equal(oid.whole, oids.ecdsa_with_sha[i])) {
      return SignatureAlgorithm{d, SignatureScheme::kEcdsa, 0,
                                "ecdsa-with-" + std::string(DigestName(d))};
    }
  }
  if (Equal(oid.whole, oids.rsa_encryption)) {
    return SignatureAlgorithm{digest, SignatureScheme::kRsaPkcs1v15, 0, "rsaEncryption"};
  }
  if (!Equal(oid.whole, oids.rsassa_pss)) {
    return InvalidArgumentError("unsupported signatureAlgorithm " + detail::OidToString(oid.value));
  }
  // RSASSA-PSS-params: all of hash, MGF1 hash and salt length must be explicit SHA-2 values.
  QSEAL_ASSIGN_OR_RETURN(Element params, r.Expect(kTagSequence, "RSASSA-PSS-params"));
  Reader pr(params.value);
  std::optional<DigestAlgorithm> hash, mgf_hash;
  std::size_t salt = 20;
  while (!pr.empty()) {
    QSEAL_ASSIGN_OR_RETURN(Element f, pr.Next());
    if (f.tag == ContextTag(0)) {
      hash = detail::ParseDigestAlgorithmId(f.value);
    } else if (f.tag == ContextTag(1)) {
      Reader m(f.value);
      QSEAL_ASSIGN_OR_RETURN(Element mseq, m.Expect(kTagSequence, "maskGenAlgorithm"));
      Reader mr(mseq.value);
      QSEAL_ASSIGN_OR_RETURN(Element moid, mr.Expect(kTagOid, "maskGenAlgorithm.algorithm"));
      if (!Equal(moid.whole, oids.mgf1))
        return InvalidArgumentError("PSS mask generation is not MGF1");
      QSEAL_ASSIGN_OR_RETURN(Element mh, mr.Expect(kTagSequence, "MGF1 hash"));
      mgf_hash = detail::ParseDigestAlgorithmId(mh.whole);
    } else if (f.tag == ContextTag(2)) {
      Reader sr(f.value);
      QSEAL_ASSIGN_OR_RETURN(Element si, sr.Expect(kTagInteger, "saltLength"));
      if (si.value.empty() || si.value.size() > 2 || (si.value[0] & 0x80) != 0) {
        return InvalidArgumentError("PSS saltLength out of range");
      }
      salt = 0;
      for (std::uint8_t b : si.value) salt = (salt << 8) | b;
    } else if (f.tag == ContextTag(3)) {
      Reader tr(f.value);
      QSEAL_ASSIGN_OR_RETURN(Element t, tr.Expect(kTagInteger, "trailerField"));
      if (t.value.size() != 1 || t.value[0] != 1)
        return InvalidArgumentError("PSS trailerField is not 1");
    }
  }
  if (!hash.has_value()) return InvalidArgumentError("PSS hash is not SHA-256/384/512");
  if (mgf_hash != hash) return InvalidArgumentError("PSS MGF1 hash differs from the hash");
  return SignatureAlgorithm{
      *hash, SignatureScheme::kRsaPss, salt,
      "RSASSA-PSS(" + std::string(DigestName(*hash)) + ", salt " + std::to_string(salt) + ")"};
}

// Checks the SigningCertificateV2 value against the signer certificate.
Status CheckSigningCertificate(ByteSpan value, ByteSpan cert_der,
                               const detail::CertificateIds& ids) {
  Reader top(value);
  QSEAL_ASSIGN_OR_RETURN(Element sc, top.Expect(kTagSequence, "SigningCertificateV2"));
  Reader scr(sc.value);
  QSEAL_ASSIGN_OR_RETURN(Element certs, scr.Expect(kTagSequence, "certs"));
  Reader cr(certs.value);
  QSEAL_ASSIGN_OR_RETURN(Element id, cr.Expect(kTagSequence, "ESSCertIDv2"));
  Reader ir(id.value);
  DigestAlgorithm hash = DigestAlgorithm::kSha256;  // DEFAULT
  if (ir.PeekTag() == kTagSequence) {
    QSEAL_ASSIGN_OR_RETURN(Element alg, ir.Next());
    auto d = detail::ParseDigestAlgorithmId(alg.whole);
    if (!d.has_value()) return InvalidArgumentError("ESSCertIDv2 hash is not SHA-256/384/512");
    hash = *d;
  }
  QSEAL_ASSIGN_OR_RETURN(Element cert_hash, ir.Expect(kTagOctetString, "certHash"));
  QSEAL_ASSIGN_OR_RETURN(Bytes expected, detail::Digest(hash, cert_der));
  if (!Equal(cert_hash.value, expected)) {
    return InvalidArgumentError("certHash " + HexEncode(cert_hash.value) + " is not the " +
                                std::string(DigestName(hash)) + " of the signer certificate (" +
                                HexEncode(expected) + ")");
  }
  if (!ir.empty()) {
    QSEAL_ASSIGN_OR_RETURN(Element is, ir.Expect(kTagSequence, "issuerSerial"));
    Reader isr(is.value);
    QSEAL_ASSIGN_OR_RETURN(Element names, isr.Expect(kTagSequence, "issuer GeneralNames"));
    QSEAL_ASSIGN_OR_RETURN(Element serial, isr.Expect(kTagInteger, "serialNumber"));
    Reader nr(names.value);
    QSEAL_ASSIGN_OR_RETURN(Element dn, nr.Expect(ContextTag(4), "directoryName"));
    if (!detail::SameName(dn.value, ids.issuer) || !Equal(serial.whole, ids.serial)) {
      return InvalidArgumentError("issuerSerial does not name the signer certificate");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<VerifyReport> Verify(ByteSpan seal, const std::optional<ReadFn>& detached_content,
                            const std::vector<Bytes>& trust_anchors_der,
                            const VerifyOptions& options,
                            SigningTimeAttribute signing_time_attribute) {
  std::vector<detail::X509Ptr> anchors;
  for (const Bytes& der : trust_anchors_der) {
    auto a = detail::ParseCertificate(der);
    if (!a.ok()) return a.status().WithContext("trust anchor");
    anchors.push_back(std::move(a).value());
  }

  VerifyReport report;
  auto add = [&report](std::string name, bool ok, std::string detail) {
    report.checks.push_back(Check{std::move(name), ok, std::move(detail)});
    return ok;
  };
  auto finish = [&report]() {
    report.ok = std::all_of(report.checks.begin(), report.checks.end(),
                            [](const Check& c) { return c.ok; });
    return report;
  };

  auto parsed = Parse(seal);
  if (!parsed.ok()) {
    add("structure", false, parsed.status().message());
    return finish();
  }
  Parsed& p = *parsed;
  const bool enveloping = p.econtent.has_value();
  report.format = enveloping ? "cades-enveloping" : "cades-detached";
  if (!enveloping && !detached_content.has_value()) {
    return InvalidArgumentError("detached seal: the content is needed to verify it");
  }
  if (enveloping && detached_content.has_value()) {
    return InvalidArgumentError("enveloping seal: it carries its content, none may be given");
  }
  auto digest = detail::ParseDigestAlgorithmId(p.digest_algorithm);
  if (!digest.has_value()) {
    add("structure", false, "SignerInfo.digestAlgorithm is not SHA-256/384/512");
    return finish();
  }
  add("structure", true,
      std::string("CMS SignedData, one SignerInfo by issuerAndSerialNumber, ") +
          (enveloping ? "enveloping" : "detached") + ", " + std::string(DigestName(*digest)));

  // The signer certificate, named by issuerAndSerialNumber.
  ByteSpan signer_der;
  detail::CertificateIds signer_ids;
  {
    Reader sr(p.sid);
    auto sid_issuer = sr.Expect(kTagSequence, "sid.issuer");
    auto sid_serial = sr.Expect(kTagInteger, "sid.serialNumber");
    if (!sid_issuer.ok() || !sid_serial.ok() || !sr.empty()) {
      add("signer-certificate", false, "malformed issuerAndSerialNumber");
      return finish();
    }
    for (ByteSpan c : p.certificates) {
      auto ids = detail::ParseCertificateIds(c);
      if (!ids.ok() || !Equal(ids->serial, sid_serial->whole)) continue;
      if (detail::SameName(ids->issuer, sid_issuer->whole)) {
        signer_der = c;
        signer_ids = *ids;
        break;
      }
    }
  }
  if (signer_der.empty()) {
    add("signer-certificate", false, "no certificate in the seal matches the SignerInfo sid");
    return finish();
  }
  auto signer = detail::ParseCertificate(signer_der);
  if (!signer.ok()) {
    add("signer-certificate", false, signer.status().message());
    return finish();
  }
  report.signer_certificate_der.assign(signer_der.begin(), signer_der.end());
  {
    char* subject = X509_NAME_oneline(X509_get_subject_name(signer->get()), nullptr, 0);
    add("signer-certificate", true, std::string("found: ") + (subject ? subject : "?"));
    OPENSSL_free(subject);
  }

  const auto& oids = detail::GetOids();
  auto find_once = [&](const Bytes& oid, const char* name) -> std::optional<ByteSpan> {
    int count = 0;
    const Attribute* found = nullptr;
    for (const Attribute& a : p.attributes) {
      if (Equal(a.oid, oid)) {
        ++count;
        found = &a;
      }
    }
    if (count != 1) {
      add(name, false, "present " + std::to_string(count) + " times, required exactly once");
      return std::nullopt;
    }
    if (found->values.size() != 1) {
      add(name, false, "has " + std::to_string(found->values.size()) + " values, required one");
      return std::nullopt;
    }
    return found->values.front();
  };

  // content-type
  if (auto v = find_once(oids.content_type, "content-type")) {
    if (!Equal(*v, p.econtent_type)) {
      add("content-type", false, "differs from eContentType");
    } else if (!Equal(*v, oids.data)) {
      add("content-type", false, "is not id-data");
    } else {
      add("content-type", true, "id-data");
    }
  }

  // message-digest
  Bytes content_digest;
  {
    detail::StreamDigest hasher(*digest);
    if (p.econtent.has_value()) {
      for (ByteSpan piece : *p.econtent) hasher.Update(piece);
    } else {
      Bytes buffer(kReadBufferSize);
      for (;;) {
        QSEAL_ASSIGN_OR_RETURN(std::size_t got, (*detached_content)(buffer));
        if (got == 0) break;
        if (got > buffer.size()) return InternalError("ReadFn returned more bytes than asked for");
        hasher.Update(ByteSpan(buffer.data(), got));
      }
    }
    QSEAL_ASSIGN_OR_RETURN(content_digest, hasher.Final());
  }
  if (auto v = find_once(oids.message_digest, "message-digest")) {
    Reader r(*v);
    auto os = r.Expect(kTagOctetString, "message-digest");
    if (!os.ok()) {
      add("message-digest", false, os.status().message());
    } else if (!Equal(os->value, content_digest)) {
      add("message-digest", false,
          "attribute " + HexEncode(os->value) + " != " + std::string(DigestName(*digest)) +
              " of the content " + HexEncode(content_digest) + " (content altered?)");
    } else {
      add("message-digest", true,
          std::string(DigestName(*digest)) + " " + HexEncode(content_digest));
    }
  }

  // signing-time
  auto not_before = detail::NotBefore(signer->get());
  auto not_after = detail::NotAfter(signer->get());
  if (signing_time_attribute == SigningTimeAttribute::kAbsent) {
    bool present = std::any_of(p.attributes.begin(), p.attributes.end(),
                               [&](const Attribute& a) { return Equal(a.oid, oids.signing_time); });
    add("signing-time", !present,
        present ? "present, but this profile forbids it (PAdES: the time is the PDF's /M)"
                : "absent, as this profile requires");
  } else if (auto v = find_once(oids.signing_time, "signing-time")) {
    auto t = detail::ParseTime(*v);
    if (!t.ok()) {
      add("signing-time", false, t.status().message());
    } else {
      report.signing_time = *t;
      auto secs = std::chrono::system_clock::to_time_t(*t);
      std::string when = std::to_string(secs) + " (unix seconds)";
      if (*t < not_before || *t > not_after) {
        add("signing-time", false, when + " is outside the signer certificate's validity");
      } else {
        add("signing-time", true, when + " within the signer certificate's validity");
      }
    }
  }

  // signing-certificate-v2 (and not the SHA-1 v1 form beside it).
  if (auto v = find_once(oids.signing_certificate_v2, "signing-certificate-v2")) {
    Status s = CheckSigningCertificate(*v, signer_der, signer_ids);
    add("signing-certificate-v2", s.ok(), s.ok() ? "hashes the signer certificate" : s.message());
  }

  // signature
  {
    auto alg = ParseSignatureAlgorithm(p.signature_algorithm, *digest);
    if (!alg.ok()) {
      add("signature", false, alg.status().message());
    } else if (alg->digest != *digest) {
      add("signature", false, "signatureAlgorithm hash differs from digestAlgorithm");
    } else {
      // The signature covers the DER SET OF: the [0] IMPLICIT tag replaced by SET.
      Bytes signed_set;
      detail::AppendTlv(signed_set, kTagSet, p.signed_attrs_content);
      Status s = detail::VerifySignature(X509_get0_pubkey(signer->get()), alg->digest, alg->scheme,
                                         alg->pss_salt_length, signed_set, p.signature);
      add("signature", s.ok(),
          s.ok() ? alg->name + " verifies with the signer certificate"
                 : alg->name + ": " + s.message());
    }
  }

  // chain
  {
    std::vector<detail::X509Ptr> owned;
    std::vector<X509*> untrusted;
    for (ByteSpan c : p.certificates) {
      auto x = detail::ParseCertificate(c);
      if (x.ok()) {
        untrusted.push_back(x->get());
        owned.push_back(std::move(x).value());
      }
    }
    std::vector<X509*> anchor_ptrs;
    for (auto& a : anchors) anchor_ptrs.push_back(a.get());
    auto at = options.validation_time.value_or(std::chrono::system_clock::now());
    if (anchor_ptrs.empty()) {
      add("chain", false, "no trust anchor given");
    } else {
      Status s = detail::VerifyChain(signer->get(), untrusted, anchor_ptrs, at);
      add("chain", s.ok(), s.ok() ? "chains to a trust anchor" : s.message());
    }
  }

  // key usage
  {
    auto ku = detail::KeyUsage(signer->get());
    if (!ku.has_value()) {
      add("key-usage", false, "signer certificate has no keyUsage extension");
    } else if ((*ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) == 0) {
      add("key-usage", false, "keyUsage has neither digitalSignature nor nonRepudiation");
    } else {
      std::string bits;
      if (*ku & KU_NON_REPUDIATION) bits += "nonRepudiation";
      if (*ku & KU_DIGITAL_SIGNATURE)
        bits += bits.empty() ? "digitalSignature" : ",digitalSignature";
      add("key-usage", true, bits);
    }
  }
  return finish();
}

}  // namespace qseal::formats::cades
