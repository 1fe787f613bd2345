// The XAdES formats. Prepare builds the whole ds:Signature as text with an empty SignatureValue,
// links it into the document's tree where Assemble will insert its bytes (parsed in the context
// of its parent, so the tree is the one a parse of the output gives, but for the signature value's
// text, which no digest covers), and lets libxml2 canonicalise the three node-sets that are
// digested: the document minus the signature (enveloped only), SignedProperties and SignedInfo,
// each in its real context -- so inherited namespaces and xml: attributes are what a verifier
// will see. Assemble then only splices text.
#include "formats/xades/xades_format.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "common/sha256.h"
#include "formats/cades/cades.h"
#include "formats/cades/detail/cms.h"
#include "formats/cades/detail/der.h"
#include "formats/xades/detail/signature.h"
#include "formats/xades/detail/xml.h"

namespace qseal::formats::xades {
namespace {

using detail::C14nMode;

constexpr std::string_view kXmlDeclaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

struct XadesToBeSigned final : formats::ToBeSigned {
  // Enveloped: the document's first `offset` bytes, then `before`, the base64 signature value,
  // `after`, then the rest of the document. Detached: `before`, value, `after`.
  std::size_t offset = 0;
  std::string before;
  std::string after;
  std::string signature_id;  // ds:Signature/@Id (the SignatureValue's is "<id>-sigvalue")
};

constexpr std::string_view kQualifyingPropertiesEnd = "</xades:QualifyingProperties>";

// The unsigned signature properties (EN 319 132-1 §5.3, §5.5): XAdES-T, the signature
// time-stamp; B-LT adds the revocation data of the seal certificate's chain. The chain itself is
// already in ds:KeyInfo, so no xades:CertificateValues repeats it (§6.3 asks only for the values
// missing from the signature). Its CanonicalizationMethod says how the covered
// ds:SignatureValue was canonicalised.
std::string UnsignedProperties(const XadesToBeSigned& tbs) {
  std::string out =
      "<xades:UnsignedProperties><xades:UnsignedSignatureProperties>"
      "<xades:SignatureTimeStamp Id=\"" +
      tbs.signature_id + "-sigts\"><ds:CanonicalizationMethod Algorithm=\"" +
      std::string(detail::C14nUri(C14nMode::kExclusive10)) + "\"/><xades:EncapsulatedTimeStamp>" +
      detail::Base64Encode(tbs.signature_timestamp_token) +
      "</xades:EncapsulatedTimeStamp></xades:SignatureTimeStamp>";
  const formats::ValidationData* data = tbs.validation_data.get();
  if (data != nullptr && (!data->crls.empty() || !data->ocsp_responses.empty())) {
    // `list` holding one `item` (base64 DER) per value; none when there are no values.
    auto values = [&out](std::string_view list, std::string_view item,
                         const std::vector<Bytes>& ders) {
      if (ders.empty()) return;
      out += "<xades:" + std::string(list) + ">";
      for (const Bytes& der : ders) {
        out += "<xades:" + std::string(item) + ">" + detail::Base64Encode(der) +
               "</xades:" + std::string(item) + ">";
      }
      out += "</xades:" + std::string(list) + ">";
    };
    out += "<xades:RevocationValues>";
    values("CRLValues", "EncapsulatedCRLValue", data->crls);  // the schema's order
    values("OCSPValues", "EncapsulatedOCSPValue", data->ocsp_responses);
    out += "</xades:RevocationValues>";
  }
  return out + "</xades:UnsignedSignatureProperties></xades:UnsignedProperties>";
}

bool EndsWithXml(std::string_view name) {
  if (name.size() < 4) return false;
  std::string tail(name.substr(name.size() - 4));
  for (char& c : tail) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return tail == ".xml";
}

std::string Stem(std::string_view document_name) {
  std::string name = SafeOutputStem(document_name);
  if (EndsWithXml(name) && name.size() > 4) name.resize(name.size() - 4);
  return name;
}

std::string MimeType(const Content& content, bool enveloped) {
  if (!content.media_type.empty()) return content.media_type;
  if (enveloped || EndsWithXml(content.name)) return "application/xml";
  return "application/octet-stream";
}

// Reads the whole document (enveloped seals parse it) or only hashes it (detached), checking
// its length; `keep` null means hash only.
Result<Bytes> ReadContent(const Content& content, DigestAlgorithm digest, Bytes* keep) {
  Hasher hasher(digest);
  if (keep != nullptr) keep->reserve(content.size);
  QSEAL_RETURN_IF_ERROR(StreamContent(content, [&](ByteSpan piece) {
    if (keep != nullptr) keep->insert(keep->end(), piece.begin(), piece.end());
    return hasher.Update(piece);
  }));
  return hasher.Final();
}

class XadesFormat final : public Format {
 public:
  XadesFormat(Packaging packaging, std::shared_ptr<const cades::SignerContext> context,
              C14nMode c14n, std::uint64_t max_xml_bytes, detail::SignatureFields fields,
              std::size_t ecdsa_coordinate_size)
      : packaging_(packaging),
        context_(std::move(context)),
        c14n_(c14n),
        max_xml_bytes_(max_xml_bytes),
        fields_(std::move(fields)),
        ecdsa_coordinate_size_(ecdsa_coordinate_size) {}

