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

// Numbers of this many digits or more take the slow path: near and past the
// 64-bit ranges a simdjson version may hold an integer as a double, which
// prints otherwise (3.0.1 rejects or keeps them; this is a guard).
constexpr int kPlainIntegerDigits = 19;

// True when `json`, which simdjson has parsed, is already what
// simdjson::minify prints for it, so the text can be kept as it is: no
// white space outside strings, no escape sequence in a string (minify
// prints them decoded or re-escaped), and every number a plain integer of
// fewer than kPlainIntegerDigits digits that is not -0 (fractions and
// exponents print in simdjson's own float format). Anything else returns
// false, never a wrong true: tests/core/payload_test.cc compares the
// result with minify over generated documents.
bool AlreadyMinified(std::string_view json) {
  // Nothing before or after the object (white space, a byte order mark).
  if (json.size() < 2 || json.front() != '{' || json.back() != '}') return false;
  bool in_string = false;
  int digits = -1;  // digits of the number being read, -1 outside numbers
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '"') {
        in_string = false;
      } else if (c == '\\') {
        return false;
      }
      continue;
    }
    if (c >= '0' && c <= '9') {
      if (digits < 0) digits = 0;
      if (++digits >= kPlainIntegerDigits) return false;
      continue;
    }
    if (digits >= 0 && (c == '.' || c == 'e' || c == 'E')) return false;
    digits = -1;
    switch (c) {
      case '"': in_string = true; break;
      case '-':
        if (i + 1 < json.size() && json[i + 1] == '0') return false;
        digits = 0;
        break;
      case ' ':
      case '\t':
      case '\n':
      case '\r': return false;
      default:  // {}[]:, and the letters of true, false, null
        break;
    }
  }
  return true;
}

Status CanonicalizeWith(simdjson::dom::parser& parser, std::string_view json, std::string* out) {
  // parse(buf, len) copies into the parser's own padded buffer (reused across
  // calls), so `json` needs no padding.
  simdjson::dom::element root;
  simdjson::error_code err = parser.parse(json.data(), json.size()).get(root);
  std::string widened;  // integers past 64 bits, as doubles
  if (err == simdjson::NUMBER_ERROR && json::WidenIntegers(json, &widened)) {
    json = widened;
    err = parser.parse(json.data(), json.size()).get(root);
  }
  if (err) return ParseError(err);
  if (root.type() != simdjson::dom::element_type::OBJECT) {
    return Status::InvalidArgument(std::string("payload must be a JSON object, got ") +
                                   TypeName(root.type()));
  }
  // Most payloads arrive minified: keeping their text saves printing them
  // again (most of this function's time for small objects).
  if (AlreadyMinified(json)) {
    out->assign(json);
  } else {
    *out = simdjson::minify(root);
  }
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
