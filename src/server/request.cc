#include "request.h"

#include <algorithm>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "render.h"
#include "util.h"

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

std::vector<std::string_view> PathSegments(std::string_view path) {
  std::vector<std::string_view> seg;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) seg.push_back(path.substr(i, j - i));
    i = j;
  }
  return seg;
}

bool Authorized(const HttpRequest& req, const std::string& key, HttpResponse* resp) {
  if (key.empty()) return true;
  std::string_view token;
  bool have = false;
  if (const std::string* k = req.Header("api-key")) {
    token = *k;
    have = true;
  } else if (const std::string* a = req.Header("authorization")) {
    std::string_view v = *a;
    if (v.size() > 7 && Lower(v.substr(0, 7)) == "bearer ") {
      token = v.substr(7);
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      have = true;
    }
  }
  if (have && ConstantTimeEquals(token, key)) return true;
  resp->status = 401;
  resp->body = ErrorBody(have ? "invalid API key" : "missing API key");
  resp->headers.emplace_back("WWW-Authenticate", "Bearer");
  return false;
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
  if (result.error() == simdjson::NUMBER_ERROR) {
    // Integers past 64 bits: valid JSON the original server read as
    // doubles. nlohmann's reader does the same (and refuses numbers past
    // the double range); the body is parsed again as it writes it back.
    // Its writer recurses once per level: nothing deeper than simdjson's
    // limit is written.
    bool too_deep = false;
    const Json widened = Json::parse(
        body,
        [&](int depth, Json::parse_event_t, Json&) {
          too_deep |= depth > static_cast<int>(simdjson::DEFAULT_MAX_DEPTH);
          return true;
        },
        /*allow_exceptions=*/false);
    if (!widened.is_discarded() && !too_deep) {
      body = Dump(widened);
      body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
      result = parser.parse(body.data(), body.size(), /*realloc_if_needed=*/false);
    }
  }
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
  std::string s(e.get_string().value_unsafe());
  // The engine takes C strings: a "\u0000" would cut the value short there
  // ("dot\u0000x" read as "dot") instead of being refused.
  if (s.find('\0') != std::string::npos) {
    Fail(400, "'" + std::string(name) + "' must not contain NUL");
  }
  return s;
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
  // A NUL would end the C string early and let "<uuid>\u0000junk" through.
  if (id.find('\0') != std::string::npos) Fail(400, "invalid point id: it contains a NUL");
  int st = aidb_uuid_canonical(id.c_str(), out, err.out());
  // The library's message names the id already.
  if (st != AIDB_OK) Fail(400, err.str(st));
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

namespace {

// The directory a create's "wal_dir" names, resolved like the original server
// did (relative to the working directory), symlinks and "..", "." followed.
std::string ResolveDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p(dir);
  if (p.is_relative()) {
    fs::path cwd = fs::current_path(ec);
    if (ec) return std::string();
    p = cwd / p;
  }
  p = p.lexically_normal();
  if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
  fs::path real = fs::weakly_canonical(p, ec);
  if (ec) return std::string();
  return real.string();
}

}  // namespace

