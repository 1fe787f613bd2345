// Test-only helpers for the XAdES tests: the sample invoices, sealing through formats::Format
// with any signer, and the independent check with `xmlsec1 --verify`. Header-only; not
// thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "formats/format.h"
#include "tests/formats/cades_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::formats::xadestest {

using qseal::testing::ShellQuote;

// The sample invoices in tests/formats/data (written for these tests).
inline const std::vector<std::string> kSamples = {
    "ubl-invoice.xml", "ubl-creditnote-extensions.xml", "cii-invoice.xml", "fatturapa.xml"};

inline std::string SamplePath(const std::string& name) {
  return std::string(QSEAL_SOURCE_DIR) + "/tests/formats/data/" + name;
}
inline std::string Sample(const std::string& name) {
  return qseal::testing::ReadFile(SamplePath(name));
}

// A Content over `data` (which must outlive it), read in small pieces.
inline Content MemoryContent(const std::string& data, std::string name, std::size_t chunk = 4096) {
  Content c;
  c.size = data.size();
  c.name = std::move(name);
  c.open = [&data]() -> Result<ReadFn> { return formats::testing::SpanReader(AsBytes(data)); };
  c.read_chunk_bytes = chunk;
  return c;
}

// Signs a DTBS/R digest (an HSM or a software key); DER ECDSA-Sig-Value for ECDSA.
using SignFn = std::function<Result<Bytes>(ByteSpan digest)>;

// Prepare + sign + Assemble; the seal bytes.
inline Result<std::string> Seal(
    const Format& format, const std::string& doc, const std::string& name, const SignFn& sign,
    std::chrono::system_clock::time_point at = std::chrono::system_clock::now()) {
  Content content = MemoryContent(doc, name);
  QSEAL_ASSIGN_OR_RETURN(std::unique_ptr<ToBeSigned> tbs, format.Prepare(content, at));
  QSEAL_ASSIGN_OR_RETURN(Bytes sig, sign(tbs->digest));
  std::string out;
  QSEAL_RETURN_IF_ERROR(format.Assemble(*tbs, sig, content, [&out](ByteSpan piece) {
    out.append(AsChars(piece));
    return Status::Ok();
  }));
  EXPECT_EQ(format.OutputSizeHint(*tbs, sig.size(), doc.size()), out.size());
  return out;
}

// `xmlsec1 --verify` of the seal at `seal_path` against `ca_pem`. A detached seal's Reference
// names the document relatively: xmlsec1 runs in the seal's directory, where the document must
// be (as in the outbox); xmlsec1 counts a relative URI as "remote", so that type is enabled.
// `at` (UTC "YYYY-MM-DD HH:MM:SS") sets the verification time.
inline formats::testing::Cmd XmlsecVerify(const std::string& seal_path, const std::string& ca_pem,
                                          const std::string& at = "") {
  std::string dir = seal_path.substr(0, seal_path.rfind('/'));
  std::string cmd = "cd " + ShellQuote(dir) + " && xmlsec1 --verify --trusted-pem " +
                    ShellQuote(ca_pem) + " --enabled-reference-uris empty,same-doc,local,remote";
  if (!at.empty()) cmd += " --verification-gmt-time " + ShellQuote(at);
  cmd += " " + ShellQuote(seal_path);
  return formats::testing::Sh(cmd);
}

// The seal without the run from the first `begin` to the end of the first `end` after it
// (e.g. "<ds:Signature" .. "</ds:Signature>"); "" when either is missing. For an enveloped seal
// with the inserted markers, this is the original document byte for byte.
inline std::string Cut(const std::string& seal, const std::string& begin, const std::string& end) {
  std::size_t p = seal.find(begin);
  if (p == std::string::npos) return "";
  std::size_t q = seal.find(end, p);
  if (q == std::string::npos) return "";
  return seal.substr(0, p) + seal.substr(q + end.size());
}

}  // namespace qseal::formats::xadestest
