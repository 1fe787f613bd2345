#include "tests/formats/pdf_test_util.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <qpdf/Buffer.hh>
#include <qpdf/QPDF.hh>
#include <qpdf/QPDFEFStreamObjectHelper.hh>
#include <qpdf/QPDFEmbeddedFileDocumentHelper.hh>
#include <qpdf/QPDFFileSpecObjectHelper.hh>
#include <qpdf/QPDFPageDocumentHelper.hh>
#include <qpdf/QPDFWriter.hh>

#include "tests/testing/testing.h"

namespace qseal::formats::testing {
namespace {

using qseal::testing::ShellQuote;

std::string ReadFileString(const std::string& path) {
  Bytes b = ReadBinaryFile(path);
  return std::string(b.begin(), b.end());
}

void AddPages(QPDF& q, int pages) {
  QPDFObjectHandle font = q.makeIndirectObject(QPDFObjectHandle::parse(
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"));
  QPDFPageDocumentHelper doc(q);
  for (int i = 0; i < pages; ++i) {
    QPDFObjectHandle contents =
        q.newStream("BT /F1 24 Tf 72 720 Td (Invoice page " + std::to_string(i + 1) + ") Tj ET\n");
    QPDFObjectHandle resources = QPDFObjectHandle::newDictionary();
    QPDFObjectHandle fonts = QPDFObjectHandle::newDictionary();
    fonts.replaceKey("/F1", font);
    resources.replaceKey("/Font", fonts);
    QPDFObjectHandle page = QPDFObjectHandle::parse("<< /Type /Page /MediaBox [0 0 595 842] >>");
    page.replaceKey("/Resources", resources);
    page.replaceKey("/Contents", contents);
    doc.addPage(QPDFPageObjectHelper(q.makeIndirectObject(page)), false);
  }
}

std::string Write(QPDF& q, XrefKind xref, const std::function<void(QPDFWriter&)>& more = {}) {
  QPDFWriter w(q);
  w.setOutputMemory();
  w.setObjectStreamMode(xref == XrefKind::kStream ? qpdf_o_generate : qpdf_o_disable);
  if (more) {
    more(w);
  } else {
    w.setDeterministicID(true);
  }
  w.write();
  std::shared_ptr<Buffer> b = w.getBufferSharedPointer();
  return std::string(reinterpret_cast<const char*>(b->getBuffer()), b->getSize());
}

}  // namespace

std::string MakeQpdfPdf(int pages, XrefKind xref, std::size_t padding_bytes) {
  QPDF q;
  q.emptyPDF();
  AddPages(q, pages);
  if (padding_bytes > 0) {
    std::string data(padding_bytes, '\0');
    PseudoRandomStream(11).Fill(
        std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(data.data()), data.size()));
    q.getRoot().replaceKey("/QsealTestPadding", q.newStream(data));
  }
  return Write(q, xref);
}

std::string FacturXXml() {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<rsm:CrossIndustryInvoice "
         "xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100\" "
         "xmlns:ram=\"urn:un:unece:uncefact:data:standard:"
         "ReusableAggregateBusinessInformationEntity:100\">\n"
         "  <rsm:ExchangedDocument><ram:ID>INV-2026-0042</ram:ID><ram:TypeCode>380</ram:TypeCode>"
         "</rsm:ExchangedDocument>\n"
         "</rsm:CrossIndustryInvoice>\n";
}

std::string MakeFacturXLikePdf() {
  QPDF q;
  q.emptyPDF();
  AddPages(q, 2);
  QPDFObjectHandle root = q.getRoot();
  std::string xmp =
      "<?xpacket begin=\"\xEF\xBB\xBF\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n"
      "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF "
      "xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n"
      "<rdf:Description rdf:about=\"\" xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\">"
      "<pdfaid:part>3</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>"
      "</rdf:Description>\n</rdf:RDF></x:xmpmeta>\n<?xpacket end=\"w\"?>";
  QPDFObjectHandle metadata = q.newStream(xmp);
  metadata.getDict().replaceKey("/Type", QPDFObjectHandle::newName("/Metadata"));
  metadata.getDict().replaceKey("/Subtype", QPDFObjectHandle::newName("/XML"));
  root.replaceKey("/Metadata", metadata);

  QPDFEFStreamObjectHelper ef = QPDFEFStreamObjectHelper::createEFStream(q, FacturXXml());
  ef.setSubtype("text/xml");
  QPDFFileSpecObjectHelper spec = QPDFFileSpecObjectHelper::createFileSpec(q, "factur-x.xml", ef);
  spec.setDescription("Factur-X invoice");
  spec.getObjectHandle().replaceKey("/AFRelationship", QPDFObjectHandle::newName("/Data"));
  QPDFEmbeddedFileDocumentHelper(q).replaceEmbeddedFile("factur-x.xml", spec);
  root.replaceKey("/AF", QPDFObjectHandle::newArray({spec.getObjectHandle()}));

  QPDFObjectHandle page = q.getAllPages().front();
  QPDFObjectHandle field = q.makeIndirectObject(
      QPDFObjectHandle::parse("<< /Type /Annot /Subtype /Widget /FT /Tx /T (buyer) /V (ACME) /F 4 "
                              "/Rect [72 600 300 620] >>"));
  field.replaceKey("/P", page);
  page.replaceKey("/Annots", QPDFObjectHandle::newArray({field}));
  QPDFObjectHandle acroform =
      q.makeIndirectObject(QPDFObjectHandle::parse("<< /DA (/Helv 0 Tf 0 g) >>"));
  acroform.replaceKey("/Fields", QPDFObjectHandle::newArray({field}));
  root.replaceKey("/AcroForm", acroform);
  return Write(q, XrefKind::kStream, [](QPDFWriter& w) {
    w.setDeterministicID(true);
    w.setMinimumPDFVersion("1.7");
  });
}

std::string MakeMinimalPdf() {
  return HandWrittenPdf(
      {
          "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] >> >>",
          "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
          "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
          "<< /Length 12 >>\nstream\n0 0 m 9 9 l\nendstream",
      },
      false);
}

std::string HandWrittenPdf(const std::vector<std::string>& objects, bool eol_after_eof) {
  std::string pdf = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(pdf.size());
    pdf += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
  }
  std::size_t xref = pdf.size();
  pdf += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
  for (std::size_t off : offsets) {
    char line[32];
    std::snprintf(line, sizeof(line), "%010zu 00000 n \n", off);
    pdf += line;
  }
  pdf += "trailer\n<< /Size " + std::to_string(objects.size() + 1) +
         " /Root 1 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF";
  if (eol_after_eof) pdf += "\n";
  return pdf;
}

std::uint64_t WriteLargePdf(const std::string& path, std::uint64_t stream_bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + path);
  std::uint64_t at = 0;
  std::vector<std::uint64_t> offsets;
  auto put = [&](const std::string& s) {
    out.write(s.data(), static_cast<std::streamsize>(s.size()));
    at += s.size();
  };
  put("%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
  const std::vector<std::string> small = {
      "<< /Type /Catalog /Pages 2 0 R /Blob 5 0 R >>",
      "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
      "<< /Length 12 >>\nstream\n0 0 m 9 9 l\nendstream",
  };
  for (std::size_t i = 0; i < small.size(); ++i) {
    offsets.push_back(at);
    put(std::to_string(i + 1) + " 0 obj\n" + small[i] + "\nendobj\n");
  }
  offsets.push_back(at);
  put("5 0 obj\n<< /Length " + std::to_string(stream_bytes) + " >>\nstream\n");
  // xorshift: cheap, incompressible enough that no layer can shortcut the bytes.
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  std::vector<char> piece(1 << 20);
  for (std::uint64_t left = stream_bytes; left > 0;) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, piece.size()));
    for (std::size_t i = 0; i < n; i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(piece.data() + i, &x, std::min<std::size_t>(8, n - i));
    }
    out.write(piece.data(), static_cast<std::streamsize>(n));
    at += n;
    left -= n;
  }
  put("\nendstream\nendobj\n");
  const std::uint64_t xref = at;
  put("xref\n0 6\n0000000000 65535 f \n");
  for (std::uint64_t off : offsets) {
    char line[32];
    std::snprintf(line, sizeof(line), "%010llu 00000 n \n", static_cast<unsigned long long>(off));
    put(line);
  }
  put("trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n");
  out.close();
  if (!out) throw std::runtime_error("writing " + path + " failed");
  return at;
}

