// How files are named under a watched folder root (DESIGN.md §5, "Watched folder (contract)"):
// which inbox entries are not finished yet, what a claimed name may be, and how a name that is
// taken gets a suffix. The watcher (ingest/watcher.h) claims inbox entries under these names into
// processing/; the folder outbox (publish/folder_outbox.h) publishes them under outbox/ and
// failed/ and refuses a record whose name could leave its folder. Pure functions; thread-safe.
// Kept apart so the fuzz target tests/fuzz/names_fuzzer can check their guarantees.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qseal::publish {

// Claimed names are at most this long, so that "<name>-<n>.error.json" fits in NAME_MAX (255).
inline constexpr std::size_t kMaxClaimedNameBytes = 200;

// Dot-files and *.tmp are producers' names for files not finished yet (and ours for temp files).
bool IsIgnoredName(std::string_view name);

// A record's name becomes a path component: false for anything that could leave the folder
// (empty, ".", "..", a '/', a NUL) or is longer than a claimed name can be.
bool IsSafeName(std::string_view name);

// Shortens a name longer than kMaxClaimedNameBytes, keeping a short extension and, when the name
// is valid UTF-8, whole characters. Guarantees for a non-empty `name` that is not ignored: the
// result is non-empty, at most kMaxClaimedNameBytes, not ignored, and a prefix of `name` plus
// (possibly) its extension.
std::string ShortenedName(std::string_view name);

// The k-th candidate for a free name: k = 0 gives ShortenedName(name); "invoice.pdf", 2 gives
// "invoice-2.pdf" and "README", 1 gives "README-1". For a name IsSafeName accepts (and not
// ignored) the result is safe, not ignored, and at most kMaxClaimedNameBytes + 11 bytes.
std::string SuffixedName(std::string_view name, int k);

}  // namespace qseal::publish
