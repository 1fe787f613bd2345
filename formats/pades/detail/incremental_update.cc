// Everything appended is written here, by hand: qpdf only reads the original (its QPDFWriter
// rewrites whole files, and an incremental update must leave every original byte in place).
#include "formats/pades/detail/incremental_update.h"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include <qpdf/QPDFObjGen.hh>
#include <time.h>

#include "formats/pades/detail/pdf_open.h"

namespace qseal::formats::pades::detail {
namespace {

// Print (bit 3) | Locked (bit 8): PDF/A requires Print set and Hidden/NoView clear.
constexpr int kWidgetFlags = 132;
// Room for "0 a b c" with three 20-digit numbers; padded with spaces so the dictionary's size,
// and with it every offset, is fixed before the numbers are known.
constexpr std::size_t kByteRangeWidth = 64;
// Type 1 entries: 1 byte type, 8 bytes offset, 2 bytes generation.
constexpr std::size_t kXrefOffsetBytes = 8;

using Overrides = std::vector<std::pair<std::string, std::string>>;

std::string Ref(int num, int gen) { return std::to_string(num) + " " + std::to_string(gen) + " R"; }

// `dict` (a qpdf dictionary) in PDF syntax with the keys of `overrides` replaced or added and
// `dropped` left out; every other entry is written as qpdf unparses it (indirect objects as
// references).
std::string DictWith(QPDFObjectHandle dict, const Overrides& overrides,
                     std::string_view dropped = {}) {
  std::string out = "<<";
  for (const std::string& key : dict.getKeys()) {
    bool replaced = std::any_of(overrides.begin(), overrides.end(),
                                [&](const auto& o) { return o.first == key; });
    if (replaced || key == dropped) continue;
    out += " " + QPDFObjectHandle::newName(key).unparse() + " " + dict.getKey(key).unparse();
  }
  for (const auto& [key, value] : overrides) out += " " + key + " " + value;
  out += " >>";
  return out;
}

// The elements of `array` (none when it is not an array) followed by `extra`, as a direct array.
std::string ArrayWith(QPDFObjectHandle array, const std::string& extra) {
  std::string out = "[";
  if (array.isArray()) {
    for (QPDFObjectHandle& e : array.getArrayAsVector()) out += e.unparse() + " ";
  }
  out += extra + "]";
  return out;
}

// Refuses a document certified with DocMDP permission 1 (no changes at all): any signature
// added after it would invalidate the certification (ISO 32000-1 12.8.2.2).
Status CheckDocMdp(QPDFObjectHandle root) {
  QPDFObjectHandle perms = root.getKey("/Perms");
  if (!perms.isDictionary()) return Status::Ok();
  QPDFObjectHandle sig = perms.getKey("/DocMDP");
  if (!sig.isDictionary()) return Status::Ok();
  QPDFObjectHandle refs = sig.getKey("/Reference");
  if (!refs.isArray()) return Status::Ok();
  for (QPDFObjectHandle& ref : refs.getArrayAsVector()) {
    if (!ref.isDictionary() || !ref.getKey("/TransformMethod").isNameAndEquals("/DocMDP")) continue;
    QPDFObjectHandle p = ref.getKey("/TransformParams").isDictionary()
                             ? ref.getKey("/TransformParams").getKey("/P")
                             : QPDFObjectHandle::newNull();
    if (p.isInteger() && p.getIntValue() == 1) {
      return InvalidArgumentError(
          "PDF is certified with DocMDP permission 1 (no changes allowed): a seal would "
          "invalidate the certification");
    }
  }
  return Status::Ok();
}

// The elements of `array` unparsed (references stay references), space-separated.
std::string Elements(QPDFObjectHandle array) {
  std::string out;
  if (!array.isArray()) return out;
  for (QPDFObjectHandle& e : array.getArrayAsVector())
    out += (out.empty() ? "" : " ") + e.unparse();
  return out;
}

// What the catalog `catalog` (as the sealed revision writes it) and an earlier /DSS give a later
// DSS update.
void DescribeCatalog(QPDFObjectHandle root, const std::string& catalog, RevisionTail& tail) {
  tail.catalog_num = root.getObjectID();
  tail.catalog_gen = root.getGeneration();
  tail.catalog_open = catalog.substr(0, catalog.size() - 3);  // without " >>"
  QPDFObjectHandle dss = root.getKey("/DSS");
  if (!dss.isDictionary()) return;
  tail.dss_certs = Elements(dss.getKey("/Certs"));
  tail.dss_ocsps = Elements(dss.getKey("/OCSPs"));
  tail.dss_crls = Elements(dss.getKey("/CRLs"));
  if (dss.getKey("/VRI").isDictionary()) tail.dss_vri = dss.getKey("/VRI").unparse();
}

// "SealN" with the smallest N no top-level field of `fields` is named.
std::string UniqueFieldName(QPDFObjectHandle fields) {
  std::set<std::string> taken;
  if (fields.isArray()) {
    for (QPDFObjectHandle& f : fields.getArrayAsVector()) {
      if (f.isDictionary() && f.getKey("/T").isString())
        taken.insert(f.getKey("/T").getUTF8Value());
    }
  }
  for (int n = 1;; ++n) {
    std::string name = "Seal" + std::to_string(n);
    if (taken.count(name) == 0) return name;
  }
}

// The appended bytes and the offset (from the start of the original) of every object in them.
class UpdateWriter {
 public:
  explicit UpdateWriter(std::uint64_t base) : base_(base) {}

