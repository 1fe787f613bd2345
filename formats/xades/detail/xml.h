// The libxml2 boundary of formats/xades: owning document handles, the hardened parser (no DTD,
// no entities, no network, UTF-8 only), byte offsets of elements in the bytes parsed, Canonical
// XML through libxml2's C14N into a sink, and element look-ups by namespace. Thread-safe
// functions (libxml2 is initialised once per process; each document belongs to one thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <libxml/tree.h>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"

namespace qseal::formats::xades::detail {

inline constexpr std::string_view kDsigNs = "http://www.w3.org/2000/09/xmldsig#";
inline constexpr std::string_view kXadesNs = "http://uri.etsi.org/01903/v1.3.2#";

struct XmlDocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using XmlDocPtr = std::unique_ptr<xmlDoc, XmlDocFree>;

// Parses `bytes` as one XML document. Refused (kInvalidArgument, the message says why): a
// byte-order mark or XML declaration naming another encoding than UTF-8, invalid UTF-8, any
// DOCTYPE (so no external or internal entities: no XXE, no entity expansion), nesting deeper than
// libxml2's default 256, not well-formed XML. `what` names the document in messages.
Result<XmlDocPtr> ParseXml(ByteSpan bytes, std::string_view what);

// Where an element's tags are in the bytes it was parsed from.
struct ElementSpan {
  std::size_t start = 0;          // offset of '<' of the start tag
  std::size_t start_tag_end = 0;  // offset just after the start tag's '>'
  std::size_t end_tag_start = 0;  // offset of "</" (== start_tag_end for an empty element)
  bool self_closing = false;      // written <a/>
};

// The spans of every element of `bytes` in document order (the order of the start tags, which is
// also libxml2's element order). Only for bytes ParseXml accepted; kInternal when they do not
// scan as such.
Result<std::vector<ElementSpan>> ScanElements(ByteSpan bytes);

// The index of `element` among the elements of its document, in document order.
std::size_t ElementIndex(const xmlNode* element);

// Parses `fragment` (well-balanced XML) in the context of `parent` (so its in-scope namespaces
// apply) with ParseXml's options, and links the result into `parent` before its child `before`
// (appended when null): the tree a parse of the bytes with the fragment spliced in at that place
// would give. kInternal when the fragment does not parse (it is built by this component).
Status InsertFragment(xmlNode* parent, xmlNode* before, std::string_view fragment);

// Canonicalisation methods (the XML-DSig Algorithm URIs are in detail/signature.h).
enum class C14nMode { kInclusive10, kExclusive10, kInclusive11 };

// Receives canonical output in pieces.
using C14nSink = std::function<void(std::string_view piece)>;

// Canonicalises (without comments) the node-set made of the subtree of `subtree` (the whole
// document when null) minus the subtree of `excluded` (nothing when null), as XML-DSig does for
// a same-document reference ("" or "#id", with the enveloped-signature transform when
// `excluded` is the signature). kInternal when libxml2 fails.
Status Canonicalize(xmlDoc* doc, const xmlNode* subtree, const xmlNode* excluded, C14nMode mode,
                    const C14nSink& sink);

// Canonicalize() streamed into a `digest` hasher (the canonical form is never held whole).
Result<Bytes> DigestCanonical(xmlDoc* doc, const xmlNode* subtree, const xmlNode* excluded,
                              C14nMode mode, DigestAlgorithm digest);

// Element children of `parent` named {ns}local, in order.
std::vector<xmlNode*> Children(const xmlNode* parent, std::string_view ns, std::string_view local);
// The only such child; nullptr when there is none or more than one.
xmlNode* OnlyChild(const xmlNode* parent, std::string_view ns, std::string_view local);
// All elements {ns}local under `root` (itself included), document order.
std::vector<xmlNode*> Descendants(const xmlNode* root, std::string_view ns, std::string_view local);
// The elements {ns}local under `root` whose attribute Id is `id`.
std::vector<xmlNode*> FindById(const xmlNode* root, std::string_view ns, std::string_view local,
                               std::string_view id);
// The attribute `name` (no namespace) of `element`, or "" when absent.
std::string Attribute(const xmlNode* element, const char* name);
// The text content of `element` (concatenated descendants' text).
std::string Text(const xmlNode* element);
// True when element is {ns}local.
bool Is(const xmlNode* element, std::string_view ns, std::string_view local);

// Base64 (RFC 4648, no line breaks) and its inverse, which ignores XML whitespace.
std::string Base64Encode(ByteSpan bytes);
Result<Bytes> Base64Decode(std::string_view text);

// Escapes `name` for a URI attribute (RFC 3986: everything but unreserved characters).
std::string UriEscape(std::string_view name);
// Inverse of UriEscape (percent-decoding); nullopt-like empty Result error on a malformed escape.
Result<std::string> UriUnescape(std::string_view uri);

}  // namespace qseal::formats::xades::detail
