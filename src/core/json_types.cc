#include "core/json_types.h"

#include <nlohmann/json.hpp>

namespace aidb::json {

bool WidenIntegers(std::string_view json, std::string* out) {
  // nlohmann's reader turns an integer too large for 64 bits into a double
  // and refuses a number out of the double range; ordered_json keeps the
  // members in their order. Its writer recurses once per level: nothing
  // deeper than simdjson's own limit is written.
  bool too_deep = false;
  const nlohmann::ordered_json doc = nlohmann::ordered_json::parse(
      json.begin(), json.end(),
      [&](int depth, nlohmann::ordered_json::parse_event_t, nlohmann::ordered_json&) {
        too_deep |= depth > static_cast<int>(simdjson::DEFAULT_MAX_DEPTH);
        return true;
      },
      /*allow_exceptions=*/false);
  if (doc.is_discarded() || too_deep) return false;
  // The reader checked the strings' UTF-8: the writer has nothing to replace.
  *out = doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return true;
}

}  // namespace aidb::json
