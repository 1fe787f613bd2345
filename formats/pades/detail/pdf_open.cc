#include "formats/pades/detail/pdf_open.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include <qpdf/InputSource.hh>
#include <qpdf/QPDFExc.hh>

namespace qseal::formats::pades::detail {
namespace {

constexpr std::string_view kHeader = "%PDF-";
constexpr std::size_t kTailWindow = 1024;

std::string_view View(ByteSpan b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

bool IsPdfSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\0';
}

// qpdf's input over PdfBytes::read_at, with a read-ahead window so that qpdf's many small reads
// (the tokenizer reads a few bytes at a time) cost one callback per window, and reads larger than
// the window go straight to the callback. qpdf is single-threaded per QPDF object, so is this.
class ReadAtInputSource final : public InputSource {
 public:
  explicit ReadAtInputSource(PdfBytes pdf) : pdf_(std::move(pdf)) {}

  std::string const& getName() const override { return name_; }
  qpdf_offset_t tell() override { return pos_; }
  void rewind() override { pos_ = 0; }

  void seek(qpdf_offset_t offset, int whence) override {
    qpdf_offset_t base = whence == SEEK_SET   ? 0
                         : whence == SEEK_CUR ? pos_
                                              : static_cast<qpdf_offset_t>(pdf_.size);
    if (base + offset < 0) throw std::runtime_error("document: seek before the first byte");
    pos_ = base + offset;
  }

  void unreadCh(char) override {
    if (pos_ > 0) --pos_;
  }

  size_t read(char* out, size_t length) override {
    last_offset = pos_;
    std::size_t done = 0;
    while (done < length && static_cast<std::uint64_t>(pos_) < pdf_.size) {
      auto at = static_cast<std::uint64_t>(pos_);
      auto* dest = reinterpret_cast<std::uint8_t*>(out) + done;
      std::size_t want = length - done;
      std::size_t n = 0;
      if (at >= window_start_ && at < window_start_ + window_.size()) {
        n = std::min<std::uint64_t>(want, window_start_ + window_.size() - at);
        std::memcpy(dest, window_.data() + (at - window_start_), n);
      } else if (want >= kWindowBytes) {
        n = Fetch(at, std::span<std::uint8_t>(dest, want));
      } else {
        window_.resize(kWindowBytes);
        window_.resize(Fetch(at, window_));
        window_start_ = at;
        if (window_.empty()) break;
        continue;
      }
      if (n == 0) break;
      done += n;
      pos_ += static_cast<qpdf_offset_t>(n);
    }
    return done;
  }

  qpdf_offset_t findAndSkipNextEOL() override {
    // Moves past the next end-of-line sequence (any run of CR and LF) and returns where it began;
    // at the end of the document without one, returns the end.
    char ch = 0;
    for (;;) {
      if (read(&ch, 1) == 0) return pos_;
      if (ch == '\r' || ch == '\n') break;
    }
    qpdf_offset_t eol = pos_ - 1;
    while (read(&ch, 1) == 1) {
      if (ch != '\r' && ch != '\n') {
        unreadCh(ch);
        break;
      }
    }
    return eol;
  }

 private:
  static constexpr std::size_t kWindowBytes = 64 << 10;

  std::size_t Fetch(std::uint64_t offset, std::span<std::uint8_t> into) {
    Result<std::size_t> n = pdf_.read_at(offset, into);
    if (!n.ok()) throw std::runtime_error("reading the document: " + n.status().message());
    return *n;
  }