  std::string_view name() const override {
    return enveloped() ? "xades-enveloped" : "xades-detached";
  }
  std::string_view media_type() const override { return "application/xml"; }
  std::string OutputName(std::string_view document_name) const override {
    // Never the document's own name: the watched folder's outbox keeps the original beside.
    return Stem(document_name) + (enveloped() ? ".signed.xml" : ".xades.xml");
  }
  bool embeds_document() const override { return enveloped(); }

  Result<std::unique_ptr<formats::ToBeSigned>> Prepare(
      const Content& content, std::chrono::system_clock::time_point signing_time) const override {
    if (!content.precomputed_digest.empty()) {
      return InvalidArgumentError(std::string(name()) +
                                  " does not seal digest-only documents: they need a "
                                  "cades-detached profile");
    }
    const auto t = std::chrono::time_point_cast<std::chrono::seconds>(signing_time);
    if (t < context_->not_before() || t > context_->not_after()) {
      return FailedPreconditionError("signing time " + detail::FormatDateTime(t) +
                                     " is outside the signer certificate's validity");
    }
    if (enveloped() && content.size > max_xml_bytes_) {
      return InvalidArgumentError("XML document of " + std::to_string(content.size) +
                                  " bytes is over the profile's limit of " +
                                  std::to_string(max_xml_bytes_) + " bytes");
    }
    Bytes bytes;
    QSEAL_ASSIGN_OR_RETURN(
        Bytes raw_digest, ReadContent(content, context_->digest(), enveloped() ? &bytes : nullptr));

    detail::SignatureFields f = fields_;
    f.id = "xades-" + HexEncode(ByteSpan(raw_digest).first(8));
    f.signing_time = detail::FormatDateTime(t);
    f.mime_type = MimeType(content, enveloped());
    // The tree that is canonicalised is the one a parse of the output would give, with empty
    // DigestValues and SignatureValue: enveloped, the document's own tree with the signature
    // fragment parsed in place (in the context of its parent); detached, the signature document.
    // The DigestValues of SignedInfo are set in the tree before SignedInfo is canonicalised.
    detail::SignatureText text;
    detail::Insertion ins;
    detail::XmlDocPtr doc;
    if (enveloped()) {
      const std::string what = content.name.empty() ? "document" : content.name;
      QSEAL_ASSIGN_OR_RETURN(doc, detail::ParseXml(bytes, what));
      QSEAL_ASSIGN_OR_RETURN(ins, detail::PlanInsertion(doc.get(), bytes));
      bytes = Bytes();  // Assemble reads the document again
      text = detail::BuildSignatureText(f);
      QSEAL_RETURN_IF_ERROR(detail::InsertFragment(ins.parent, ins.before,
                                                   ins.open + text.head + text.tail + ins.close));
    } else {
      f.document_uri = detail::UriEscape(SafeOutputStem(content.name));
      f.document_digest = detail::Base64Encode(raw_digest);
      ins.open = kXmlDeclaration;
      ins.close = "\n";
      text = detail::BuildSignatureText(f);
      QSEAL_ASSIGN_OR_RETURN(
          doc, detail::ParseXml(AsBytes(ins.open + text.head + text.tail), "signature document"));
    }
    xmlNode* root = xmlDocGetRootElement(doc.get());
    std::vector<xmlNode*> signatures = detail::FindById(root, detail::kDsigNs, "Signature", f.id);
    std::vector<xmlNode*> props = detail::FindById(root, detail::kXadesNs, "SignedProperties",
                                                   detail::SignedPropertiesId(f.id));
    xmlNode* signature = signatures.size() == 1 ? signatures[0] : nullptr;
    xmlNode* properties = props.size() == 1 ? props[0] : nullptr;
    xmlNode* signed_info =
        signature ? detail::OnlyChild(signature, detail::kDsigNs, "SignedInfo") : nullptr;
    if (properties == nullptr || signed_info == nullptr) {
      return InternalError("inserted signature not found after parsing");
    }
    std::vector<xmlNode*> digest_values =
        detail::Descendants(signed_info, detail::kDsigNs, "DigestValue");
    if (digest_values.size() != 2) return InternalError("SignedInfo has no two DigestValues");

    if (enveloped()) {
      QSEAL_ASSIGN_OR_RETURN(Bytes d, detail::DigestCanonical(doc.get(), nullptr, signature, c14n_,
                                                              context_->digest()));
      f.document_digest = detail::Base64Encode(d);
    }
    QSEAL_ASSIGN_OR_RETURN(Bytes pd, detail::DigestCanonical(doc.get(), properties, nullptr, c14n_,
                                                             context_->digest()));
    f.properties_digest = detail::Base64Encode(pd);
    xmlNodeSetContent(digest_values[0],
                      reinterpret_cast<const xmlChar*>(f.document_digest.c_str()));
    xmlNodeSetContent(digest_values[1],
                      reinterpret_cast<const xmlChar*>(f.properties_digest.c_str()));
    QSEAL_ASSIGN_OR_RETURN(Bytes dtbs, detail::DigestCanonical(doc.get(), signed_info, nullptr,
                                                               c14n_, context_->digest()));

    text = detail::BuildSignatureText(f);
    auto out = std::make_unique<XadesToBeSigned>();
    out->digest = std::move(dtbs);
    out->content_digest = std::move(raw_digest);
    out->signing_time = t;
    out->offset = ins.offset;
    out->before = ins.open + text.head;
    out->after = text.tail + ins.close;
    out->signature_id = f.id;
    return std::unique_ptr<formats::ToBeSigned>(std::move(out));
  }

