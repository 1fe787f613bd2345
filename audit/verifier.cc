#include "audit/verifier.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "audit/detail/checkpoint_key.h"
#include "audit/detail/record.h"

namespace qseal::audit {
namespace {

using detail::ParsedLine;

std::string Str(std::uint64_t v) { return std::to_string(v); }

Result<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return UnavailableError("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Splits into complete lines; `torn` receives a last piece without its newline.
std::vector<std::string_view> SplitLines(std::string_view text, std::string_view* torn) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      // Zeros after the last record are space the writer reserved ahead, not a torn record.
      if (text.find_first_not_of('\0') != std::string_view::npos) *torn = text;
      break;
    }
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  return lines;
}

class Verifier {
 public:
  Verifier(const VerifyOptions& options, const detail::CheckpointKey* key)
      : options_(options), key_(key) {}

  VerifyReport Run(const std::vector<std::pair<std::uint64_t, std::string>>& segments) {
    for (std::size_t i = 0; i < segments.size(); ++i) {
      bool last = i + 1 == segments.size();
      if (!Segment(segments[i].first, segments[i].second, last)) return report_;
      report_.segments++;
    }
    if (options_.expect_seq > last_seq_) {
      Fail(last_seq_ + 1, segments.back().second,
           "the log ends at seq " + Str(last_seq_) + " but seq " + Str(options_.expect_seq) +
               " is expected: the tail was truncated or the log replaced by an older copy");
      return report_;
    }
    report_.ok = true;
    report_.last_seq = last_seq_;
    report_.head_hash = last_hash_;
    report_.last_checkpoint_seq = checkpoints_.empty() ? 0 : checkpoints_.back();
    report_.checkpoints = checkpoints_.size();
    report_.unprotected = last_seq_ - report_.last_checkpoint_seq;
    if (checkpoints_.empty()) report_.unprotected = report_.records;
    return report_;
  }

 private:
  bool Segment(std::uint64_t first, const std::string& name, bool last) {
    Result<std::string> text = ReadAll(options_.dir + "/" + name);
    if (!text.ok()) return Fail(first, name, text.status().message());
    std::string_view torn;
    std::vector<std::string_view> raw = SplitLines(*text, &torn);
    std::vector<ParsedLine> lines;
    for (std::string_view l : raw) {
      Result<ParsedLine> p = detail::ParseLine(l);
      if (!p.ok()) {
        std::uint64_t at = lines.empty() ? first : lines.back().seq + 1;
        // A write torn by a crash can leave damage before the end of a segment; it is
        // acceptable only where the next segment's header says the chain ended before it
        // (Link checks that), so in the last segment it is always an error.
        if (!last && !lines.empty()) {
          torn = l;
          break;
        }
        return Fail(at, name,
                    "the record after seq " + Str(at - 1) +
                        " is damaged: " + std::string(p.status().message()));
      }
      lines.push_back(std::move(*p));
    }
    if (lines.empty()) return Fail(first, name, "the segment holds no record");
    const ParsedLine& header = lines.front();
    if (header.event != "segment_start" || !header.prev_seq) {
      return Fail(first, name, "the segment does not start with its header record");
    }
    if (header.seq != first) {
      return Fail(first, name,
                  "the file name says the segment starts at seq " + Str(first) +
                      ", its header is seq " + Str(header.seq));
    }
    if (!header.hash_ok) return Fail(first, name, "hash mismatch: the header record was altered");
    std::uint64_t prev_seq = *header.prev_seq;
    if (!started_) {
      // The anchor: the first segment verified trusts what its header says came before it.
      started_ = true;
      report_.first_seq = first;
      last_seq_ = prev_seq;
      last_hash_ = header.prev;
      if (prev_seq == 0 && header.prev != detail::kZeroHash) {
        return Fail(first, name, "the first segment names no previous record but a prev hash");
      }
    } else if (!Link(prev_seq, header, name)) {
      return false;
    }
    previous_ = {};
    previous_name_ = name;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const ParsedLine& p = lines[i];
      if (p.seq != last_seq_ + 1) {
        std::uint64_t expected = last_seq_ + 1;
        bool later = std::any_of(lines.begin() + static_cast<std::ptrdiff_t>(i), lines.end(),
                                 [&](const ParsedLine& q) { return q.seq == expected; });
        if (later) {
          return Fail(expected, name,
                      "records out of order: seq " + Str(p.seq) + " comes where seq " +
                          Str(expected) + " belongs (records were moved)");
        }
        if (p.seq > expected) {
          return Fail(expected, name,
                      "sequence gap: seq " + Str(expected) +
                          (p.seq - 1 > expected ? ".." + Str(p.seq - 1) : std::string()) +
                          " missing (records were removed)");
        }
        return Fail(expected, name,
                    "sequence broken: seq " + Str(p.seq) + " comes after seq " + Str(last_seq_));
      }
      if (!p.hash_ok) return Fail(p.seq, name, "hash mismatch: the record was altered");
      if (p.prev != last_hash_) {
        return Fail(p.seq, name,
                    "chain broken: prev is not the hash of seq " + Str(last_seq_) +
                        " (a record before it was altered and re-hashed, or records spliced)");
      }
      if (i > 0 && p.event == "segment_start") {
        return Fail(p.seq, name, "a segment header inside a segment");
      }
      if (p.event == "checkpoint" && !Checkpoint(p, name)) return false;
      if (options_.expect_seq != 0 && p.seq == options_.expect_seq &&
          !options_.expect_hash.empty() && p.hash != options_.expect_hash) {
        return Fail(p.seq, name,
                    "head mismatch: seq " + Str(p.seq) +
                        " is not the record expected (the log was replaced by another copy)");
      }
      previous_.push_back({p.seq, p.hash});
      last_seq_ = p.seq;
      last_hash_ = p.hash;
      report_.records++;
    }
    if (!torn.empty()) {
      if (last) {
        return Fail(last_seq_ + 1, name,
                    "truncated: the record after seq " + Str(last_seq_) + " is incomplete");
      }
      torn_in_previous_ = true;
    } else {
      torn_in_previous_ = false;
    }
    return true;
  }

