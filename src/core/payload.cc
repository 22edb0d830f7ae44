#include "core/payload.h"

#include <simdjson.h>

#include "core/defaults.h"
#include "core/json_types.h"

#include <string>

namespace aidb::payload {
namespace {

using json::TypeName;

Status ParseError(simdjson::error_code err) {
  std::string m;
  switch (err) {
    case simdjson::EMPTY: m = "payload is not valid JSON: empty document"; break;
    case simdjson::DEPTH_ERROR:
      m = "payload is not valid JSON: nested deeper than " +
          std::to_string(simdjson::DEFAULT_MAX_DEPTH) + " levels";
      break;
    case simdjson::TAPE_ERROR:
      m = "payload is not valid JSON: improper structure (missing or extra commas, "
          "brackets or keys, or text after the object)";
      break;
    case simdjson::MEMALLOC: return Status::NoMemory("payload: out of memory while parsing");
    default:
      m = "payload is not valid JSON: ";
      m += simdjson::error_message(err);
      break;
  }
  return Status::InvalidArgument(m);
}

Status CanonicalizeWith(simdjson::dom::parser& parser, std::string_view json, std::string* out) {
  // parse(buf, len) copies into the parser's own padded buffer (reused across
  // calls), so `json` needs no padding.
  simdjson::dom::element root;
  simdjson::error_code err = parser.parse(json.data(), json.size()).get(root);
  if (err) return ParseError(err);
  if (root.type() != simdjson::dom::element_type::OBJECT) {
    return Status::InvalidArgument(std::string("payload must be a JSON object, got ") +
                                   TypeName(root.type()));
  }
  *out = simdjson::minify(root);
  return Status::OK();
}

}  // namespace

Status Canonicalize(std::string_view json, std::string* out) {
  if (json.size() > kMaxPayloadBytes) {
    return Status::InvalidArgument("payload is too large: " + std::to_string(json.size()) +
                                   " bytes (limit " + std::to_string(kMaxPayloadBytes) + ")");
  }
  if (json.size() > kThreadParserMaxBytes) {
    simdjson::dom::parser parser;
    return CanonicalizeWith(parser, json, out);
  }
  thread_local simdjson::dom::parser parser;
  return CanonicalizeWith(parser, json, out);
}

}  // namespace aidb::payload