CreateSpec ParseCreate(element body, const std::string& wal_dir_root) {
  CreateSpec spec;
  aidb_collection_options_init(&spec.opts);
  auto name_el = Field(body, "name");
  if (!name_el) Fail(400, "'name' is required");
  spec.name = ToString(*name_el, "name");
  if (!ValidName(spec.name)) {
    Fail(400, "invalid collection name: names are 1 to 64 of A-Z a-z 0-9 _ -");
  }
  auto dim_el = FieldAny(body, {"dim", "dimension", "size"});
  if (!dim_el) Fail(400, "'dim' is required");
  uint64_t dim = ToUint(*dim_el, "dim", 65536);
  if (dim == 0) Fail(400, "'dim' must be at least 1");
  spec.opts.dim = static_cast<uint32_t>(dim);
  if (auto m = FieldAny(body, {"metric", "distance"}); m && !m->is_null()) {
    std::string metric = Lower(ToString(*m, "metric"));
    int v = 0;  // the library knows the aliases (euclid, l2, ip, dot_product, ...)
    if (aidb_metric_from_string(metric.c_str(), &v, nullptr) != AIDB_OK) {
      Fail(400, "unknown metric '" + metric + "': use cosine, euclidean (l2) or dot");
    }
    spec.opts.metric = v;
  }
  // As in the original server: HNSW unless told otherwise.
  spec.opts.index_kind = AIDB_INDEX_HNSW;
  if (auto ix = Field(body, "index"); ix && !ix->is_null()) {
    std::string kind = Lower(ToString(*ix, "index"));
    if (kind == "bruteforce" || kind == "brute_force") kind = "flat";  // the original's name
    int v = 0;
    if (aidb_index_kind_from_string(kind.c_str(), &v, nullptr) != AIDB_OK) {
      Fail(400, "unknown index '" + kind + "': use hnsw, flat (bruteforce) or ivf");
    }
    spec.opts.index_kind = v;
  }
  if (auto hnsw = Field(body, "hnsw"); hnsw && !hnsw->is_null()) {
    if (!hnsw->is_object()) Fail(400, "'hnsw' must be an object");
    if (auto v = Field(*hnsw, "m"); v && !v->is_null()) {
      spec.opts.hnsw_m = static_cast<uint32_t>(ToUint(*v, "hnsw.m"));
    }
    if (auto v = Field(*hnsw, "ef_construction"); v && !v->is_null()) {
      spec.opts.hnsw_ef_construction = static_cast<uint32_t>(ToUint(*v, "hnsw.ef_construction"));
    }
    if (auto v = Field(*hnsw, "ef_search"); v && !v->is_null()) {
      spec.opts.hnsw_ef_search = static_cast<uint32_t>(ToUint(*v, "hnsw.ef_search"));
    }
  }
  if (auto ivf = Field(body, "ivf"); ivf && !ivf->is_null()) {
    if (!ivf->is_object()) Fail(400, "'ivf' must be an object");
    if (auto v = Field(*ivf, "nlist"); v && !v->is_null()) {
      spec.opts.ivf_nlist = static_cast<uint32_t>(ToUint(*v, "ivf.nlist"));
    }
    if (auto v = Field(*ivf, "nprobe"); v && !v->is_null()) {
      spec.opts.ivf_nprobe = static_cast<uint32_t>(ToUint(*v, "ivf.nprobe"));
    }
    if (auto v = Field(*ivf, "rerank"); v && !v->is_null()) {
      spec.opts.ivf_rerank = static_cast<uint32_t>(ToUint(*v, "ivf.rerank"));
    }
  }
  if (auto q = Field(body, "quantization"); q && !q->is_null()) {
    std::string v = Lower(ToString(*q, "quantization"));
    if (v == "sq8") spec.opts.quantization = AIDB_QUANTIZATION_SQ8;
    else if (v == "none") spec.opts.quantization = AIDB_QUANTIZATION_NONE;
    else Fail(400, "unknown quantization '" + v + "': use sq8 or none");
  }
  if (auto d = Field(body, "vectors_on_disk"); d && !d->is_null()) {
    spec.opts.vectors_on_disk = ToBool(*d, "vectors_on_disk") ? 1 : 0;
  }
  if (auto w = Field(body, "wal_dir"); w && !w->is_null()) {
    std::string dir = ToString(*w, "wal_dir");
    std::string real = dir.empty() || dir.find('\0') != std::string::npos ? "" : ResolveDir(dir);
    if (real.empty() || real != wal_dir_root) {
      Fail(400, "'wal_dir' must name this daemon's data directory " + wal_dir_root +
                    ", where every collection's WAL lives ('" + dir + "' is " +
                    (real.empty() ? std::string("not a usable path") : "'" + real + "'") +
                    "): omit it, or start aidbd with --data-dir naming that directory");
    }
  }
  return spec;
}

std::string ConfigDifference(const aidb_collection_info& have,
                             const aidb_collection_options& want) {
  std::string out;
  auto add = [&out](const std::string& what, const std::string& is, const std::string& asked) {
    if (is == asked) return;
    if (!out.empty()) out += ", ";
    out += what + " " + is + " (requested " + asked + ")";
  };
  add("dim", std::to_string(have.dim), std::to_string(want.dim));
  add("metric", aidb_metric_name(have.metric), aidb_metric_name(want.metric));
  add("index", aidb_index_kind_name(have.index_kind), aidb_index_kind_name(want.index_kind));
  if (have.index_kind == AIDB_INDEX_HNSW && want.index_kind == AIDB_INDEX_HNSW) {
    add("hnsw.m", std::to_string(have.hnsw_m), std::to_string(want.hnsw_m));
    add("hnsw.ef_construction", std::to_string(have.hnsw_ef_construction),
        std::to_string(want.hnsw_ef_construction));
  }
  // nprobe is left out as hnsw.ef_search is: POST .../params changes it.
  if (have.index_kind == AIDB_INDEX_IVF && want.index_kind == AIDB_INDEX_IVF) {
    add("ivf.nlist", std::to_string(have.ivf_nlist), std::to_string(want.ivf_nlist));
    add("ivf.rerank", std::to_string(have.ivf_rerank), std::to_string(want.ivf_rerank));
  }
  auto quant = [](int q) { return std::string(q == AIDB_QUANTIZATION_NONE ? "none" : "sq8"); };
  add("quantization", quant(have.quantization), quant(want.quantization));
  add("vectors_on_disk", have.vectors_on_disk ? "true" : "false",
      want.vectors_on_disk ? "true" : "false");
  return out;
}

}  // namespace aidbd