  // A later segment's header must name a record of the previous segment: its last one, or an
  // earlier one when the writer failed and abandoned what followed (those were never durable).
  bool Link(std::uint64_t prev_seq, const ParsedLine& header, const std::string& name) {
    if (prev_seq > last_seq_) {
      return Fail(last_seq_ + 1, previous_name_,
                  "the segment ends at seq " + Str(last_seq_) + " but " + name +
                      " continues after seq " + Str(prev_seq) + ": seq " + Str(last_seq_ + 1) +
                      ".." + Str(prev_seq) +
                      " missing (the segment was truncated or replaced by an older copy)");
    }
    auto it = std::find_if(previous_.begin(), previous_.end(),
                           [&](const auto& r) { return r.first == prev_seq; });
    if (it == previous_.end() || it->second != header.prev) {
      return Fail(header.seq, name,
                  "the header names seq " + Str(prev_seq) + " of " + previous_name_ +
                      " with another hash (that segment was altered or replaced)");
    }
    std::uint64_t abandoned = last_seq_ - prev_seq;
    report_.abandoned += abandoned + (torn_in_previous_ ? 1 : 0);
    report_.records -= abandoned;
    while (!checkpoints_.empty() && checkpoints_.back() > prev_seq) checkpoints_.pop_back();
    last_seq_ = prev_seq;
    last_hash_ = header.prev;
    return true;
  }

  bool Checkpoint(const ParsedLine& p, const std::string& name) {
    std::uint64_t covered_from = checkpoints_.empty() ? report_.first_seq : checkpoints_.back() + 1;
    if (!p.head_seq || *p.head_seq != p.seq - 1) {
      return Fail(p.seq, name, "bad checkpoint: it does not name the record before it");
    }
    if (!options_.skip_signatures) {
      if (p.key_id != key_->key_id()) {
        return Fail(p.seq, name, "bad checkpoint: signed by an unknown key " + p.key_id);
      }
      if (!key_->Verify(detail::CheckpointMessage(p.seq, p.time, *p.head_seq, p.prev), p.sig)) {
        return Fail(p.seq, name,
                    "bad checkpoint signature: the checkpoint was forged, or seq " +
                        Str(covered_from) + ".." + Str(p.seq - 1) +
                        " were altered and the chain re-hashed");
      }
    }
    checkpoints_.push_back(p.seq);
    return true;
  }

