#include "formats/cades/detail/der.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace qseal::formats::cades::detail {

std::size_t HeaderSize(std::uint64_t length) {
  if (length < 0x80) return 2;
  std::size_t n = 0;
  for (std::uint64_t v = length; v != 0; v >>= 8) ++n;
  return 2 + n;
}

void AppendHeader(Bytes& out, std::uint8_t tag, std::uint64_t length) {
  out.push_back(tag);
  if (length < 0x80) {
    out.push_back(static_cast<std::uint8_t>(length));
    return;
  }
  std::size_t n = HeaderSize(length) - 2;
  out.push_back(static_cast<std::uint8_t>(0x80 | n));
  for (std::size_t i = n; i > 0; --i) {
    out.push_back(static_cast<std::uint8_t>(length >> (8 * (i - 1))));
  }
}

void Append(Bytes& out, ByteSpan bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); }

void AppendTlv(Bytes& out, std::uint8_t tag, ByteSpan value) {
  AppendHeader(out, tag, value.size());
  Append(out, value);
}

Bytes Tlv(std::uint8_t tag, std::initializer_list<ByteSpan> parts) {
  std::size_t length = 0;
  for (ByteSpan p : parts) length += p.size();
  Bytes out;
  out.reserve(HeaderSize(length) + length);
  AppendHeader(out, tag, length);
  for (ByteSpan p : parts) Append(out, p);
  return out;
}

Bytes Oid(std::string_view dotted) {
  std::vector<std::uint64_t> arcs;
  while (!dotted.empty()) {
    std::size_t dot = dotted.find('.');
    std::string_view part = dotted.substr(0, dot);
    std::uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (ec != std::errc() || ptr != part.data() + part.size()) std::abort();
    arcs.push_back(v);
    dotted = dot == std::string_view::npos ? std::string_view() : dotted.substr(dot + 1);
  }
  if (arcs.size() < 2) std::abort();
  Bytes body;
  auto put = [&body](std::uint64_t v) {
    std::uint8_t tmp[10];
    int n = 0;
    do {
      tmp[n++] = static_cast<std::uint8_t>(v & 0x7F);
      v >>= 7;
    } while (v != 0);
    for (int i = n - 1; i >= 0; --i) {
      body.push_back(static_cast<std::uint8_t>(tmp[i] | (i > 0 ? 0x80 : 0)));
    }
  };
  put(arcs[0] * 40 + arcs[1]);
  for (std::size_t i = 2; i < arcs.size(); ++i) put(arcs[i]);
  Bytes out;
  AppendTlv(out, kTagOid, body);
  return out;
}

Bytes SmallInteger(std::uint32_t value) {
  Bytes body;
  for (int shift = 24; shift >= 0; shift -= 8) {
    auto b = static_cast<std::uint8_t>(value >> shift);
    if (body.empty() && b == 0 && shift != 0) continue;
    if (body.empty() && (b & 0x80) != 0) body.push_back(0);
    body.push_back(b);
  }
  Bytes out;
  AppendTlv(out, kTagInteger, body);
  return out;
}

Bytes SetOf(std::uint8_t tag, std::vector<ByteSpan> elements) {
  // X.690 11.6: ascending order of the encodings compared as octet strings.
  std::sort(elements.begin(), elements.end(), [](ByteSpan a, ByteSpan b) {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
  });
  std::size_t length = 0;
  for (ByteSpan e : elements) length += e.size();
  Bytes out;
  out.reserve(HeaderSize(length) + length);
  AppendHeader(out, tag, length);
  for (ByteSpan e : elements) Append(out, e);
  return out;
}

Result<Element> Reader::Next() {
  if (data_.size() < 2) return InvalidArgumentError("DER: truncated element");
  std::uint8_t tag = data_[0];
  if ((tag & 0x1F) == 0x1F) return InvalidArgumentError("DER: high tag numbers are not supported");
  std::uint8_t first = data_[1];
  std::size_t header = 2;
  std::uint64_t length = 0;
  if (first < 0x80) {
    length = first;
  } else if (first == 0x80) {
    return InvalidArgumentError("DER: indefinite length (BER) is not supported");
  } else {
    std::size_t n = first & 0x7F;
    if (n > 8) return InvalidArgumentError("DER: length too large");
    if (data_.size() < 2 + n) return InvalidArgumentError("DER: truncated length");
    if (data_[2] == 0) return InvalidArgumentError("DER: non-minimal length");
    for (std::size_t i = 0; i < n; ++i) length = (length << 8) | data_[2 + i];
    if (length < 0x80) return InvalidArgumentError("DER: non-minimal length");
    header += n;
  }
  if (length > data_.size() - header) return InvalidArgumentError("DER: element past the end");
  Element e;
  e.tag = tag;
  e.value = data_.subspan(header, static_cast<std::size_t>(length));
  e.whole = data_.subspan(0, header + static_cast<std::size_t>(length));
  data_ = data_.subspan(e.whole.size());
  return e;
}

Result<Element> Reader::Expect(std::uint8_t tag, std::string_view what) {
  if (data_.empty()) return InvalidArgumentError(std::string(what) + ": missing");
  if (data_[0] != tag) {
    std::string m(what);
    m.append(": expected tag 0x").append(HexEncode(ByteSpan(&tag, 1)));
    m.append(", found 0x").append(HexEncode(data_.subspan(0, 1)));
    return InvalidArgumentError(std::move(m));
  }
  auto e = Next();
  if (!e.ok()) return e.status().WithContext(what);
  return e;
}

std::string OidToString(ByteSpan contents) {
  std::string out;
  std::uint64_t v = 0;
  bool first = true;
  for (std::size_t i = 0; i < contents.size(); ++i) {
    if (v > (std::uint64_t{1} << 56)) return "?";
    v = (v << 7) | (contents[i] & 0x7F);
    if ((contents[i] & 0x80) != 0) continue;
    if (first) {
      std::uint64_t a = v < 80 ? v / 40 : 2;
      out.append(std::to_string(a));
      out.push_back('.');
      out.append(std::to_string(v - a * 40));
      first = false;
    } else {
      out.push_back('.');
      out.append(std::to_string(v));
    }
    v = 0;
  }
  return first ? "?" : out;
}

}  // namespace qseal::formats::cades::detail
