// Small helpers shared by the simdjson users in core (payloads, filters).
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

namespace aidb::json {

// The JSON type name of a DOM element type, for error messages.
inline const char* TypeName(simdjson::dom::element_type t) {
  using T = simdjson::dom::element_type;
  switch (t) {
    case T::OBJECT: return "object";
    case T::ARRAY: return "array";
    case T::STRING: return "string";
    case T::INT64:
    case T::UINT64:
    case T::DOUBLE: return "number";
    case T::BOOL: return "boolean";
    case T::NULL_VALUE: return "null";
  }
  return "unknown";
}

// Integers past the 64-bit ranges are valid JSON, but simdjson rejects them
// (NUMBER_ERROR), where the original server's reader took them as doubles.
// Writes `json` again into *out with each such number as a double (the
// nearest one; the key order is kept, of a key given twice only the last
// value), for a caller to parse again after NUMBER_ERROR. False, *out
// unspecified, when the text is not valid JSON that way either (a number
// out of the double range, or another error).
bool WidenIntegers(std::string_view json, std::string* out);

}  // namespace aidb::json