  bool Fail(std::uint64_t seq, const std::string& segment, std::string reason) {
    report_.ok = false;
    report_.first_bad_seq = seq;
    report_.segment = segment;
    report_.reason = std::move(reason);
    report_.last_seq = last_seq_;
    report_.head_hash = last_hash_;
    return false;
  }

  const VerifyOptions& options_;
  const detail::CheckpointKey* key_;
  VerifyReport report_;
  bool started_ = false;
  std::uint64_t last_seq_ = 0;
  std::string last_hash_;
  std::vector<std::pair<std::uint64_t, std::string>> previous_;  // records of the last segment
  std::string previous_name_;
  bool torn_in_previous_ = false;
  std::vector<std::uint64_t> checkpoints_;
};

}  // namespace

Result<std::vector<std::pair<std::uint64_t, std::string>>> ListSegments(const std::string& dir) {
  std::error_code ec;
  std::vector<std::pair<std::uint64_t, std::string>> out;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (std::optional<std::uint64_t> seq = detail::ParseSegmentName(name)) {
      out.emplace_back(*seq, name);
    }
  }
  if (ec) return InvalidArgumentError("cannot list " + dir + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

Result<std::vector<std::pair<std::uint64_t, std::string>>> SegmentsFrom(const std::string& dir,
                                                                        std::uint64_t from) {
  QSEAL_ASSIGN_OR_RETURN(auto all, ListSegments(dir));
  if (from == 0) return all;
  auto it = std::find_if(all.begin(), all.end(), [&](const auto& s) { return s.first == from; });
  if (it == all.end()) return InvalidArgumentError("no segment starts at seq " + Str(from));
  return std::vector<std::pair<std::uint64_t, std::string>>(it, all.end());
}

}  // namespace

Result<VerifyReport> VerifyLog(const VerifyOptions& options) {
  std::optional<detail::CheckpointKey> key;
  if (!options.skip_signatures) {
    if (options.public_key_file.empty())
      return InvalidArgumentError("the checkpoint public key is required to verify signatures");
    QSEAL_ASSIGN_OR_RETURN(key, detail::CheckpointKey::LoadPublic(options.public_key_file));
  }
  QSEAL_ASSIGN_OR_RETURN(auto segments, SegmentsFrom(options.dir, options.from_segment));
  if (segments.empty()) {
    VerifyReport r;
    r.reason = "no audit segment in " + options.dir;
    return r;
  }
  Verifier v(options, key ? &*key : nullptr);
  return v.Run(segments);
}

Status ReadRecords(const std::string& dir, std::uint64_t from_segment,
                   const std::function<bool(std::string_view line)>& line) {
  QSEAL_ASSIGN_OR_RETURN(auto segments, SegmentsFrom(dir, from_segment));
  for (std::size_t i = 0; i < segments.size(); ++i) {
    // Records after the one the next segment's header names were abandoned (never durable).
    std::uint64_t limit = UINT64_MAX;
    if (i + 1 < segments.size()) {
      std::ifstream next(dir + "/" + segments[i + 1].second, std::ios::binary);
      std::string first;
      std::getline(next, first);
      Result<ParsedLine> header = detail::ParseLine(first);
      if (header.ok() && header->prev_seq) limit = *header->prev_seq;
    }
    QSEAL_ASSIGN_OR_RETURN(std::string text, ReadAll(dir + "/" + segments[i].second));
    std::string_view torn;
    for (std::string_view l : SplitLines(text, &torn)) {
      Result<ParsedLine> p = detail::ParseLine(l);
      if (!p.ok() || p->seq > limit) continue;
      if (!line(l)) return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace qseal::audit