std::string MakeGhostscriptPdf(const std::string& dir) {
  std::string ps = dir + "/invoice.ps", pdf = dir + "/invoice-gs.pdf";
  WriteStringFile(ps,
                  "%!PS\n/Helvetica findfont 20 scalefont setfont\n"
                  "72 720 moveto (Invoice INV-2026-0042) show showpage\n"
                  "72 720 moveto (Page 2: 1 200,00 EUR) show showpage\n");
  Cmd c = Sh("ps2pdf " + ShellQuote(ps) + " " + ShellQuote(pdf));
  if (c.exit_code != 0) throw std::runtime_error("ps2pdf: " + c.output);
  return ReadFileString(pdf);
}

std::string MakeCairoPdf(const std::string& dir) {
  std::string in = dir + "/invoice-gs-for-cairo.pdf", out = dir + "/invoice-cairo.pdf";
  WriteStringFile(in, MakeGhostscriptPdf(dir));
  Cmd c = Sh("pdftocairo -pdf " + ShellQuote(in) + " " + ShellQuote(out));
  if (c.exit_code != 0) throw std::runtime_error("pdftocairo: " + c.output);
  return ReadFileString(out);
}

std::string MakeEncryptedPdf(const std::string& user_password) {
  QPDF q;
  q.emptyPDF();
  AddPages(q, 1);
  return Write(q, XrefKind::kTable, [&](QPDFWriter& w) {
    w.setStaticID(true);  // a deterministic ID cannot be had with encryption
    w.setR6EncryptionParameters(user_password.c_str(), "owner-secret", true, true, true, true, true,
                                true, qpdf_r3p_full, true);
  });
}

