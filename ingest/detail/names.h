// How the doors turn names that outsiders chose into names qseal stores and writes: the HTTP API's
// X-Filename (metadata, later an outbox file name) and a watched folder's inbox entries (claimed
// under processing/, published under outbox/ and failed/). Pure functions; thread-safe. Kept apart
// so the fuzz target tests/fuzz/names_fuzzer can check their guarantees.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qseal::ingest::detail {

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

// The API's X-Filename: only the last path component, control characters dropped, "." and ".."
// refused (empty), at most kMaxClaimedNameBytes bytes. Never contains '/', '\\' or a NUL.
std::string SanitizeClientName(std::string_view raw);

}  // namespace qseal::ingest::detail
