// Minimal DER writer and reader for the CMS structures formats/cades builds and checks.
// Only what CMS needs: single-byte tags, definite lengths. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/status.h"

namespace qseal::formats::cades::detail {

inline constexpr std::uint8_t kTagInteger = 0x02;
inline constexpr std::uint8_t kTagOctetString = 0x04;
inline constexpr std::uint8_t kTagNull = 0x05;
inline constexpr std::uint8_t kTagOid = 0x06;
inline constexpr std::uint8_t kTagUtcTime = 0x17;
inline constexpr std::uint8_t kTagGeneralizedTime = 0x18;
inline constexpr std::uint8_t kTagSequence = 0x30;
inline constexpr std::uint8_t kTagSet = 0x31;
inline constexpr std::uint8_t kTagOctetStringConstructed = 0x24;
// Context-specific constructed [n].
constexpr std::uint8_t ContextTag(int n) { return static_cast<std::uint8_t>(0xA0 + n); }

// Size of a TLV header (tag + length octets) for a value of `length` bytes.
std::size_t HeaderSize(std::uint64_t length);
// Size of the whole TLV for a value of `length` bytes.
inline std::uint64_t TlvSize(std::uint64_t length) { return HeaderSize(length) + length; }

void AppendHeader(Bytes& out, std::uint8_t tag, std::uint64_t length);
void Append(Bytes& out, ByteSpan bytes);
void AppendTlv(Bytes& out, std::uint8_t tag, ByteSpan value);
// tag + length + the concatenation of `parts`.
Bytes Tlv(std::uint8_t tag, std::initializer_list<ByteSpan> parts);

// The full OBJECT IDENTIFIER TLV for a dotted string such as "1.2.840.113549.1.7.1".
// Aborts on a malformed literal: only called with constants.
Bytes Oid(std::string_view dotted);
// The INTEGER TLV for a small non-negative value.
Bytes SmallInteger(std::uint32_t value);

// Sorts `elements` (complete encodings) the way DER orders a SET OF and returns the SET
// (`tag`, 0x31 or an implicit context tag) holding them.
Bytes SetOf(std::uint8_t tag, std::vector<ByteSpan> elements);

// One decoded TLV.
struct Element {
  std::uint8_t tag = 0;
  ByteSpan value;  // the contents octets
  ByteSpan whole;  // tag + length + contents
};

// Reads consecutive TLVs from a buffer. Rejects high tag numbers, indefinite lengths, lengths
// past the end, and non-minimal length octets.
class Reader {
 public:
  explicit Reader(ByteSpan data) : data_(data) {}

  bool empty() const { return data_.empty(); }
  // Tag of the next element, or -1 at the end.
  int PeekTag() const { return data_.empty() ? -1 : data_[0]; }

  Result<Element> Next();
  // Next(), failing with kInvalidArgument "<what>: expected tag 0x.., found 0x.." otherwise.
  Result<Element> Expect(std::uint8_t tag, std::string_view what);

 private:
  ByteSpan data_;
};

// Dotted form of an OBJECT IDENTIFIER's contents octets ("?" when malformed), for messages.
std::string OidToString(ByteSpan contents);

}  // namespace qseal::formats::cades::detail