  PdfBytes pdf_;
  std::string name_ = "document";
  qpdf_offset_t pos_ = 0;
  std::vector<std::uint8_t> window_;
  std::uint64_t window_start_ = 0;
};

}  // namespace

PdfBytes PdfBytes::InMemory(ByteSpan pdf) {
  PdfBytes b;
  b.size = pdf.size();
  b.read_at = [pdf](std::uint64_t offset, std::span<std::uint8_t> buffer) -> Result<std::size_t> {
    if (offset >= pdf.size()) return std::size_t{0};
    std::size_t n = std::min<std::uint64_t>(buffer.size(), pdf.size() - offset);
    std::memcpy(buffer.data(), pdf.data() + offset, n);
    return n;
  };
  return b;
}

Result<Bytes> PdfBytes::ReadRange(std::uint64_t offset, std::size_t length) const {
  Bytes out(
      static_cast<std::size_t>(std::min<std::uint64_t>(length, offset < size ? size - offset : 0)));
  std::size_t done = 0;
  while (done < out.size()) {
    QSEAL_ASSIGN_OR_RETURN(std::size_t n,
                           read_at(offset + done, std::span<std::uint8_t>(out).subspan(done)));
    if (n == 0) return DataLossError("the document is shorter than its stated size");
    done += n;
  }
  return out;
}

Result<std::uint64_t> LastStartXref(const PdfBytes& pdf) {
  std::uint64_t from = pdf.size > kTailWindow ? pdf.size - kTailWindow : 0;
  QSEAL_ASSIGN_OR_RETURN(Bytes tail, pdf.ReadRange(from, kTailWindow));
  std::string_view text = View(tail);
  std::size_t at = text.rfind("startxref");
  if (at == std::string_view::npos) {
    return InvalidArgumentError("no startxref in the last 1 KiB (truncated or not a PDF)");
  }
  std::size_t i = at + std::strlen("startxref");
  while (i < text.size() && IsPdfSpace(text[i])) ++i;
  std::uint64_t value = 0;
  std::size_t digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 19; ++i, ++digits) {
    value = value * 10 + static_cast<std::uint64_t>(text[i] - '0');
  }
  if (digits == 0 || value >= pdf.size) {
    return InvalidArgumentError("startxref does not point into the file");
  }
  return value;
}

Result<bool> IsXrefStream(const PdfBytes& pdf, std::uint64_t offset) {
  if (offset >= pdf.size) return InvalidArgumentError("xref offset beyond the end of the file");
  // Whitespace before the keyword is tolerated; 256 bytes of it is more than any writer puts.
  QSEAL_ASSIGN_OR_RETURN(Bytes window, pdf.ReadRange(offset, 256));
  std::string_view text = View(window);
  std::size_t i = 0;
  while (i < text.size() && IsPdfSpace(text[i])) ++i;
  if (text.substr(i, 4) == "xref") return false;
  if (i < text.size() && text[i] >= '0' && text[i] <= '9') return true;
  return InvalidArgumentError("startxref points at neither an xref table nor an xref stream");
}

Result<std::unique_ptr<QPDF>> OpenPdf(const PdfBytes& pdf) {
  // qpdf tolerates a header after leading junk and shifts every offset by it; an update appended
  // to such a file would have to repeat that shift, so only a header at byte 0 is accepted.
  QSEAL_ASSIGN_OR_RETURN(Bytes head, pdf.ReadRange(0, kHeader.size()));
  if (View(head) != kHeader) {
    return InvalidArgumentError("not a PDF: the document does not start with %PDF-");
  }
  QSEAL_RETURN_IF_ERROR(LastStartXref(pdf).status());
  return CatchQpdf("PDF structure is broken", [&]() -> Result<std::unique_ptr<QPDF>> {
    auto q = std::make_unique<QPDF>();
    q->setSuppressWarnings(true);
    q->setAttemptRecovery(false);
    try {
      q->processInputSource(std::make_shared<ReadAtInputSource>(pdf));
    } catch (const QPDFExc& e) {
      if (e.getErrorCode() != qpdf_e_password) throw;
      return InvalidArgumentError(
          "encrypted PDF (a user password is set): qseal does not seal encrypted documents");
    }
    if (q->isEncrypted()) {
      return InvalidArgumentError("encrypted PDF: qseal does not seal encrypted documents");
    }
    // Walking the page tree resolves the catalog and every page: a broken object there throws
    // now rather than half-way through writing the update.
    if (q->getAllPages().empty()) return InvalidArgumentError("PDF has no pages");
    if (q->anyWarnings()) {
      return InvalidArgumentError(std::string("PDF structure is damaged: ") +
                                  q->getWarnings().front().what());
    }
    return q;
  });
}

}  // namespace qseal::formats::pades::detail