  void Raw(std::string_view s) { bytes_.insert(bytes_.end(), s.begin(), s.end()); }
  void Object(int num, int gen, std::string_view body) {
    entries_[num] = {offset(), gen};
    Raw(std::to_string(num) + " " + std::to_string(gen) + " obj\n");
    Raw(body);
    Raw("\nendobj\n");
  }
  void BeginObject(int num, int gen) {
    entries_[num] = {offset(), gen};
    Raw(std::to_string(num) + " " + std::to_string(gen) + " obj\n");
  }
  std::uint64_t offset() const { return base_ + bytes_.size(); }
  std::size_t size() const { return bytes_.size(); }
  Bytes& bytes() { return bytes_; }
  // Object number -> (offset, generation), ascending.
  const std::map<int, std::pair<std::uint64_t, int>>& entries() const { return entries_; }

 private:
  std::uint64_t base_;
  Bytes bytes_;
  std::map<int, std::pair<std::uint64_t, int>> entries_;
};

// Consecutive runs of object numbers: (first, count).
std::vector<std::pair<int, int>> Runs(const std::map<int, std::pair<std::uint64_t, int>>& e) {
  std::vector<std::pair<int, int>> runs;
  for (const auto& [num, entry] : e) {
    if (!runs.empty() && runs.back().first + runs.back().second == num) {
      ++runs.back().second;
    } else {
      runs.emplace_back(num, 1);
    }
  }
  return runs;
}

void WriteXrefTable(UpdateWriter& w, const std::string& trailer_entries) {
  std::uint64_t xref_offset = w.offset();
  w.Raw("xref\n");
  auto runs = Runs(w.entries());
  auto it = w.entries().begin();
  for (const auto& [first, count] : runs) {
    w.Raw(std::to_string(first) + " " + std::to_string(count) + "\n");
    for (int i = 0; i < count; ++i, ++it) {
      char line[32];
      std::snprintf(line, sizeof(line), "%010llu %05d n\r\n",
                    static_cast<unsigned long long>(it->second.first), it->second.second);
      w.Raw(line);
    }
  }
  w.Raw("trailer\n<<" + trailer_entries + " >>\nstartxref\n" + std::to_string(xref_offset) +
        "\n%%EOF\n");
}

void WriteXrefStream(UpdateWriter& w, int num, const std::string& trailer_entries) {
  std::uint64_t xref_offset = w.offset();
  // The stream lists itself, as ISO 32000-1 7.5.8.3 recommends; its entry must exist before the
  // entries are serialised.
  w.BeginObject(num, 0);
  std::string index;
  for (const auto& [first, count] : Runs(w.entries())) {
    index += (index.empty() ? "" : " ") + std::to_string(first) + " " + std::to_string(count);
  }
  std::string data;
  for (const auto& [n, entry] : w.entries()) {
    data.push_back('\x01');
    for (std::size_t i = kXrefOffsetBytes; i-- > 0;) {
      data.push_back(static_cast<char>((entry.first >> (8 * i)) & 0xff));
    }
    data.push_back(static_cast<char>((entry.second >> 8) & 0xff));
    data.push_back(static_cast<char>(entry.second & 0xff));
  }
  w.Raw("<< /Type /XRef /W [1 " + std::to_string(kXrefOffsetBytes) + " 2] /Index [" + index + "]" +
        trailer_entries + " /Length " + std::to_string(data.size()) + " >>\nstream\n");
  w.Raw(data);
  w.Raw("\nendstream\nendobj\nstartxref\n" + std::to_string(xref_offset) + "\n%%EOF\n");
}

void WriteXref(UpdateWriter& w, bool xref_stream, int xref_num, const std::string& trailer) {
  if (xref_stream) {
    WriteXrefStream(w, xref_num, trailer);
  } else {
    WriteXrefTable(w, trailer);
  }
}

Result<IncrementalUpdate> Build(QPDF& q, std::uint64_t original_size, bool ends_with_eol,
                                const UpdateRequest& request, std::uint64_t prev,
                                bool xref_stream) {
  QPDFObjectHandle trailer = q.getTrailer();
  QPDFObjectHandle root = q.getRoot();
  QSEAL_RETURN_IF_ERROR(CheckDocMdp(root));

  // New objects take numbers past every one in use (the trailer's /Size and the xref agree on a
  // file qpdf read without repair; the larger is taken anyway).
  int next = trailer.getKey("/Size").isInteger()
                 ? static_cast<int>(trailer.getKey("/Size").getIntValue())
                 : 1;
  for (const auto& [og, entry] : q.getXRefTable()) next = std::max(next, og.getObj() + 1);
  const int sig_num = next++;
  const int field_num = next++;
  const int ap_num = next++;

  QPDFObjectHandle page = q.getAllPages().front();
  QPDFObjectHandle acroform = root.getKey("/AcroForm");
  if (!acroform.isDictionary()) acroform = QPDFObjectHandle::newDictionary();
  QPDFObjectHandle fields = acroform.getKey("/Fields");

  IncrementalUpdate out;
  out.contents_capacity = request.contents_capacity;
  out.field_name = UniqueFieldName(fields);

  UpdateWriter w(original_size);
  if (!ends_with_eol) w.Raw("\n");

  // The signature dictionary: /ByteRange and /Contents are placeholders of fixed size.
  std::size_t byte_range_at = 0;
  {
    w.BeginObject(sig_num, 0);
    w.Raw("<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /M (" +
          PdfDate(request.signing_time) + ") /ByteRange [");
    byte_range_at = w.size();
    w.Raw(std::string(kByteRangeWidth, ' '));
    w.Raw("] /Contents ");
    out.contents_offset = w.size();
    w.Raw("<" + std::string(2 * request.contents_capacity, '0') + ">");
    w.Raw(" >>\nendobj\n");
  }
  // The field merged with its widget: invisible (zero Rect), printable, with an empty
  // appearance so PDF/A's "every annotation has /AP /N" holds.
  const std::string field_ref = Ref(field_num, 0);
  w.Object(field_num, 0,
           "<< /Type /Annot /Subtype /Widget /FT /Sig /T (" + out.field_name + ") /V " +
               Ref(sig_num, 0) + " /F " + std::to_string(kWidgetFlags) + " /Rect [0 0 0 0] /P " +
               Ref(page.getObjectID(), page.getGeneration()) + " /AP << /N " + Ref(ap_num, 0) +
               " >> >>");
  w.Object(ap_num, 0,
           "<< /Type /XObject /Subtype /Form /BBox [0 0 0 0] /Length 0 >>\nstream\n\nendstream");

  // /SigFlags 3: SignaturesExist | AppendOnly, added to what was there.
  long long sig_flags =
      acroform.getKey("/SigFlags").isInteger() ? acroform.getKey("/SigFlags").getIntValue() : 0;
  Overrides acroform_entries = {{"/Fields", ArrayWith(fields, field_ref)},
                                {"/SigFlags", std::to_string(sig_flags | 3)}};
  QPDFObjectHandle catalog_acroform = root.getKey("/AcroForm");
  if (catalog_acroform.isIndirect() && catalog_acroform.isDictionary()) {
    w.Object(catalog_acroform.getObjectID(), catalog_acroform.getGeneration(),
             DictWith(catalog_acroform, acroform_entries));
    DescribeCatalog(root, DictWith(root, {}, "/DSS"), out.tail);
  } else {
    const Overrides catalog_entries = {{"/AcroForm", DictWith(acroform, acroform_entries)}};
    w.Object(root.getObjectID(), root.getGeneration(), DictWith(root, catalog_entries));
    DescribeCatalog(root, DictWith(root, catalog_entries, "/DSS"), out.tail);
  }
  w.Object(page.getObjectID(), page.getGeneration(),
           DictWith(page, {{"/Annots", ArrayWith(page.getKey("/Annots"), field_ref)}}));

  const int xref_num = xref_stream ? next++ : 0;
  std::string carried = " /Root " + Ref(root.getObjectID(), root.getGeneration());
  if (trailer.getKey("/Info").isIndirect())
    carried += " /Info " + trailer.getKey("/Info").unparse();
  if (trailer.getKey("/ID").isArray()) carried += " /ID " + trailer.getKey("/ID").unparse();
  out.tail.size = next;
  out.tail.xref_stream = xref_stream;
  out.tail.trailer_entries = carried;
  out.tail.xref_offset = w.offset();
  WriteXref(w, xref_stream, xref_num,
            " /Size " + std::to_string(next) + carried + " /Prev " + std::to_string(prev));

  out.bytes = std::move(w.bytes());
  std::uint64_t total = original_size + out.bytes.size();
  std::uint64_t gap_start = original_size + out.contents_offset;
  std::uint64_t gap_end = gap_start + 2 * request.contents_capacity + 2;
  std::string range = "0 " + std::to_string(gap_start) + " " + std::to_string(gap_end) + " " +
                      std::to_string(total - gap_end);
  std::copy(range.begin(), range.end(), out.bytes.begin() + static_cast<long>(byte_range_at));
  return out;
}

}  // namespace

std::string PdfDate(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "D:%Y%m%d%H%M%SZ", &tm);
  return text;
}