  bool has_timestamps() const override { return true; }
  // B-LT: xades:RevocationValues beside the signature time-stamp.
  bool has_validation_data() const override { return true; }

  // The ds:SignatureValue element as the seal will hold it, canonicalised by libxml2 (exclusive
  // C14N 1.0: only the ds namespace it uses, so its context does not matter) and hashed.
  Result<Bytes> TimestampImprint(const formats::ToBeSigned& tbs,
                                 ByteSpan signature) const override {
    const auto* ours = dynamic_cast<const XadesToBeSigned*>(&tbs);
    if (ours == nullptr) return InvalidArgumentError("to-be-signed not made by a XAdES format");
    QSEAL_ASSIGN_OR_RETURN(std::string value, SignatureValueText(signature));
    const std::string element = "<ds:SignatureValue xmlns:ds=\"" + std::string(detail::kDsigNs) +
                                "\" Id=\"" + ours->signature_id + "-sigvalue\">" + value +
                                "</ds:SignatureValue>";
    QSEAL_ASSIGN_OR_RETURN(detail::XmlDocPtr doc,
                           detail::ParseXml(AsBytes(element), "ds:SignatureValue"));
    return detail::DigestCanonical(doc.get(), nullptr, nullptr, C14nMode::kExclusive10,
                                   context_->digest());
  }

  // The base64 text of ds:SignatureValue (ECDSA: r||s, as XML-DSig wants it).
  Result<std::string> SignatureValueText(ByteSpan signature) const {
    if (signature.empty()) return InvalidArgumentError("empty signature");
    Bytes value(signature.begin(), signature.end());
    if (context_->scheme() == SignatureScheme::kEcdsa) {
      QSEAL_ASSIGN_OR_RETURN(value, detail::EcdsaDerToRaw(signature, ecdsa_coordinate_size_));
    }
    return detail::Base64Encode(value);
  }

  // `after` with the unsigned properties (time-stamp, revocation data), when tbs has a token.
  Result<std::string> After(const XadesToBeSigned& tbs) const {
    if (tbs.signature_timestamp_token.empty()) return tbs.after;
    const std::size_t at = tbs.after.rfind(kQualifyingPropertiesEnd);
    if (at == std::string::npos) return InternalError("no QualifyingProperties end in the tail");
    return tbs.after.substr(0, at) + UnsignedProperties(tbs) + tbs.after.substr(at);
  }

