// How the HTTP API turns a client's X-Filename into the name qseal stores (metadata, later an
// outbox file name). The watched folder's names (ignored entries, claimed names and their
// suffixes) live in publish/folder_names.h, beside the outbox that writes them. Pure functions;
// thread-safe. Kept apart so the fuzz target tests/fuzz/names_fuzzer can check their guarantees.
#pragma once

#include <string>
#include <string_view>

namespace qseal::ingest::detail {

// The API's X-Filename: only the last path component, control characters dropped, "." and ".."
// refused (empty), at most publish::kMaxClaimedNameBytes bytes. Never contains '/', '\\' or a NUL.
std::string SanitizeClientName(std::string_view raw);

}  // namespace qseal::ingest::detail
