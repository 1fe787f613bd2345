#include "formats/xades/detail/xml.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include <libxml/c14n.h>
#include <libxml/parser.h>
#include <libxml/xmlIO.h>
#include <openssl/evp.h>

#include "common/sha256.h"

namespace qseal::formats::xades::detail {
namespace {

// xmlInitParser is not itself thread-safe; after it, parsing distinct documents concurrently is.
void InitLibxml() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

// No XML_PARSE_NOENT/DTDLOAD/DTDATTR (nothing is substituted or loaded), no HUGE (libxml2's
// depth and text-size limits stay on), NONET for good measure, errors reported rather than
// printed, short texts stored inline (less memory per node).
constexpr int kParseOptions =
    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_COMPACT;

struct ParserCtxtFree {
  void operator()(xmlParserCtxt* c) const { xmlFreeParserCtxt(c); }
};

bool StartsWith(ByteSpan b, std::size_t at, std::string_view s) {
  return b.size() >= at + s.size() && std::memcmp(b.data() + at, s.data(), s.size()) == 0;
}

std::size_t Find(ByteSpan b, std::size_t from, std::string_view s) {
  if (from >= b.size()) return b.size();
  auto it = std::search(b.begin() + static_cast<std::ptrdiff_t>(from), b.end(), s.begin(), s.end());
  return static_cast<std::size_t>(it - b.begin());
}

bool IsSpace(std::uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Refuses what the parser must never see: other encodings than UTF-8 (the enveloped signature is
// inserted as UTF-8 bytes, so the document must be UTF-8 to stay one encoding) and a DOCTYPE
// (entities are how XXE and entity expansion attacks come in; invoices need none).
Status CheckProlog(ByteSpan b, std::string_view what) {
  const std::string prefix = std::string(what) + ": ";
  if (StartsWith(b, 0, "\xFE\xFF") || StartsWith(b, 0, "\xFF\xFE") ||
      (b.size() >= 2 && (b[0] == 0 || b[1] == 0))) {
    return InvalidArgumentError(prefix + "UTF-16/UTF-32 XML is not supported (only UTF-8)");
  }
  std::size_t at = StartsWith(b, 0, "\xEF\xBB\xBF") ? 3 : 0;
  if (StartsWith(b, at, "<?xml") && b.size() > at + 5 && IsSpace(b[at + 5])) {
    std::size_t end = Find(b, at, "?>");
    if (end == b.size()) return InvalidArgumentError(prefix + "unterminated XML declaration");
    std::string decl(reinterpret_cast<const char*>(b.data()) + at, end - at);
    std::size_t enc = decl.find("encoding");
    if (enc != std::string::npos) {
      std::size_t q = decl.find_first_of("\"'", enc);
      std::size_t q2 = q == std::string::npos ? q : decl.find(decl[q], q + 1);
      if (q2 == std::string::npos) return InvalidArgumentError(prefix + "malformed encoding");
      std::string name = decl.substr(q + 1, q2 - q - 1);
      if (Lower(name) != "utf-8") {
        return InvalidArgumentError(prefix + "encoding \"" + name +
                                    "\" is not supported (only UTF-8)");
      }
    }
    at = end + 2;
  }
  // The rest of the prolog: whitespace, comments, processing instructions, then the root.
  while (at < b.size()) {
    if (IsSpace(b[at])) {
      ++at;
    } else if (StartsWith(b, at, "<!--")) {
      at = Find(b, at + 4, "-->") + 3;
    } else if (StartsWith(b, at, "<?")) {
      at = Find(b, at + 2, "?>") + 2;
    } else if (StartsWith(b, at, "<!")) {
      return InvalidArgumentError(prefix +
                                  "a DOCTYPE is not accepted (no DTDs or entities: XXE and "
                                  "entity expansion are refused)");
    } else {
      break;
    }
  }
  return Status::Ok();
}

// Visibility for the C14N callback: inside `subtree` (or anywhere when null) and outside
// `excluded`.
struct NodeSet {
  const xmlNode* subtree;
  const xmlNode* excluded;
};

bool Within(const xmlNode* n, const xmlNode* root) {
  for (; n != nullptr; n = n->parent) {
    if (n == root) return true;
  }
  return false;
}

int IsVisible(void* user_data, xmlNodePtr node, xmlNodePtr parent) {
  const auto* set = static_cast<const NodeSet*>(user_data);
  // Namespace nodes are xmlNs, not xmlNode: judge them by the element they belong to.
  const xmlNode* n = (node != nullptr && node->type == XML_NAMESPACE_DECL) ? parent : node;
  if (n == nullptr) return 0;
  if (set->excluded != nullptr && Within(n, set->excluded)) return 0;
  if (set->subtree != nullptr && !Within(n, set->subtree)) return 0;
  return 1;
}

int SinkWrite(void* context, const char* buffer, int len) {
  (*static_cast<const C14nSink*>(context))(std::string_view(buffer, static_cast<std::size_t>(len)));
  return len;
}

int SinkClose(void*) { return 0; }

void Collect(const xmlNode* n, std::string_view ns, std::string_view local,
             std::vector<xmlNode*>& out) {
  for (; n != nullptr; n = n->next) {
    if (n->type != XML_ELEMENT_NODE) continue;
    if (Is(n, ns, local)) out.push_back(const_cast<xmlNode*>(n));
    Collect(n->children, ns, local, out);
  }
}

}  // namespace

Result<XmlDocPtr> ParseXml(ByteSpan bytes, std::string_view what) {
  InitLibxml();
  QSEAL_RETURN_IF_ERROR(CheckProlog(bytes, what));
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return InvalidArgumentError(std::string(what) + ": too large for the XML parser");
  }
  std::unique_ptr<xmlParserCtxt, ParserCtxtFree> ctxt(xmlNewParserCtxt());
  if (ctxt == nullptr) return InternalError("xmlNewParserCtxt failed");
  const int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_COMPACT;
  XmlDocPtr doc(xmlCtxtReadMemory(ctxt.get(), reinterpret_cast<const char*>(bytes.data()),
                                  static_cast<int>(bytes.size()), nullptr, "UTF-8", options));
  if (doc == nullptr || !ctxt->wellFormed || !ctxt->nsWellFormed) {
    const xmlError* err = xmlCtxtGetLastError(ctxt.get());
    std::string why = err != nullptr && err->message != nullptr ? err->message : "unknown error";
    while (!why.empty() && IsSpace(static_cast<std::uint8_t>(why.back()))) why.pop_back();
    std::string line = err != nullptr ? " (line " + std::to_string(err->line) + ")" : "";
    return InvalidArgumentError(std::string(what) + ": not well-formed XML: " + why + line);
  }
  if (doc->intSubset != nullptr || doc->extSubset != nullptr) {
    return InvalidArgumentError(std::string(what) + ": a DOCTYPE is not accepted");
  }
  if (xmlDocGetRootElement(doc.get()) == nullptr) {
    return InvalidArgumentError(std::string(what) + ": no root element");
  }
  return doc;
}

Status InsertFragment(xmlNode* parent, xmlNode* before, std::string_view fragment) {
  xmlNode* list = nullptr;
  xmlParserErrors rc = xmlParseInNodeContext(
      parent, fragment.data(), static_cast<int>(fragment.size()), kParseOptions, &list);
  if (rc != XML_ERR_OK || list == nullptr) {
    xmlFreeNodeList(list);
    return InternalError("the signature fragment does not parse (libxml2 error " +
                         std::to_string(static_cast<int>(rc)) + ")");
  }
  for (xmlNode* n = list; n != nullptr;) {
    xmlNode* next = n->next;
    n->next = nullptr;
    n->prev = nullptr;
    n->parent = nullptr;
    if (before != nullptr) {
      xmlAddPrevSibling(before, n);
    } else {
      xmlAddChild(parent, n);
    }
    n = next;
  }
  return Status::Ok();
}

Result<std::vector<ElementSpan>> ScanElements(ByteSpan b) {
  std::vector<ElementSpan> spans;
  std::vector<std::size_t> open;  // indexes into spans
  std::size_t at = 0;
  auto bad = [] { return InternalError("XML scan disagrees with the parser"); };
  while (at < b.size()) {
    if (b[at] != '<') {
      at = Find(b, at, "<");
      continue;
    }
    if (StartsWith(b, at, "<!--")) {
      at = Find(b, at + 4, "-->") + 3;
    } else if (StartsWith(b, at, "<![CDATA[")) {
      at = Find(b, at + 9, "]]>") + 3;
    } else if (StartsWith(b, at, "<?")) {
      at = Find(b, at + 2, "?>") + 2;
    } else if (StartsWith(b, at, "</")) {
      if (open.empty()) return bad();
      std::size_t end = Find(b, at, ">");
      if (end == b.size()) return bad();
      spans[open.back()].end_tag_start = at;
      open.pop_back();
      at = end + 1;
    } else {
      // A start tag: '>' inside quoted attribute values does not end it.
      std::size_t i = at + 1;
      char quote = 0;
      for (; i < b.size(); ++i) {
        char c = static_cast<char>(b[i]);
        if (quote != 0) {
          if (c == quote) quote = 0;
        } else if (c == '"' || c == '\'') {
          quote = c;
        } else if (c == '>') {
          break;
        }
      }
      if (i == b.size()) return bad();
      ElementSpan s;
      s.start = at;
      s.start_tag_end = i + 1;
      s.self_closing = b[i - 1] == '/';
      if (s.self_closing) s.end_tag_start = s.start_tag_end;
      spans.push_back(s);
      if (!s.self_closing) open.push_back(spans.size() - 1);
      at = i + 1;
    }
  }
  if (!open.empty()) return bad();
  return spans;
}

std::size_t ElementIndex(const xmlNode* element) {
  // Document order: count the elements before `element` (preceding, then ancestors).
  std::size_t index = 0;
  std::function<bool(const xmlNode*)> walk = [&](const xmlNode* n) {
    for (; n != nullptr; n = n->next) {
      if (n->type != XML_ELEMENT_NODE) continue;
      if (n == element) return true;
      ++index;
      if (walk(n->children)) return true;
    }
    return false;
  };
  walk(element->doc->children);
  return index;
}

Status Canonicalize(xmlDoc* doc, const xmlNode* subtree, const xmlNode* excluded, C14nMode mode,
                    const C14nSink& sink) {
  InitLibxml();
  NodeSet set{subtree, excluded};
  xmlOutputBuffer* out =
      xmlOutputBufferCreateIO(SinkWrite, SinkClose, const_cast<C14nSink*>(&sink), nullptr);
  if (out == nullptr) return InternalError("xmlOutputBufferCreateIO failed");
  int c14n_mode = mode == C14nMode::kExclusive10   ? XML_C14N_EXCLUSIVE_1_0
                  : mode == C14nMode::kInclusive11 ? XML_C14N_1_1
                                                   : XML_C14N_1_0;
  const bool whole = subtree == nullptr && excluded == nullptr;
  int rc = xmlC14NExecute(doc, whole ? nullptr : IsVisible, whole ? nullptr : &set, c14n_mode,
                          nullptr, 0, out);
  int closed = xmlOutputBufferClose(out);  // flushes the last piece into the sink
  if (rc < 0 || closed < 0) return InternalError("libxml2 canonicalisation failed");
  return Status::Ok();
}

Result<Bytes> DigestCanonical(xmlDoc* doc, const xmlNode* subtree, const xmlNode* excluded,
                              C14nMode mode, DigestAlgorithm digest) {
  Hasher hasher(digest);
  Status st;
  QSEAL_RETURN_IF_ERROR(Canonicalize(doc, subtree, excluded, mode, [&](std::string_view piece) {
    if (st.ok()) st = hasher.Update(AsBytes(piece));
  }));
  QSEAL_RETURN_IF_ERROR(st);
  return hasher.Final();
}

std::vector<xmlNode*> FindById(const xmlNode* root, std::string_view ns, std::string_view local,
                               std::string_view id) {
  std::vector<xmlNode*> out;
  for (xmlNode* n : Descendants(root, ns, local)) {
    if (Attribute(n, "Id") == id) out.push_back(n);
  }
  return out;
}

bool Is(const xmlNode* e, std::string_view ns, std::string_view local) {
  if (e == nullptr || e->type != XML_ELEMENT_NODE) return false;
  if (local != reinterpret_cast<const char*>(e->name)) return false;
  const char* uri = e->ns != nullptr ? reinterpret_cast<const char*>(e->ns->href) : "";
  return ns == uri;
}

std::vector<xmlNode*> Children(const xmlNode* parent, std::string_view ns, std::string_view local) {
  std::vector<xmlNode*> out;
  for (xmlNode* c = parent->children; c != nullptr; c = c->next) {
    if (Is(c, ns, local)) out.push_back(c);
  }
  return out;
}

xmlNode* OnlyChild(const xmlNode* parent, std::string_view ns, std::string_view local) {
  std::vector<xmlNode*> c = Children(parent, ns, local);
  return c.size() == 1 ? c[0] : nullptr;
}

std::vector<xmlNode*> Descendants(const xmlNode* root, std::string_view ns,
                                  std::string_view local) {
  std::vector<xmlNode*> out;
  if (Is(root, ns, local)) out.push_back(const_cast<xmlNode*>(root));
  Collect(root->children, ns, local, out);
  return out;
}

std::string Attribute(const xmlNode* element, const char* name) {
  xmlChar* v = xmlGetNoNsProp(element, reinterpret_cast<const xmlChar*>(name));
  if (v == nullptr) return "";
  std::string out(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return out;
}

std::string Text(const xmlNode* element) {
  xmlChar* v = xmlNodeGetContent(element);
  if (v == nullptr) return "";
  std::string out(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return out;
}

std::string Base64Encode(ByteSpan bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

Result<Bytes> Base64Decode(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char c : text) {
    if (!IsSpace(static_cast<std::uint8_t>(c))) clean.push_back(c);
  }
  if (clean.size() % 4 != 0) return InvalidArgumentError("malformed base64");
  Bytes out(clean.size() / 4 * 3);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(clean.data()),
                          static_cast<int>(clean.size()));
  if (n < 0) return InvalidArgumentError("malformed base64");
  std::size_t pad = 0;
  if (!clean.empty() && clean.back() == '=') ++pad;
  if (clean.size() > 1 && clean[clean.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string UriEscape(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<std::string> UriUnescape(std::string_view uri) {
  std::string out;
  for (std::size_t i = 0; i < uri.size(); ++i) {
    if (uri[i] != '%') {
      out.push_back(uri[i]);
      continue;
    }
    if (i + 2 >= uri.size() || !std::isxdigit(static_cast<unsigned char>(uri[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(uri[i + 2]))) {
      return InvalidArgumentError("malformed percent-escape in URI");
    }
    out.push_back(static_cast<char>(std::stoi(std::string(uri.substr(i + 1, 2)), nullptr, 16)));
    i += 2;
  }
  return out;
}

}  // namespace qseal::formats::xades::detail
