#include "formats/cades/timestamp.h"

#include <memory>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "common/sha256.h"

namespace qseal::formats::cades {
namespace {

struct CmsFree {
  void operator()(CMS_ContentInfo* c) const { CMS_ContentInfo_free(c); }
};

}  // namespace

Result<Bytes> SignatureTimeStampImprint(DigestAlgorithm digest, ByteSpan signature) {
  if (signature.empty()) return InvalidArgumentError("empty signature value");
  return Digest(digest, signature);
}

Result<Bytes> AddSignatureTimeStamp(ByteSpan seal, ByteSpan token_der) {
  if (token_der.size() < 2 || token_der[0] != 0x30) {
    return InvalidArgumentError("the time-stamp token is not a DER SEQUENCE");
  }
  const unsigned char* p = seal.data();
  std::unique_ptr<CMS_ContentInfo, CmsFree> cms(
      d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(seal.size())));
  if (!cms || p != seal.data() + seal.size()) {
    ERR_clear_error();
    return InvalidArgumentError("the seal is not a DER CMS ContentInfo");
  }
  STACK_OF(CMS_SignerInfo)* signers = CMS_get0_SignerInfos(cms.get());
  if (signers == nullptr || sk_CMS_SignerInfo_num(signers) != 1) {
    return InvalidArgumentError("the seal does not hold exactly one SignerInfo");
  }
  CMS_SignerInfo* si = sk_CMS_SignerInfo_value(signers, 0);
  if (CMS_unsigned_get_attr_by_NID(si, NID_id_smime_aa_timeStampToken, -1) >= 0) {
    return InvalidArgumentError("the seal already carries a signature time-stamp");
  }
  // A V_ASN1_SEQUENCE value is stored as its complete encoding, so the token goes in verbatim.
  if (CMS_unsigned_add1_attr_by_NID(si, NID_id_smime_aa_timeStampToken, V_ASN1_SEQUENCE,
                                    token_der.data(), static_cast<int>(token_der.size())) != 1) {
    ERR_clear_error();
    return InternalError("adding the signature-time-stamp attribute failed");
  }
  // Re-encoding keeps the signed attributes' bytes: they were DER (a sorted SET OF) already.
  int len = i2d_CMS_ContentInfo(cms.get(), nullptr);
  if (len <= 0) {
    ERR_clear_error();
    return InternalError("re-encoding the seal failed");
  }
  Bytes out(static_cast<std::size_t>(len));
  unsigned char* q = out.data();
  i2d_CMS_ContentInfo(cms.get(), &q);
  return out;
}

}  // namespace qseal::formats::cades
