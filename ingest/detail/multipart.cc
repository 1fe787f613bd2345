#include "ingest/detail/multipart.h"

#include <algorithm>
#include <cctype>

namespace qseal::ingest::detail {

namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsTokenChar(char c) {
  auto u = static_cast<unsigned char>(c);
  if (std::isalnum(u) != 0) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 2046 bchars.
bool IsBoundaryChar(char c) {
  auto u = static_cast<unsigned char>(c);
  if (std::isalnum(u) != 0) return true;
  return std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

}  // namespace

Result<std::string> MultipartBoundary(std::string_view content_type) {
  std::size_t semi = content_type.find(';');
  if (!IEquals(Trim(content_type.substr(0, semi)), "multipart/mixed")) {
    return InvalidArgumentError("Content-Type must be multipart/mixed");
  }
  std::string boundary;
  bool found = false;
  std::string_view rest =
      semi == std::string_view::npos ? std::string_view() : content_type.substr(semi + 1);
  while (!rest.empty()) {
    std::size_t eq = rest.find('=');
    if (eq == std::string_view::npos) break;
    std::string_view name = Trim(rest.substr(0, eq));
    rest.remove_prefix(eq + 1);
    std::string value;
    if (!rest.empty() && rest.front() == '"') {
      rest.remove_prefix(1);
      std::size_t i = 0;
      bool closed = false;
      for (; i < rest.size(); ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) {
          value += rest[++i];
        } else if (rest[i] == '"') {
          closed = true;
          break;
        } else {
          value += rest[i];
        }
      }
      if (!closed) return InvalidArgumentError("unterminated quoted parameter in Content-Type");
      rest.remove_prefix(i + 1);
      std::size_t next = rest.find(';');
      if (!Trim(rest.substr(0, next)).empty()) {
        return InvalidArgumentError("malformed Content-Type parameters");
      }
      rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
    } else {
      std::size_t next = rest.find(';');
      value = std::string(Trim(rest.substr(0, next)));
      rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
    }
    if (IEquals(name, "boundary")) {
      if (found) return InvalidArgumentError("two boundary parameters in Content-Type");
      found = true;
      boundary = std::move(value);
    }
  }
  if (!found) return InvalidArgumentError("multipart/mixed without a boundary parameter");
  if (boundary.empty() || boundary.size() > 70 || boundary.back() == ' ' ||
      !std::all_of(boundary.begin(), boundary.end(), IsBoundaryChar)) {
    return InvalidArgumentError("invalid multipart boundary (1 to 70 characters of RFC 2046)");
  }
  return boundary;
}

std::string_view PartHeader::Get(std::string_view name) const {
  for (const auto& [n, v] : fields) {
    if (IEquals(n, name)) return v;
  }
  return {};
}

std::size_t PartHeader::Count(std::string_view name) const {
  return static_cast<std::size_t>(std::count_if(
      fields.begin(), fields.end(), [name](const auto& f) { return IEquals(f.first, name); }));
}

MultipartParser::MultipartParser(std::string boundary, MultipartLimits limits,
                                 MultipartHandler* handler)
    : delimiter_("\r\n--" + boundary), limits_(limits), handler_(handler) {
  // The first boundary line may open the body: seen as if a line break came before it.
  buffer_ = "\r\n";
}

Status MultipartParser::Fail(Status s) {
  state_ = State::kError;
  error_ = s;
  buffer_.clear();
  return s;
}

Status MultipartParser::Feed(ByteSpan chunk) {
  if (state_ == State::kError) return error_;
  if (state_ == State::kDone) return Status::Ok();  // the epilogue is ignored
  buffer_.append(AsChars(chunk));
  bool progressed = true;
  while (progressed && state_ != State::kDone && state_ != State::kError) {
    progressed = false;
    Status s = Step(&progressed);
    if (!s.ok()) return Fail(std::move(s));
  }
  if (state_ == State::kDone) buffer_.clear();
  return Status::Ok();
}

Status MultipartParser::Step(bool* progressed) {
  switch (state_) {
    case State::kPreamble: {
      std::size_t at = buffer_.find(delimiter_);
      if (at == std::string::npos) {
        std::size_t keep = std::min(buffer_.size(), delimiter_.size() - 1);
        preamble_bytes_ += buffer_.size() - keep;
        buffer_.erase(0, buffer_.size() - keep);
        if (preamble_bytes_ > limits_.max_preamble_bytes) {
          return InvalidArgumentError("no multipart boundary at the start of the body");
        }
        return Status::Ok();
      }
      preamble_bytes_ += at;
      if (preamble_bytes_ > limits_.max_preamble_bytes) {
        return InvalidArgumentError("no multipart boundary at the start of the body");
      }
      buffer_.erase(0, at + delimiter_.size());
      state_ = State::kAfterDelimiter;
      *progressed = true;
      return Status::Ok();
    }
    case State::kAfterDelimiter: {
      if (buffer_.size() < 2) return Status::Ok();
      if (buffer_.compare(0, 2, "--") == 0) {
        state_ = State::kDone;
        *progressed = true;
        return Status::Ok();
      }
      std::size_t eol = buffer_.find("\r\n");
      std::size_t scan = eol;
      if (eol == std::string::npos) {
        // A CR at the end may be the start of the line break still to come.
        scan = buffer_.size() - (buffer_.back() == '\r' ? 1 : 0);
      }
      for (std::size_t i = 0; i < scan; ++i) {
        if (buffer_[i] != ' ' && buffer_[i] != '\t') {
          return InvalidArgumentError("malformed multipart boundary line");
        }
      }
      // The padding limit counts padding only (never the CR of a line break still arriving), so
      // the outcome is the same however the body is cut into chunks.
      if ((eol == std::string::npos ? scan : eol) > 256) {
        return InvalidArgumentError("malformed multipart boundary line");
      }
      if (eol == std::string::npos) return Status::Ok();
      if (parts_ >= limits_.max_parts) {
        return ResourceExhaustedError("more than " + std::to_string(limits_.max_parts) +
                                      " parts in one batch");
      }
      buffer_.erase(0, eol + 2);
      ++parts_;
      state_ = State::kHeader;
      *progressed = true;
      return Status::Ok();
    }
    case State::kHeader: {
      std::size_t end;
      std::size_t skip;
      if (buffer_.compare(0, 2, "\r\n") == 0) {
        end = 0;
        skip = 2;
      } else {
        end = buffer_.find("\r\n\r\n");
        if (end == std::string::npos) {
          // The end can still start in the last 3 bytes: refuse only what is over the limit
          // whatever comes next, so the outcome does not depend on the chunking.
          if (buffer_.size() > limits_.max_part_header_bytes + 3) {
            return InvalidArgumentError("part header larger than " +
                                        std::to_string(limits_.max_part_header_bytes) + " bytes");
          }
          return Status::Ok();
        }
        if (end > limits_.max_part_header_bytes) {
          return InvalidArgumentError("part header larger than " +
                                      std::to_string(limits_.max_part_header_bytes) + " bytes");
        }
        skip = 4;
      }
      PartHeader header;
      std::string_view block(buffer_.data(), end);
      while (!block.empty()) {
        std::size_t eol = block.find("\r\n");
        std::string_view line = block.substr(0, eol);
        block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 2);
        std::size_t colon = line.find(':');
        std::string_view name = line.substr(0, colon);
        if (colon == std::string_view::npos || name.empty() ||
            !std::all_of(name.begin(), name.end(), IsTokenChar)) {
          return InvalidArgumentError("malformed part header field");
        }
        std::string_view value = Trim(line.substr(colon + 1));
        if (std::any_of(value.begin(), value.end(), [](char c) {
              auto u = static_cast<unsigned char>(c);
              return (u < 0x20 && c != '\t') || u == 0x7f;
            })) {
          return InvalidArgumentError("control character in a part header field");
        }
        header.fields.emplace_back(std::string(name), std::string(value));
      }
      buffer_.erase(0, end + skip);
      state_ = State::kBody;
      *progressed = true;
      return handler_->OnPartBegin(header);
    }
    case State::kBody: {
      std::size_t at = buffer_.find(delimiter_);
      if (at == std::string::npos) {
        // Keep back what could be the start of a delimiter split across chunks.
        if (buffer_.size() < delimiter_.size()) return Status::Ok();
        std::size_t safe = buffer_.size() - (delimiter_.size() - 1);
        Status s = handler_->OnPartData(AsBytes(std::string_view(buffer_.data(), safe)));
        buffer_.erase(0, safe);
        return s;
      }
      if (at > 0) {
        QSEAL_RETURN_IF_ERROR(handler_->OnPartData(AsBytes(std::string_view(buffer_.data(), at))));
      }
      buffer_.erase(0, at + delimiter_.size());
      state_ = State::kAfterDelimiter;
      *progressed = true;
      return handler_->OnPartEnd();
    }
    case State::kDone:
    case State::kError:
      return Status::Ok();
  }
  return Status::Ok();
}

Status MultipartParser::Finish() {
  if (state_ == State::kError) return error_;
  if (state_ != State::kDone) {
    return Fail(InvalidArgumentError("multipart body ended before its closing boundary"));
  }
  return Status::Ok();
}

}  // namespace qseal::ingest::detail
