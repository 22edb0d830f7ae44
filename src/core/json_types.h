// Small helpers shared by the simdjson users in core (payloads, filters).
#pragma once

#include <simdjson.h>

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

}  // namespace aidb::json
