// Wall-clock time as Unix nanoseconds, and its RFC 3339 rendering.
#pragma once

#include <cstdint>
#include <string>

namespace aidb {

// CLOCK_REALTIME in nanoseconds since the Unix epoch.
int64_t UnixNowNs();

// RFC 3339 UTC with nanoseconds, e.g. "2026-11-25T10:00:00.123456789Z".
std::string FormatRfc3339(int64_t unix_ns);

}  // namespace aidb
