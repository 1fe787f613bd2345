// What the qsealctl commands that talk to the server share: exit codes for a failed exchange or an
// HTTP status, the text of a problem+json reply, and URL encoding.
//
// Pure functions; thread-safe.
#pragma once

#include <string>

#include "cli/http_client.h"
#include "common/status.h"

namespace qseal::cli::detail {

// Exit codes ordered by how much they say: a server outage dominates, then local I/O, then bad
// input. Returns the worse of the two.
int Worse(int a, int b);

// Exit code for a failed exchange (not an HTTP status): 74 for a local file error, else 69.
int ExitForTransport(const Status& s);

// Exit code for an HTTP status that is not the expected success: 0 for 2xx, 69 for 429/5xx,
// else 65.
int ExitForHttp(int status);

// "401 Unauthorized: <detail>" from an RFC 9457 problem body, or the raw body.
std::string Describe(const HttpReply& reply);

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string UrlEncode(const std::string& s);

}  // namespace qseal::cli::detail