Content StringContent(const std::string& data, std::string name) {
  Content c;
  c.size = data.size();
  c.name = std::move(name);
  c.open = [&data]() -> Result<ReadFn> { return SpanReader(AsBytes(data)); };
  c.read_chunk_bytes = 4096;
  return c;
}

Result<std::string> SealPdf(const Format& format, const std::string& pdf, const SignFn& sign,
                            std::chrono::system_clock::time_point signing_time,
                            std::shared_ptr<const ValidationData> validation_data) {
  Content content = StringContent(pdf);
  QSEAL_ASSIGN_OR_RETURN(std::unique_ptr<ToBeSigned> tbs, format.Prepare(content, signing_time));
  QSEAL_ASSIGN_OR_RETURN(Bytes signature, sign(tbs->digest));
  tbs->validation_data = std::move(validation_data);
  std::string out;
  QSEAL_RETURN_IF_ERROR(format.Assemble(*tbs, signature, content, [&out](ByteSpan b) {
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
    return Status::Ok();
  }));
  if (out.size() != format.OutputSizeHint(*tbs, signature.size(), pdf.size())) {
    return InternalError("OutputSizeHint differs from the output size");
  }
  return out;
}

void MakeNssDb(const std::string& dir, const std::string& ca_pem_path) {
  Sh("mkdir -p " + ShellQuote(dir));
  Cmd init = Sh("certutil -N -d sql:" + ShellQuote(dir) + " --empty-password");
  if (init.exit_code != 0) throw std::runtime_error("certutil -N: " + init.output);
  // certutil -A takes one certificate: split the PEM file.
  std::ifstream in(ca_pem_path);
  std::string line, pem;
  int n = 0;
  while (std::getline(in, line)) {
    pem += line + "\n";
    if (line.find("END CERTIFICATE") == std::string::npos) continue;
    std::string file = dir + "/ca-" + std::to_string(n) + ".pem";
    WriteStringFile(file, pem);
    Cmd add = Sh("certutil -A -d sql:" + ShellQuote(dir) + " -n ca-" + std::to_string(n) +
                 " -t CT,C,C -a -i " + ShellQuote(file));
    if (add.exit_code != 0) throw std::runtime_error("certutil -A: " + add.output);
    pem.clear();
    ++n;
  }
}