Bytes BuildDssUpdate(const RevisionTail& tail, std::uint64_t revision_end, const DssContent& dss) {
  UpdateWriter w(revision_end);
  int next = tail.size;
  // One stream per item (DER as it is, no filter), its reference added after the earlier ones.
  auto streams = [&](const std::vector<Bytes>& items, std::string refs) {
    for (const Bytes& item : items) {
      const int num = next++;
      w.BeginObject(num, 0);
      w.Raw("<< /Length " + std::to_string(item.size()) + " >>\nstream\n");
      w.Raw(std::string_view(reinterpret_cast<const char*>(item.data()), item.size()));
      w.Raw("\nendstream\nendobj\n");
      refs += (refs.empty() ? "" : " ") + Ref(num, 0);
    }
    return refs;
  };
  const std::string certs = streams(dss.certificates, tail.dss_certs);
  const std::string ocsps = streams(dss.ocsp_responses, tail.dss_ocsps);
  const std::string crls = streams(dss.crls, tail.dss_crls);
  const int dss_num = next++;
  std::string body = "<< /Type /DSS";
  if (!certs.empty()) body += " /Certs [" + certs + "]";
  if (!ocsps.empty()) body += " /OCSPs [" + ocsps + "]";
  if (!crls.empty()) body += " /CRLs [" + crls + "]";
  if (!tail.dss_vri.empty()) body += " /VRI " + tail.dss_vri;
  w.Object(dss_num, 0, body + " >>");
  w.Object(tail.catalog_num, tail.catalog_gen,
           tail.catalog_open + " /DSS " + Ref(dss_num, 0) + " >>");
  const int xref_num = tail.xref_stream ? next++ : 0;
  WriteXref(w, tail.xref_stream, xref_num,
            " /Size " + std::to_string(next) + tail.trailer_entries + " /Prev " +
                std::to_string(tail.xref_offset));
  return std::move(w.bytes());
}

Result<IncrementalUpdate> BuildIncrementalUpdate(const PdfBytes& original,
                                                 const UpdateRequest& request) {
  QSEAL_ASSIGN_OR_RETURN(std::unique_ptr<QPDF> q, OpenPdf(original));
  QSEAL_ASSIGN_OR_RETURN(std::uint64_t prev, LastStartXref(original));
  QSEAL_ASSIGN_OR_RETURN(bool xref_stream, IsXrefStream(original, prev));
  QSEAL_ASSIGN_OR_RETURN(Bytes last, original.ReadRange(original.size - 1, 1));
  bool ends_with_eol = last.size() == 1 && (last[0] == '\n' || last[0] == '\r');
  return CatchQpdf("PDF structure is broken", [&]() -> Result<IncrementalUpdate> {
    auto update = Build(*q, original.size, ends_with_eol, request, prev, xref_stream);
    // Objects resolved while building may have failed softly (qpdf warns instead of throwing
    // for some): the update would then name objects that do not parse, so refuse.
    if (update.ok() && q->anyWarnings()) {
      return InvalidArgumentError("PDF structure is damaged: " +
                                  std::string(q->getWarnings().front().what()));
    }
    return update;
  });
}

}  // namespace qseal::formats::pades::detail
