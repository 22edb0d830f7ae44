// Point payloads: JSON objects, stored as their minified text.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace aidb::payload {

inline constexpr size_t kMaxPayloadBytes = 16u << 20;  // 16 MiB

// Checks that `json` is one valid JSON object (nothing but white space after
// it) of at most kMaxPayloadBytes, and writes its minified form into *out.
// InvalidArgument with a clear message otherwise ("payload is not valid JSON:
// ...", "payload must be a JSON object, got array", ...).
Status Canonicalize(std::string_view json, std::string* out);

}  // namespace aidb::payload