  Status Assemble(const formats::ToBeSigned& tbs, ByteSpan signature, const Content& content,
                  const WriteFn& write) const override {
    const auto* ours = dynamic_cast<const XadesToBeSigned*>(&tbs);
    if (ours == nullptr) return InvalidArgumentError("to-be-signed not made by a XAdES format");
    QSEAL_ASSIGN_OR_RETURN(std::string value, SignatureValueText(signature));
    QSEAL_ASSIGN_OR_RETURN(std::string after, After(*ours));
    const std::string middle = ours->before + value + after;
    if (!enveloped()) return write(AsBytes(middle));

    // The document streamed again around the signature; its digest must be the one signed.
    Hasher hasher(context_->digest());
    std::uint64_t total = 0;
    bool inserted = false;
    Status streamed = StreamContent(content, [&](ByteSpan piece) -> Status {
      QSEAL_RETURN_IF_ERROR(hasher.Update(piece));
      const std::size_t n = piece.size();
      if (!inserted && total + n >= ours->offset) {
        const std::size_t split = static_cast<std::size_t>(ours->offset - total);
        QSEAL_RETURN_IF_ERROR(write(piece.first(split)));
        QSEAL_RETURN_IF_ERROR(write(AsBytes(middle)));
        QSEAL_RETURN_IF_ERROR(write(piece.subspan(split)));
        inserted = true;
      } else {
        QSEAL_RETURN_IF_ERROR(write(piece));
      }
      total += n;
      return Status::Ok();
    });
    if (!streamed.ok() && streamed.code() != StatusCode::kDataLoss) return streamed;
    if (!inserted && total == ours->offset) {
      QSEAL_RETURN_IF_ERROR(write(AsBytes(middle)));
      inserted = true;
    }
    QSEAL_ASSIGN_OR_RETURN(Bytes digest, hasher.Final());
    if (total != content.size || !inserted || digest != ours->content_digest) {
      return DataLossError("content " + content.name + " changed between Prepare and Assemble");
    }
    return Status::Ok();
  }

  std::uint64_t OutputSizeHint(const formats::ToBeSigned& tbs, std::size_t signature_size,
                               std::uint64_t content_size) const override {
    const auto* ours = dynamic_cast<const XadesToBeSigned*>(&tbs);
    if (ours == nullptr) return 0;
    std::size_t value =
        context_->scheme() == SignatureScheme::kEcdsa ? 2 * ecdsa_coordinate_size_ : signature_size;
    std::uint64_t size = ours->before.size() + 4 * ((value + 2) / 3) + ours->after.size();
    if (!ours->signature_timestamp_token.empty()) {
      size += UnsignedProperties(*ours).size();
    }
    return enveloped() ? size + content_size : size;
  }

 private:
  bool enveloped() const { return packaging_ == Packaging::kEnveloped; }

  const Packaging packaging_;
  const std::shared_ptr<const cades::SignerContext> context_;
  const C14nMode c14n_;
  const std::uint64_t max_xml_bytes_;
  // The per-profile fields (algorithms, certificate digest, IssuerSerialV2, chain).
  const detail::SignatureFields fields_;
  const std::size_t ecdsa_coordinate_size_;
};

}  // namespace

Result<std::unique_ptr<const Format>> CreateXadesFormat(Packaging packaging,
                                                        const FormatOptions& options) {
  C14nMode c14n;
  if (options.c14n == "exc-c14n" || options.c14n.empty()) {
    c14n = C14nMode::kExclusive10;
  } else if (options.c14n == "c14n11") {
    c14n = C14nMode::kInclusive11;
  } else {
    return InvalidArgumentError("unknown c14n \"" + options.c14n + "\" (known: exc-c14n, c14n11)");
  }
  QSEAL_ASSIGN_OR_RETURN(
      std::shared_ptr<const cades::SignerContext> context,
      cades::SignerContext::Create(options.certificate_chain_der, options.digest, options.scheme));
  detail::SignatureFields f;
  f.enveloped = packaging == Packaging::kEnveloped;
  f.digest = options.digest;
  f.scheme = options.scheme;
  f.c14n = c14n;
  const Bytes& leaf = context->signer_certificate_der();
  QSEAL_ASSIGN_OR_RETURN(Bytes cert_digest, Digest(options.digest, leaf));
  f.cert_digest = detail::Base64Encode(cert_digest);
  // IssuerSerial (RFC 5035): SEQUENCE { GeneralNames { [4] directoryName Name }, serial }.
  QSEAL_ASSIGN_OR_RETURN(cades::detail::CertificateIds ids,
                         cades::detail::ParseCertificateIds(leaf));
  using cades::detail::Tlv;
  Bytes directory_name = Tlv(cades::detail::ContextTag(4), {ids.issuer});
  Bytes general_names = Tlv(cades::detail::kTagSequence, {directory_name});
  f.issuer_serial =
      detail::Base64Encode(Tlv(cades::detail::kTagSequence, {general_names, ids.serial}));
  for (const Bytes& cert : options.certificate_chain_der) {
    f.chain.push_back(detail::Base64Encode(cert));
  }
  std::size_t coordinate_size = 0;
  if (options.scheme == SignatureScheme::kEcdsa) {
    EVP_PKEY* key = X509_get0_pubkey(context->impl().leaf.get());
    coordinate_size = static_cast<std::size_t>((EVP_PKEY_get_bits(key) + 7) / 8);
  }
  return std::unique_ptr<const Format>(std::make_unique<const XadesFormat>(
      packaging, std::move(context), c14n, options.max_xml_bytes, std::move(f), coordinate_size));
}

}  // namespace qseal::formats::xades
