// qsealctl verify: checks a seal offline against the trust anchors.
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli/commands.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/exit_codes.h"
#include "formats/format.h"
#include "formats/verify.h"

namespace qseal::cli {
namespace {

namespace fs = std::filesystem;

// A ReadFn over a file stream.
formats::ReadFn StreamReader(std::shared_ptr<std::ifstream> in) {
  return [in](std::span<std::uint8_t> buffer) -> Result<std::size_t> {
    in->read(reinterpret_cast<char*>(buffer.data()), static_cast<std::streamsize>(buffer.size()));
    if (in->bad()) return UnavailableError("read error in the content file");
    return static_cast<std::size_t>(in->gcount());
  };
}

Result<Bytes> ReadBinary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read " + path);
  Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return UnavailableError("read error in " + path);
  return data;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

// DER from a PEM file holding one object (e.g. "PKCS7" or "CMS"), or the input when not PEM.
Bytes MaybeFromPem(Bytes data) {
  static constexpr std::string_view kBegin = "-----BEGIN ";
  if (data.size() < kBegin.size() || AsChars(data).substr(0, kBegin.size()) != kBegin) return data;
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* der = nullptr;
  long len = 0;
  if (bio == nullptr || PEM_read_bio(bio.get(), &name, &header, &der, &len) != 1) return data;
  Bytes out(der, der + len);
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(der);
  return out;
}

Result<std::vector<Bytes>> LoadCertificates(const std::string& path) {
  auto pem = ReadBinary(path);
  if (!pem.ok()) return pem.status();
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  std::vector<Bytes> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    int len = i2d_X509(cert, nullptr);
    if (len > 0) {
      Bytes der(static_cast<std::size_t>(len));
      unsigned char* p = der.data();
      i2d_X509(cert, &p);
      certs.push_back(std::move(der));
    }
    X509_free(cert);
  }
  if (certs.empty()) return InvalidArgumentError("no PEM certificate in " + path);
  return certs;
}

std::string SubjectOf(const Bytes& der) {
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (cert == nullptr) return "?";
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
  X509_free(cert);
  return buf;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int RunVerify(const VerifyCommandOptions& options, const std::string& var_dir, std::ostream& out,
              std::ostream& err) {
  auto seal = ReadBinary(options.seal);
  if (!seal.ok()) {
    err << "qsealctl: " << seal.status().message() << "\n";
    return kExitIoErr;
  }
  Bytes der = MaybeFromPem(std::move(*seal));
  std::string ca = options.ca.empty() ? var_dir + "/pki/ca.pem" : options.ca;
  auto anchors = LoadCertificates(ca);
  if (!anchors.ok()) {
    err << "qsealctl: trust anchors: " << anchors.status().message()
        << (options.ca.empty() ? " (give --ca PEM)" : "") << "\n";
    return anchors.status().code() == StatusCode::kNotFound ? kExitIoErr : kExitDataErr;
  }
  std::string content = options.content;
  if (content.empty() && EndsWith(options.seal, ".p7s")) {
    std::string beside = options.seal.substr(0, options.seal.size() - 4);
    std::error_code ec;
    if (fs::is_regular_file(beside, ec)) content = beside;
  }
  // A detached XAdES seal NAME.xades.xml sits beside NAME.xml (an XML document) or NAME.
  if (content.empty() && EndsWith(options.seal, ".xades.xml")) {
    std::string stem = options.seal.substr(0, options.seal.size() - 10);
    std::error_code ec;
    if (fs::is_regular_file(stem + ".xml", ec)) {
      content = stem + ".xml";
    } else if (fs::is_regular_file(stem, ec)) {
      content = stem;
    }
  }
  std::optional<formats::ReadFn> reader;
  if (!content.empty()) {
    auto in = std::make_shared<std::ifstream>(content, std::ios::binary);
    if (!*in) {
      err << "qsealctl: cannot read " << content << "\n";
      return kExitIoErr;
    }
    reader = StreamReader(in);
    if (options.content.empty()) out << "content: " << content << "\n";
  }
  auto report = formats::VerifySeal(der, reader, *anchors);
  if (!report.ok()) {
    const std::string& msg = report.status().message();
    if (msg.find("the content is needed") != std::string::npos) {
      err << "qsealctl: " << msg << ": give --content FILE\n";
      return kExitUsage;
    }
    if (msg.find("none may be given") != std::string::npos) {
      err << "qsealctl: " << msg << ": drop --content\n";
      return kExitUsage;
    }
    err << "qsealctl: verify: " << report.status().ToString() << "\n";
    return report.status().code() == StatusCode::kUnavailable ? kExitIoErr : kExitDataErr;
  }
  for (const auto& c : report->checks) {
    out << (c.ok ? "ok    " : "FAIL  ") << c.name;
    if (!c.detail.empty()) out << ": " << c.detail;
    out << "\n";
  }
  if (!report->signer_certificate_der.empty()) {
    out << "signer: " << SubjectOf(report->signer_certificate_der) << "\n";
  }
  out << "format: " << report->format << "\n";
  out << "packaging: "
      << (report->format == "pades"              ? "PAdES (signatures inside the PDF)"
          : report->format == "cades-enveloping" ? "enveloping"
          : report->format == "xades-enveloped"  ? "enveloped"
                                                 : "detached")
      << "\n";
  if (report->signing_time != std::chrono::system_clock::time_point{}) {
    out << "signing time: " << FormatUtc(report->signing_time) << "\n";
  }
  out << (report->ok ? "seal verified" : "seal NOT valid") << "\n";
  return report->ok ? kExitOk : kExitDataErr;
}

}  // namespace qseal::cli
