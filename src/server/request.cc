#include "request.h"

#include <algorithm>
#include <cctype>
#include <cfloat>
#include <cmath>

namespace aidbd {

int HttpStatusFor(int s) {
  switch (s) {
    case AIDB_OK: return 200;
    case AIDB_INVALID_ARGUMENT:
    case AIDB_DIMENSION_MISMATCH:
    case AIDB_UNSUPPORTED: return 400;
    case AIDB_NOT_FOUND: return 404;
    case AIDB_ALREADY_EXISTS: return 409;
    case AIDB_NO_MEMORY:
    case AIDB_BUSY: return 503;
    case AIDB_IO_ERROR:
    case AIDB_CORRUPTION:
    case AIDB_MISUSE:
    case AIDB_INTERNAL:
    default: return 500;
  }
}

[[noreturn]] void Fail(int status, std::string message) {
  throw ApiError{status, std::move(message)};
}

bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

namespace {
thread_local simdjson::dom::parser body_parser;
constexpr size_t kKeepParserBytes = 1 << 20;
}  // namespace

void ReleaseLargeBodyParser() {
  if (body_parser.capacity() > kKeepParserBytes) body_parser = simdjson::dom::parser();
}

element ParseBody(HttpRequest* req, bool allow_empty) {
  simdjson::dom::parser& parser = body_parser;
  static const std::string kEmpty = "{}";
  std::string& body = req->body;
  bool blank = std::all_of(body.begin(), body.end(),
                           [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; });
  if (blank) {
    if (!allow_empty) Fail(400, "request body must be a JSON object");
    body = kEmpty;
  }
  body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  auto result = parser.parse(body.data(), body.size(), /*realloc_if_needed=*/false);
  if (result.error()) {
    Fail(400, std::string("invalid JSON: ") + simdjson::error_message(result.error()));
  }
  element root = result.value_unsafe();
  if (!root.is_object()) Fail(400, "request body must be a JSON object");
  return root;
}

uint64_t ToUint(element e, std::string_view name, uint64_t max) {
  uint64_t v = 0;
  if (e.is_uint64()) {
    v = e.get_uint64().value_unsafe();
  } else if (e.is_int64()) {
    Fail(400, "'" + std::string(name) + "' must be a non-negative integer");
  } else if (e.is_double()) {
    double d = e.get_double().value_unsafe();
    if (!(d >= 0 && d == std::floor(d) && d <= 9e15)) {
      Fail(400, "'" + std::string(name) + "' must be a non-negative integer");
    }
    v = static_cast<uint64_t>(d);
  } else {
    Fail(400, "'" + std::string(name) + "' must be a non-negative integer");
  }
  if (v > max) Fail(400, "'" + std::string(name) + "' must be at most " + std::to_string(max));
  return v;
}

bool ToBool(element e, std::string_view name) {
  if (!e.is_bool()) Fail(400, "'" + std::string(name) + "' must be true or false");
  return e.get_bool().value_unsafe();
}

std::string ToString(element e, std::string_view name) {
  if (!e.is_string()) Fail(400, "'" + std::string(name) + "' must be a string");
  return std::string(e.get_string().value_unsafe());
}

size_t AppendVector(element e, std::string_view name, std::vector<float>* out) {
  if (!e.is_array()) Fail(400, "'" + std::string(name) + "' must be an array of numbers");
  size_t n = 0;
  simdjson::dom::array arr = e.get_array().value_unsafe();
  for (element x : arr) {
    auto d = x.get_double();
    if (d.error()) Fail(400, "'" + std::string(name) + "' must be an array of numbers");
    double v = d.value_unsafe();
    if (!std::isfinite(v) || std::fabs(v) > FLT_MAX) {
      Fail(400, "'" + std::string(name) + "' components must be finite float32 numbers");
    }
    out->push_back(static_cast<float>(v));
    ++n;
  }
  if (n == 0) Fail(400, "'" + std::string(name) + "' must not be empty");
  return n;
}

std::string PayloadText(std::optional<element> e) {
  if (!e || e->is_null()) return std::string();
  if (!e->is_object()) Fail(400, "'payload' must be a JSON object or null");
  return simdjson::to_string(*e);
}

std::string CanonicalId(const std::string& id) {
  char out[37];
  ErrMsg err;
  int st = aidb_uuid_canonical(id.c_str(), out, err.out());
  if (st != AIDB_OK) Fail(400, "invalid point id '" + id + "': " + err.str(st));
  return std::string(out, 36);
}

std::string IdField(std::optional<element> e) {
  if (!e || e->is_null()) {
    char out[37];
    ErrMsg err;
    int st = aidb_uuid_generate_v2(out, err.out());
    if (st != AIDB_OK) Fail(HttpStatusFor(st), err.str(st));
    return std::string(out, 36);
  }
  if (!e->is_string()) Fail(400, "'id' must be a UUID string");
  return CanonicalId(std::string(e->get_string().value_unsafe()));
}

}  // namespace aidbd