PdfsigVerdict Pdfsig(const std::string& nss_dir, const std::string& pdf_path) {
  Cmd c = Sh("pdfsig -nssdir sql:" + ShellQuote(nss_dir) + " " + ShellQuote(pdf_path));
  PdfsigVerdict v;
  v.exit_code = c.exit_code;
  v.output = c.output;
  auto count = [&](const std::string& re) {
    std::regex r(re);
    return static_cast<int>(std::distance(std::sregex_iterator(c.output.begin(), c.output.end(), r),
                                          std::sregex_iterator()));
  };
  v.signatures = count(R"(Signature #\d+:)");
  v.valid = count(R"(Signature Validation: Signature is Valid\.)");
  v.trusted = count(R"(Certificate Validation: Certificate is Trusted\.)");
  v.total_document = count(R"(- Total document signed)");
  return v;
}

Cmd QpdfCheck(const std::string& pdf_path) { return Sh("qpdf --check " + ShellQuote(pdf_path)); }

std::string LastSignatureCms(const std::string& pdf) {
  const std::size_t at = pdf.rfind("/Contents <");
  if (at == std::string::npos) return "";
  const std::size_t begin = at + std::string("/Contents <").size();
  const std::size_t end = pdf.find('>', begin);
  if (end == std::string::npos) return "";
  std::string cms;
  for (std::size_t i = begin; i + 1 < end; i += 2) {
    cms += static_cast<char>(std::stoi(pdf.substr(i, 2), nullptr, 16));
  }
  return cms;
}

std::vector<std::string> DssStreams(const std::string& pdf_path, const std::string& key) {
  const std::string json_path = pdf_path + ".json";
  Cmd dump = Sh("qpdf --json=2 --json-key=qpdf --json-stream-data=inline --decode-level=none " +
                ShellQuote(pdf_path) + " > " + ShellQuote(json_path));
  if (dump.exit_code != 0) throw std::runtime_error("qpdf --json: " + dump.output);
  const nlohmann::json objects = nlohmann::json::parse(ReadFileString(json_path))["qpdf"][1];
  // A value is an indirect reference ("N G R", resolved) or the object itself.
  auto resolve = [&objects](const nlohmann::json& v) -> const nlohmann::json& {
    if (v.is_string() && v.get<std::string>().size() > 2 &&
        v.get<std::string>().compare(v.get<std::string>().size() - 2, 2, " R") == 0) {
      const nlohmann::json& o = objects.at("obj:" + v.get<std::string>());
      return o.contains("value") ? o["value"] : o["stream"];
    }
    return v;
  };
  const nlohmann::json& root = resolve(objects["trailer"]["value"]["/Root"]);
  std::vector<std::string> out;
  if (!root.contains("/DSS")) return out;
  const nlohmann::json& dss = resolve(root["/DSS"]);
  if (!dss.contains(key)) return out;
  for (const nlohmann::json& item : resolve(dss[key])) {
    const std::string b64 = resolve(item).at("data").get<std::string>();
    std::string raw(b64.size(), '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                            reinterpret_cast<const unsigned char*>(b64.data()),
                            static_cast<int>(b64.size()));
    if (n < 0) throw std::runtime_error("qpdf --json: stream data is not base64");
    // EVP_DecodeBlock counts the padding's zero bytes.
    std::size_t pad = b64.size() >= 2 ? (b64.end()[-1] == '=') + (b64.end()[-2] == '=') : 0;
    raw.resize(static_cast<std::size_t>(n) - pad);
    out.push_back(std::move(raw));
  }
  return out;
}

void WriteStringFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

}  // namespace qseal::formats::testing
