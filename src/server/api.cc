#include "api.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <simdjson.h>
#include <string_view>
#include <vector>

#include "util.h"

namespace aidbd {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using simdjson::dom::element;

namespace {

enum Route {
  kHealth,
  kMetrics,
  kListCollections,
  kCreateCollection,
  kGetCollection,
  kDropCollection,
  kUpsert,
  kUpsertBatch,
  kGetPoint,
  kDeletePoint,
  kSearch,
  kSearchBatch,
  kSnapshot,
  kListSnapshots,
  kRestore,
  kCompact,
  kParams,
  kWal,
};

constexpr size_t kMaxTopK = 100000;

// Searches served on an event loop (Api::TryInline) rather than the thread
// pool: the two thread hand-offs of the pool cost as much as a short search.
// Only unfiltered, approximate HNSW searches qualify, whose walk is bounded by
// ef x dim (about 0.1-0.5 ms on one core at the limit), with few hits and
// little payload to render; the engine call is nonblocking, so a writer's
// lock (restore, compaction, an upsert being applied) or a walk far longer
// than ef predicts (a graph mostly of deleted points) sends the search to the
// pool instead of stalling the loop. The body is parsed on the loop too, so it
// is bounded as well (which also bounds the thread-local parser each loop
// keeps; an 8192-dim query is ~100 KB).
constexpr uint32_t kInlineMaxTopK = 100;
constexpr uint64_t kInlineMaxEfDims = 512 * 1024;
constexpr size_t kInlineMaxPayloadBytes = 256 << 10;
constexpr size_t kInlineMaxBodyBytes = 256 << 10;
constexpr size_t kWalPieceBytes = 64 * 1024;

// An error answer: thrown inside handlers, turned into {"error": ...}.
struct ApiError {
  int status;
  std::string message;
};

[[noreturn]] void Fail(int status, std::string message) {
  throw ApiError{status, std::move(message)};
}

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Holds a library error message and frees it.
class ErrMsg {
 public:
  ErrMsg() = default;
  ~ErrMsg() { aidb_free(p_); }
  ErrMsg(const ErrMsg&) = delete;
  ErrMsg& operator=(const ErrMsg&) = delete;
  char** out() {
    aidb_free(p_);
    p_ = nullptr;
    return &p_;
  }
  std::string str(int status) const {
    return p_ ? std::string(p_) : std::string(aidb_status_name(status));
  }

 private:
  char* p_ = nullptr;
};

void Check(int status, const ErrMsg& err) {
  if (status != AIDB_OK) Fail(HttpStatusFor(status), err.str(status));
}

bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

bool ConstantTimeEquals(std::string_view given, std::string_view expected) {
  // Time depends on the expected key's length only.
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// --- request JSON ------------------------------------------------------------

// Parses the body as a JSON object (an empty body counts as {} when allowed).
element ParseBody(HttpRequest* req, bool allow_empty) {
  thread_local simdjson::dom::parser parser;
  static const std::string kEmpty = "{}";
  std::string& body = req->body;
  bool blank = std::all_of(body.begin(), body.end(), [](char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
  });
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

std::optional<element> Field(element obj, std::string_view key) {
  simdjson::dom::object o = obj.get_object().value_unsafe();
  auto r = o[key];
  if (r.error()) return std::nullopt;
  return r.value_unsafe();
}

// The first of several synonymous keys that is present.
std::optional<element> FieldAny(element obj, std::initializer_list<std::string_view> keys,
                                std::string_view* which = nullptr) {
  for (auto k : keys) {
    if (auto f = Field(obj, k)) {
      if (which) *which = k;
      return f;
    }
  }
  return std::nullopt;
}

uint64_t ToUint(element e, std::string_view name, uint64_t max = UINT32_MAX) {
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

// Appends the components of a JSON array of numbers to `out`; returns the count.
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

// A payload field: "" for absent or null, else the minified JSON object.
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
    aidb_uuid_generate(out);
    return std::string(out, 36);
  }
  if (!e->is_string()) Fail(400, "'id' must be a UUID string");
  return CanonicalId(std::string(e->get_string().value_unsafe()));
}

Json PayloadJson(const char* text, size_t len) {
  if (!text) return nullptr;
  Json j = Json::parse(text, text + len, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::string(text, len);  // not expected from the library
  return j;
}

struct SearchSpec {
  std::vector<float> vector;
  uint32_t top_k = 10;
  uint32_t ef_search = 0;
  std::string filter;
  bool has_filter = false;
  bool with_payload = true;
  bool exact = false;

  bool SameOptions(const SearchSpec& o) const {
    return top_k == o.top_k && ef_search == o.ef_search && has_filter == o.has_filter &&
           filter == o.filter && with_payload == o.with_payload && exact == o.exact &&
           vector.size() == o.vector.size();
  }
  aidb_search_options Options() const {
    aidb_search_options opts;
    aidb_search_options_init(&opts);
    opts.top_k = top_k;
    opts.ef_search = ef_search;
    opts.filter = has_filter ? filter.c_str() : nullptr;
    opts.with_payload = with_payload ? 1 : 0;
    opts.exact = exact ? 1 : 0;
    return opts;
  }
};

// Reads the search options of `obj` over `defaults`.
void ReadSearchOptions(element obj, SearchSpec* s) {
  if (auto k = FieldAny(obj, {"top_k", "k", "limit"})) {
    s->top_k = static_cast<uint32_t>(ToUint(*k, "top_k", kMaxTopK));
  }
  if (auto f = Field(obj, "filter")) {
    if (f->is_null()) {
      s->has_filter = false;
      s->filter.clear();
    } else if (f->is_object()) {
      s->has_filter = true;
      s->filter = simdjson::to_string(*f);
    } else {
      Fail(400, "'filter' must be a JSON object");
    }
  }
  if (auto e = Field(obj, "ef_search")) s->ef_search = static_cast<uint32_t>(ToUint(*e, "ef_search"));
  if (auto w = Field(obj, "with_payload")) s->with_payload = ToBool(*w, "with_payload");
  if (auto x = Field(obj, "exact")) s->exact = ToBool(*x, "exact");
}

Json HitsJson(const aidb_search_result* result, size_t query, bool with_payload) {
  const aidb_hit* hits = nullptr;
  size_t count = 0;
  int st = aidb_search_result_hits(result, query, &hits, &count);
  if (st != AIDB_OK) Fail(500, std::string("reading search hits: ") + aidb_status_name(st));
  Json arr = Json::array();
  for (size_t i = 0; i < count; ++i) {
    Json h;
    h["id"] = hits[i].id;
    h["score"] = FloatForJson(hits[i].score);
    h["payload"] = with_payload ? PayloadJson(hits[i].payload, hits[i].payload_len) : Json();
    arr.push_back(std::move(h));
  }
  return arr;
}

struct ResultGuard {
  aidb_search_result* r = nullptr;
  ~ResultGuard() { aidb_search_result_free(r); }
};

Json CollectionJson(aidb_collection* h) {
  aidb_collection_info info;
  aidb_collection_info_init(&info);
  ErrMsg err;
  Check(aidb_collection_get_info(h, &info, err.out()), err);
  aidb_wal_info wal;
  aidb_wal_info_init(&wal);
  Check(aidb_wal_stats(h, &wal, err.out()), err);
  Json j;
  j["name"] = info.name;
  j["dim"] = info.dim;
  j["metric"] = aidb_metric_name(info.metric);
  j["index"] = aidb_index_kind_name(info.index_kind);
  if (info.index_kind == AIDB_INDEX_HNSW) {
    j["hnsw"] = {{"m", info.hnsw_m},
                 {"ef_construction", info.hnsw_ef_construction},
                 {"ef_search", info.hnsw_ef_search}};
  }
  j["durability"] = aidb_durability_name(info.durability);
  j["len"] = info.count;
  j["wal_size_bytes"] = wal.size_bytes;
  j["wal_last_truncate"] =
      wal.has_last_truncate ? Json(FormatRfc3339(wal.last_truncate_unix_ns)) : Json();
  j["wal_bytes_since_truncate"] = wal.bytes_since_truncate;
  j["wal_last_lsn"] = wal.last_lsn;
  return j;
}

Json SnapshotJson(const aidb_snapshot_info& s) {
  Json j;
  j["file"] = fs::path(s.path).filename().string();
  j["path"] = s.path;
  j["lsn"] = s.lsn;
  j["size_bytes"] = s.size_bytes;
  j["created"] = FormatRfc3339(s.created_unix_ns);
  j["count"] = s.count;
  return j;
}

void Reply(HttpResponse* resp, int status, const Json& j) {
  resp->status = status;
  resp->body = Dump(j);
}

// Copies `from` to `to` atomically: temporary file, fsync, rename, dir fsync.
void CopyFileDurably(const std::string& from, const std::string& to) {
  std::string tmp = to + ".tmp";
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) Fail(500, "open " + from + ": " + std::strerror(errno));
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    int e = errno;
    ::close(in);
    Fail(500, "create " + tmp + ": " + std::strerror(e));
  }
  std::vector<char> buf(1 << 20);
  std::string error;
  while (error.empty()) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      error = "read " + from + ": " + std::strerror(errno);
      break;
    }
    size_t off = 0;
    while (off < static_cast<size_t>(n)) {
      ssize_t w = ::write(out, buf.data() + off, static_cast<size_t>(n) - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        error = "write " + tmp + ": " + std::strerror(errno);
        break;
      }
      off += static_cast<size_t>(w);
    }
  }
  if (error.empty() && ::fsync(out) != 0) error = "fsync " + tmp + ": " + std::strerror(errno);
  ::close(in);
  if (::close(out) != 0 && error.empty()) error = "close " + tmp + ": " + std::strerror(errno);
  if (error.empty() && ::rename(tmp.c_str(), to.c_str()) != 0) {
    error = "rename " + tmp + ": " + std::strerror(errno);
  }
  if (!error.empty()) {
    ::unlink(tmp.c_str());
    Fail(500, error);
  }
  std::string dir = fs::path(to).parent_path().string();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    int rc = ::fsync(dfd);
    ::close(dfd);
    if (rc != 0) Fail(500, "fsync " + dir + ": " + std::strerror(errno));
  }
}

// Streams a collection's WAL as NDJSON, one record a line.
class WalStream : public BodyStream {
 public:
  WalStream(std::shared_ptr<Api::Coll> coll, aidb_wal_iterator* it)
      : coll_(std::move(coll)), it_(it) {}
  ~WalStream() override { aidb_wal_iterator_close(it_); }

  // Fills `out` with up to ~64 KiB of lines. Returns false at the end. With
  // `first`, an error is returned as a status instead of an error line.
  bool Fill(std::string* out, bool first, int* status, std::string* error) {
    while (out->size() < kWalPieceBytes) {
      aidb_wal_entry e;
      aidb_wal_entry_init(&e);
      int has = 0;
      ErrMsg err;
      int st = aidb_wal_iterator_next(it_, &e, &has, err.out());
      if (st != AIDB_OK) {
        if (first && out->empty()) {
          *status = st;
          *error = err.str(st);
          return false;
        }
        // The head went out already: end with an error line the reader sees.
        out->append(Dump(Json{{"error", err.str(st)}})).push_back('\n');
        return false;
      }
      if (!has) return false;
      out->append(e.json, e.json_len).push_back('\n');
    }
    return true;
  }

  bool Next(std::string* out) override {
    int st = 0;
    std::string error;
    return Fill(out, false, &st, &error);
  }

 private:
  std::shared_ptr<Api::Coll> coll_;  // keeps the handle open while streaming
  aidb_wal_iterator* it_;
};

struct RouteMatch {
  int route = -1;
  const char* label = "unmatched";
  const char* allow = nullptr;  // methods, when the path matched but not the method
};

RouteMatch MatchRoute(const std::string& method, const std::vector<std::string_view>& seg) {
  RouteMatch m;
  auto pick = [&](const char* label, const char* allow,
                  std::initializer_list<std::pair<const char*, int>> options) {
    m.label = label;
    for (auto& [meth, route] : options) {
      if (method == meth || (method == "HEAD" && std::strcmp(meth, "GET") == 0)) {
        m.route = route;
        return;
      }
    }
    m.allow = allow;
  };
  size_t n = seg.size();
  if (n == 1 && seg[0] == "health") {
    pick("/health", "GET", {{"GET", kHealth}});
  } else if (n == 1 && seg[0] == "metrics") {
    pick("/metrics", "GET", {{"GET", kMetrics}});
  } else if (n >= 1 && seg[0] == "collections") {
    if (n == 1) {
      pick("/collections", "GET, POST",
           {{"GET", kListCollections}, {"POST", kCreateCollection}});
    } else if (n == 2) {
      pick("/collections/:name", "GET, DELETE",
           {{"GET", kGetCollection}, {"DELETE", kDropCollection}});
    } else if (n == 3) {
      std::string_view s = seg[2];
      if (s == "points") {
        pick("/collections/:name/points", "POST, PUT", {{"POST", kUpsert}, {"PUT", kUpsert}});
      } else if (s == "points:batch") {
        pick("/collections/:name/points:batch", "POST, PUT",
             {{"POST", kUpsertBatch}, {"PUT", kUpsertBatch}});
      } else if (s == "search") {
        pick("/collections/:name/search", "POST", {{"POST", kSearch}});
      } else if (s == "search:batch") {
        pick("/collections/:name/search:batch", "POST", {{"POST", kSearchBatch}});
      } else if (s == "snapshot") {
        pick("/collections/:name/snapshot", "POST", {{"POST", kSnapshot}});
      } else if (s == "snapshots") {
        pick("/collections/:name/snapshots", "GET", {{"GET", kListSnapshots}});
      } else if (s == "restore") {
        pick("/collections/:name/restore", "POST", {{"POST", kRestore}});
      } else if (s == "compact") {
        pick("/collections/:name/compact", "POST", {{"POST", kCompact}});
      } else if (s == "params") {
        pick("/collections/:name/params", "POST, PUT, PATCH",
             {{"POST", kParams}, {"PUT", kParams}, {"PATCH", kParams}});
      } else if (s == "wal") {
        pick("/collections/:name/wal", "GET", {{"GET", kWal}});
      }
    } else if (n == 4 && seg[2] == "points") {
      pick("/collections/:name/points/:id", "GET, DELETE",
           {{"GET", kGetPoint}, {"DELETE", kDeletePoint}});
    }
  }
  return m;
}

}  // namespace

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

Api::Coll::~Coll() { aidb_collection_close(handle); }

Api::Api(aidb_db* db, ApiConfig config) : db_(db), config_(std::move(config)) {}
Api::~Api() { ReleaseHandles(); }

void Api::ReleaseHandles() {
  std::lock_guard<std::shared_mutex> lock(colls_mu_);
  colls_.clear();
}

std::shared_ptr<Api::Coll> Api::GetColl(const std::string& name) {
  {
    std::shared_lock<std::shared_mutex> lock(colls_mu_);
    auto it = colls_.find(name);
    if (it != colls_.end()) return it->second;
  }
  std::lock_guard<std::shared_mutex> lock(colls_mu_);
  auto it = colls_.find(name);
  if (it != colls_.end()) return it->second;
  auto c = std::make_shared<Coll>();
  ErrMsg err;
  int st = aidb_db_open_collection(db_, name.c_str(), &c->handle, err.out());
  if (st == AIDB_NOT_FOUND) Fail(404, "collection '" + name + "' not found");
  Check(st, err);
  aidb_collection_info info;
  aidb_collection_info_init(&info);
  Check(aidb_collection_get_info(c->handle, &info, err.out()), err);
  c->dim = info.dim;
  c->index_kind = info.index_kind;
  c->ef_search = info.hnsw_ef_search;
  c->name = name;
  colls_[name] = c;
  return c;
}

std::shared_ptr<Api::Coll> Api::TryGetColl(const std::string& name) {
  std::shared_lock<std::shared_mutex> lock(colls_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return nullptr;
  auto it = colls_.find(name);
  return it == colls_.end() ? nullptr : it->second;
}

void Api::Forget(const std::string& name) {
  std::lock_guard<std::shared_mutex> lock(colls_mu_);
  colls_.erase(name);
}

bool Api::Prepare(HttpRequest* req, HttpResponse* resp) {
  std::vector<std::string_view> seg;
  std::string_view p = req->path;
  size_t i = 0;
  while (i < p.size()) {
    while (i < p.size() && p[i] == '/') ++i;
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) seg.push_back(p.substr(i, j - i));
    i = j;
  }
  RouteMatch m = MatchRoute(req->method, seg);
  req->route = m.route;
  req->route_label = m.label;
  for (size_t k = 1; k < seg.size(); k += 2) req->params.emplace_back(seg[k]);

  if (m.route != kHealth && !config_.api_key.empty()) {
    std::string_view token;
    bool have = false;
    if (const std::string* k = req->Header("api-key")) {
      token = *k;
      have = true;
    } else if (const std::string* a = req->Header("authorization")) {
      std::string_view v = *a;
      if (v.size() > 7 && Lower(v.substr(0, 7)) == "bearer ") {
        token = v.substr(7);
        while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
        have = true;
      }
    }
    if (!have || !ConstantTimeEquals(token, config_.api_key)) {
      resp->status = 401;
      resp->body = ErrorBody(have ? "invalid API key" : "missing API key");
      resp->headers.emplace_back("WWW-Authenticate", "Bearer");
      return true;
    }
  }
  if (m.route < 0) {
    if (m.allow) {
      resp->status = 405;
      resp->body = ErrorBody("method " + req->method + " not allowed on " + m.label);
      resp->headers.emplace_back("Allow", m.allow);
    } else {
      resp->status = 404;
      resp->body = ErrorBody("no route for " + req->method + " " + req->path);
    }
    return true;
  }
  if (seg.size() >= 2 && !ValidName(seg[1])) {
    resp->status = 400;
    resp->body = ErrorBody("invalid collection name: names are 1 to 64 of A-Z a-z 0-9 _ -");
    return true;
  }
  if (m.route == kHealth) {
    resp->body = Dump(Json{{"status", "ok"}, {"version", aidb_version()}});
    return true;
  }
  return false;
}

namespace {

// Runs `fn` (which returns whether it answered); what it throws becomes an
// error answer in *resp.
template <class Fn>
bool Answering(HttpResponse* resp, Fn&& fn) {
  try {
    return fn();
  } catch (const ApiError& e) {
    *resp = HttpResponse();
    resp->status = e.status;
    resp->body = ErrorBody(e.message);
  } catch (const std::bad_alloc&) {
    *resp = HttpResponse();
    resp->status = 503;
    resp->body = ErrorBody("out of memory");
  } catch (const std::exception& e) {
    *resp = HttpResponse();
    resp->status = 500;
    resp->body = ErrorBody(std::string("internal error: ") + e.what());
  }
  return true;
}

}  // namespace

bool Api::TryInline(HttpRequest* req, HttpResponse* resp) {
  if (req->route != kSearch) return false;
  std::shared_ptr<Coll> c = TryGetColl(req->params[0]);
  Deferral why = !c ? kBusy : kShape;
  bool answered = c && c->index_kind == AIDB_INDEX_HNSW &&
                  Answering(resp, [&] { return SearchOne(*c, req, resp, true, &why); });
  if (answered) {
    searches_on_loop_.fetch_add(1, std::memory_order_relaxed);
  } else {
    searches_deferred_[why].fetch_add(1, std::memory_order_relaxed);
  }
  return answered;
}

void Api::Execute(HttpRequest* req, HttpResponse* resp) {
  Answering(resp, [&] {
    switch (req->route) {
      case kMetrics: Metrics(resp); break;
      case kListCollections: ListCollections(resp); break;
      case kCreateCollection: CreateCollection(req, resp); break;
      case kGetCollection: GetCollection(req, resp); break;
      case kDropCollection: DropCollection(req, resp); break;
      case kUpsert: Upsert(req, resp); break;
      case kUpsertBatch: UpsertBatch(req, resp); break;
      case kGetPoint: GetPoint(req, resp); break;
      case kDeletePoint: DeletePoint(req, resp); break;
      case kSearch: Search(req, resp); break;
      case kSearchBatch: SearchBatch(req, resp); break;
      case kSnapshot: Snapshot(req, resp); break;
      case kListSnapshots: ListSnapshots(req, resp); break;
      case kRestore: Restore(req, resp); break;
      case kCompact: Compact(req, resp); break;
      case kParams: Params(req, resp); break;
      case kWal: Wal(req, resp); break;
      default: Fail(404, "no route");
    }
    return true;
  });
}

void Api::Completed(const HttpRequest& req, int status, double seconds) {
  const std::string& label = req.route_label.empty() ? std::string("unmatched") : req.route_label;
  http_metrics_.Observe(label, req.method.empty() ? "UNKNOWN" : req.method, status, seconds);
  if (LogEnabled(LogLevel::kDebug)) {
    Log(LogLevel::kDebug, "request",
        KV().Add("method", req.method).Add("path", req.path).Add("status", status)
            .Add("seconds", seconds));
  }
}

// --- handlers -----------------------------------------------------------------

void Api::Metrics(HttpResponse* resp) {
  char** names = nullptr;
  size_t count = 0;
  ErrMsg err;
  Check(aidb_db_list_collections(db_, &names, &count, err.out()), err);
  struct Row {
    std::string name;
    aidb_wal_info wal;
    uint64_t points;
  };
  std::vector<Row> rows;
  for (size_t i = 0; i < count; ++i) {
    std::string name = names[i];
    try {
      auto c = GetColl(name);
      Row r{name, {}, 0};
      aidb_wal_info_init(&r.wal);
      if (aidb_wal_stats(c->handle, &r.wal, nullptr) != AIDB_OK) continue;
      if (aidb_collection_count(c->handle, &r.points, nullptr) != AIDB_OK) continue;
      rows.push_back(r);
    } catch (const ApiError&) {
      // dropped meanwhile
    }
  }
  aidb_free_string_array(names, count);

  int64_t now = NowUnixNs();
  std::string& o = resp->body;
  auto family = [&](const char* name, const char* type, const char* help) {
    o.append("# HELP ").append(name).append(" ").append(help).append("\n");
    o.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  };
  auto sample = [&](const char* name, const std::string& coll, const std::string& value) {
    o.append(name).append("{collection=\"").append(PromLabel(coll)).append("\"} ");
    o.append(value).append("\n");
  };
  family("aidb_build_info", "gauge", "Version of the loaded libaidb; always 1.");
  o.append("aidb_build_info{version=\"").append(PromLabel(aidb_version())).append("\"} 1\n");
  family("aidb_process_start_time_seconds", "gauge", "Start time of aidbd since the Unix epoch.");
  o.append("aidb_process_start_time_seconds ")
      .append(PromValue(static_cast<double>(config_.start_unix_ns) / 1e9))
      .append("\n");
  family("aidb_collections", "gauge", "Number of collections.");
  o.append("aidb_collections ").append(std::to_string(rows.size())).append("\n");
  family("aidb_collection_points", "gauge", "Live points per collection.");
  for (auto& r : rows) sample("aidb_collection_points", r.name, std::to_string(r.points));
  family("aidb_wal_size_bytes", "gauge", "Current size of the collection's WAL file in bytes.");
  for (auto& r : rows) sample("aidb_wal_size_bytes", r.name, std::to_string(r.wal.size_bytes));
  family("aidb_wal_seconds_since_truncate", "gauge",
         "Seconds since a snapshot last truncated the WAL; before the first truncation in this "
         "process, seconds since aidbd started.");
  for (auto& r : rows) {
    int64_t since = r.wal.has_last_truncate ? r.wal.last_truncate_unix_ns : config_.start_unix_ns;
    double secs = std::max(0.0, static_cast<double>(now - since) / 1e9);
    sample("aidb_wal_seconds_since_truncate", r.name, PromValue(secs));
  }
  family("aidb_wal_bytes_since_truncate", "gauge",
         "WAL bytes appended since the last truncation or since the collection was opened.");
  for (auto& r : rows) {
    sample("aidb_wal_bytes_since_truncate", r.name, std::to_string(r.wal.bytes_since_truncate));
  }
  family("aidb_wal_last_lsn", "gauge", "LSN of the last WAL record written or applied.");
  for (auto& r : rows) sample("aidb_wal_last_lsn", r.name, std::to_string(r.wal.last_lsn));
  family("aidb_http_searches_on_loop_total", "counter",
         "Searches answered on an event loop (short, unfiltered HNSW searches).");
  o.append("aidb_http_searches_on_loop_total ")
      .append(std::to_string(searches_on_loop_.load()))
      .append("\n");
  family("aidb_http_searches_deferred_total", "counter",
         "Searches sent from an event loop to the thread pool: reason=shape (a filter, "
         "exact, a FLAT index, large ef x dim or top_k, a body over 256 KiB), busy (a writer "
         "held a lock, the HNSW walk ran far beyond ef, or the collection was not open yet), "
         "payload (many payload bytes to render).");
  static const char* const kReasons[kDeferralCount] = {"shape", "busy", "payload"};
  for (int i = 0; i < kDeferralCount; ++i) {
    o.append("aidb_http_searches_deferred_total{reason=\"").append(kReasons[i]).append("\"} ");
    o.append(std::to_string(searches_deferred_[i].load())).append("\n");
  }
  http_metrics_.Render(&o);
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

void Api::ListCollections(HttpResponse* resp) {
  char** names = nullptr;
  size_t count = 0;
  ErrMsg err;
  Check(aidb_db_list_collections(db_, &names, &count, err.out()), err);
  std::vector<std::string> list(names, names + count);
  aidb_free_string_array(names, count);
  Json arr = Json::array();
  for (const auto& n : list) {
    try {
      auto c = GetColl(n);
      arr.push_back(CollectionJson(c->handle));
    } catch (const ApiError& e) {
      if (e.status != 404) throw;  // dropped meanwhile
    }
  }
  Reply(resp, 200, Json{{"collections", std::move(arr)}});
}

void Api::CreateCollection(HttpRequest* req, HttpResponse* resp) {
  element body = ParseBody(req, false);
  auto name_el = Field(body, "name");
  if (!name_el) Fail(400, "'name' is required");
  std::string name = ToString(*name_el, "name");
  if (!ValidName(name)) {
    Fail(400, "invalid collection name: names are 1 to 64 of A-Z a-z 0-9 _ -");
  }
  auto dim_el = FieldAny(body, {"dim", "dimension", "size"});
  if (!dim_el) Fail(400, "'dim' is required");
  uint64_t dim = ToUint(*dim_el, "dim", 65536);
  if (dim == 0) Fail(400, "'dim' must be at least 1");

  aidb_collection_options opts;
  aidb_collection_options_init(&opts);
  opts.name = name.c_str();
  opts.dim = static_cast<uint32_t>(dim);
  ErrMsg err;
  if (auto m = FieldAny(body, {"metric", "distance"})) {
    std::string metric = Lower(ToString(*m, "metric"));
    if (metric == "euclid" || metric == "l2sq" || metric == "euclidean_distance") metric = "euclidean";
    if (metric == "ip" || metric == "inner_product" || metric == "dot_product") metric = "dot";
    int v = 0;
    if (aidb_metric_from_string(metric.c_str(), &v, nullptr) != AIDB_OK) {
      Fail(400, "unknown metric '" + metric + "': use cosine, euclidean (l2) or dot");
    }
    opts.metric = v;
  }
  auto hnsw = Field(body, "hnsw");
  if (auto ix = Field(body, "index")) {
    std::string kind = Lower(ToString(*ix, "index"));
    int v = 0;
    if (aidb_index_kind_from_string(kind.c_str(), &v, nullptr) != AIDB_OK) {
      Fail(400, "unknown index '" + kind + "': use flat or hnsw");
    }
    opts.index_kind = v;
  } else if (hnsw && !hnsw->is_null()) {
    opts.index_kind = AIDB_INDEX_HNSW;
  }
  if (hnsw && !hnsw->is_null()) {
    if (!hnsw->is_object()) Fail(400, "'hnsw' must be an object");
    if (auto v = Field(*hnsw, "m")) opts.hnsw_m = static_cast<uint32_t>(ToUint(*v, "hnsw.m"));
    if (auto v = Field(*hnsw, "ef_construction")) {
      opts.hnsw_ef_construction = static_cast<uint32_t>(ToUint(*v, "hnsw.ef_construction"));
    }
    if (auto v = Field(*hnsw, "ef_search")) {
      opts.hnsw_ef_search = static_cast<uint32_t>(ToUint(*v, "hnsw.ef_search"));
    }
  }
  {
    std::lock_guard<std::shared_mutex> lock(colls_mu_);
    int st = aidb_db_create_collection(db_, &opts, nullptr, err.out());
    if (st == AIDB_ALREADY_EXISTS) Fail(409, "collection '" + name + "' already exists");
    Check(st, err);
    colls_.erase(name);
  }
  auto c = GetColl(name);
  Reply(resp, 201, CollectionJson(c->handle));
}

void Api::GetCollection(HttpRequest* req, HttpResponse* resp) {
  auto c = GetColl(req->params[0]);
  Reply(resp, 200, CollectionJson(c->handle));
}

void Api::DropCollection(HttpRequest* req, HttpResponse* resp) {
  const std::string& name = req->params[0];
  std::shared_ptr<Coll> old;
  {
    std::lock_guard<std::shared_mutex> lock(colls_mu_);
    ErrMsg err;
    int st = aidb_db_drop_collection(db_, name.c_str(), err.out());
    if (st == AIDB_NOT_FOUND) Fail(404, "collection '" + name + "' not found");
    Check(st, err);
    auto it = colls_.find(name);
    if (it != colls_.end()) {
      old = std::move(it->second);
      colls_.erase(it);
    }
  }
  Reply(resp, 200, Json{{"name", name}, {"deleted", true}});
}

void Api::Upsert(HttpRequest* req, HttpResponse* resp) {
  auto c = GetColl(req->params[0]);
  element body = ParseBody(req, false);
  auto v = Field(body, "vector");
  if (!v) Fail(400, "'vector' is required");
  std::vector<float> vec;
  vec.reserve(c->dim);
  AppendVector(*v, "vector", &vec);
  std::string id = IdField(Field(body, "id"));
  std::string payload = PayloadText(Field(body, "payload"));
  ErrMsg err;
  Check(aidb_collection_upsert(c->handle, id.c_str(), vec.data(), vec.size(),
                               payload.empty() ? nullptr : payload.data(), payload.size(),
                               err.out()),
        err);
  Reply(resp, 200, Json{{"id", id}});
}

void Api::UpsertBatch(HttpRequest* req, HttpResponse* resp) {
  auto c = GetColl(req->params[0]);
  element body = ParseBody(req, false);
  auto pts = Field(body, "points");
  if (!pts || !pts->is_array()) Fail(400, "'points' must be an array of points");
  std::vector<std::string> ids;
  std::vector<std::string> payloads;
  std::vector<float> vectors;
  size_t dim = 0;
  bool any_payload = false;
  simdjson::dom::array list = pts->get_array().value_unsafe();
  for (element p : list) {
    if (!p.is_object()) Fail(400, "each point must be a JSON object");
    auto v = Field(p, "vector");
    if (!v) Fail(400, "point " + std::to_string(ids.size()) + ": 'vector' is required");
    size_t n = AppendVector(*v, "vector", &vectors);
    if (ids.empty()) {
      dim = n;
    } else if (n != dim) {
      Fail(400, "point " + std::to_string(ids.size()) + ": vector has " + std::to_string(n) +
                    " components, the first point " + std::to_string(dim));
    }
    ids.push_back(IdField(Field(p, "id")));
    payloads.push_back(PayloadText(Field(p, "payload")));
    any_payload |= !payloads.back().empty();
  }
  Json out_ids = Json::array();
  if (!ids.empty()) {
    std::vector<const char*> id_ptrs, payload_ptrs;
    for (size_t i = 0; i < ids.size(); ++i) {
      id_ptrs.push_back(ids[i].c_str());
      payload_ptrs.push_back(payloads[i].empty() ? nullptr : payloads[i].c_str());
    }
    ErrMsg err;
    Check(aidb_collection_upsert_batch(c->handle, ids.size(), id_ptrs.data(), vectors.data(),
                                       dim, any_payload ? payload_ptrs.data() : nullptr,
                                       err.out()),
          err);
    for (auto& id : ids) out_ids.push_back(id);
  }
  Reply(resp, 200, Json{{"ids", std::move(out_ids)}});
}

void Api::GetPoint(HttpRequest* req, HttpResponse* resp) {
  std::string id = CanonicalId(req->params[1]);
  auto c = GetColl(req->params[0]);
  std::vector<float> vec(c->dim);
  char* payload = nullptr;
  ErrMsg err;
  int st = aidb_collection_get(c->handle, id.c_str(), vec.data(), vec.size(), &payload,
                               err.out());
  if (st == AIDB_NOT_FOUND) Fail(404, "point '" + id + "' not found");
  Check(st, err);
  Json j;
  j["id"] = id;
  Json arr = Json::array();
  for (float f : vec) arr.push_back(FloatForJson(f));
  j["vector"] = std::move(arr);
  j["payload"] = payload ? PayloadJson(payload, std::strlen(payload)) : Json();
  aidb_free(payload);
  Reply(resp, 200, j);
}

void Api::DeletePoint(HttpRequest* req, HttpResponse* resp) {
  std::string id = CanonicalId(req->params[1]);
  auto c = GetColl(req->params[0]);
  ErrMsg err;
  int st = aidb_collection_delete(c->handle, id.c_str(), err.out());
  if (st == AIDB_NOT_FOUND) Fail(404, "point '" + id + "' not found");
  Check(st, err);
  Reply(resp, 200, Json{{"id", id}, {"deleted", true}});
}

void Api::Search(HttpRequest* req, HttpResponse* resp) {
  auto c = GetColl(req->params[0]);
  SearchOne(*c, req, resp, /*on_loop=*/false);
}

bool Api::SearchOne(const Coll& c, HttpRequest* req, HttpResponse* resp, bool on_loop,
                    Deferral* why) {
  if (on_loop && req->body.size() > kInlineMaxBodyBytes) {
    *why = kShape;
    return false;
  }
  element body = ParseBody(req, false);
  SearchSpec s;
  auto v = FieldAny(body, {"vector", "query"});
  if (!v) Fail(400, "'vector' is required");
  s.vector.reserve(c.dim);
  AppendVector(*v, "vector", &s.vector);
  ReadSearchOptions(body, &s);
  aidb_search_options opts = s.Options();
  if (on_loop) {
    *why = kShape;
    if (s.has_filter || s.exact || s.top_k > kInlineMaxTopK) return false;
    uint32_t ef = s.ef_search ? s.ef_search : c.ef_search.load(std::memory_order_relaxed);
    if (ef == 0) ef = std::max<uint32_t>(64, 2 * s.top_k);  // the index's adaptive default
    ef = std::max(ef, s.top_k);
    if (static_cast<uint64_t>(ef) * c.dim > kInlineMaxEfDims) return false;
    opts.nonblocking = 1;
  }
  ResultGuard result;
  ErrMsg err;
  int st = aidb_collection_search(c.handle, s.vector.data(), s.vector.size(), &opts, &result.r,
                                  err.out());
  if (on_loop && st == AIDB_BUSY) {
    *why = kBusy;
    return false;
  }
  Check(st, err);
  if (on_loop && s.with_payload) {
    const aidb_hit* hits = nullptr;
    size_t count = 0;
    size_t bytes = 0;
    if (aidb_search_result_hits(result.r, 0, &hits, &count) == AIDB_OK) {
      for (size_t i = 0; i < count; ++i) bytes += hits[i].payload_len;
    }
    if (bytes > kInlineMaxPayloadBytes) {  // long to render: the pool does it
      *why = kPayload;
      return false;
    }
  }
  Reply(resp, 200, Json{{"results", HitsJson(result.r, 0, s.with_payload)}});
  return true;
}

void Api::SearchBatch(HttpRequest* req, HttpResponse* resp) {
  auto c = GetColl(req->params[0]);
  element body = ParseBody(req, false);
  auto items = FieldAny(body, {"searches", "queries"});
  if (!items || !items->is_array()) Fail(400, "'searches' must be an array of searches");
  SearchSpec defaults;
  ReadSearchOptions(body, &defaults);
  std::vector<SearchSpec> specs;
  simdjson::dom::array list = items->get_array().value_unsafe();
  for (element it : list) {
    SearchSpec s = defaults;
    if (it.is_array()) {
      AppendVector(it, "vector", &s.vector);
    } else if (it.is_object()) {
      auto v = FieldAny(it, {"vector", "query"});
      if (!v) Fail(400, "search " + std::to_string(specs.size()) + ": 'vector' is required");
      AppendVector(*v, "vector", &s.vector);
      ReadSearchOptions(it, &s);
    } else {
      Fail(400, "each search must be an object or an array of numbers");
    }
    specs.push_back(std::move(s));
  }
  Json results = Json::array();
  bool uniform = !specs.empty();
  for (const auto& s : specs) uniform = uniform && s.SameOptions(specs[0]);
  ErrMsg err;
  if (uniform && specs.size() > 1) {
    size_t dim = specs[0].vector.size();
    std::vector<float> flat;
    flat.reserve(dim * specs.size());
    for (const auto& s : specs) flat.insert(flat.end(), s.vector.begin(), s.vector.end());
    aidb_search_options opts = specs[0].Options();
    opts.threads = specs.size() >= 8 ? 0 : 1;
    ResultGuard result;
    Check(aidb_collection_search_batch(c->handle, flat.data(), specs.size(), dim, &opts,
                                       &result.r, err.out()),
          err);
    for (size_t q = 0; q < specs.size(); ++q) {
      results.push_back(HitsJson(result.r, q, specs[0].with_payload));
    }
  } else {
    for (const auto& s : specs) {
      aidb_search_options opts = s.Options();
      ResultGuard result;
      Check(aidb_collection_search(c->handle, s.vector.data(), s.vector.size(), &opts,
                                   &result.r, err.out()),
            err);
      results.push_back(HitsJson(result.r, 0, s.with_payload));
    }
  }
  Reply(resp, 200, Json{{"results", std::move(results)}});
}

std::string Api::ConfinePath(const std::string& user_path, bool must_exist) const {
  if (user_path.empty()) Fail(400, "'path' must not be empty");
  if (user_path.find('\0') != std::string::npos) Fail(400, "'path' must not contain NUL");
  fs::path root(config_.data_dir);
  fs::path p(user_path);
  if (p.is_relative()) p = root / p;
  p = p.lexically_normal();
  fs::path rel = p.lexically_relative(root);
  if (rel.empty() || rel == "." || *rel.begin() == ".." || !p.has_filename()) {
    Fail(400, "snapshot paths must stay inside the data directory");
  }
  for (const auto& part : rel) {
    if (part == "..") Fail(400, "snapshot paths must stay inside the data directory");
  }
  std::error_code ec;
  // Symlinks must not lead out of the data dir either.
  fs::path real = fs::weakly_canonical(p, ec);
  if (ec) Fail(400, "cannot resolve path '" + user_path + "': " + ec.message());
  fs::path real_rel = real.lexically_relative(root);
  if (real_rel.empty() || *real_rel.begin() == "..") {
    Fail(400, "snapshot paths must stay inside the data directory");
  }
  if (must_exist) {
    if (!fs::is_regular_file(real, ec)) Fail(404, "snapshot '" + user_path + "' not found");
    return real.string();
  }
  // Never write into a collection's own folder (its WAL, MANIFEST, config).
  fs::path dir = root;
  for (auto it = real_rel.begin(); it != real_rel.end(); ++it) {
    if (fs::exists(dir / "collection.json", ec)) {
      Fail(400, "snapshot paths must not point into a collection's folder");
    }
    dir /= *it;
  }
  if (fs::is_directory(real, ec)) Fail(400, "'path' names a directory");
  return real.string();
}

void Api::Snapshot(HttpRequest* req, HttpResponse* resp) {
  const std::string& name = req->params[0];
  element body = ParseBody(req, true);
  std::string target;
  if (auto p = Field(body, "path"); p && !p->is_null()) {
    target = ConfinePath(ToString(*p, "path"), false);
  }
  auto c = GetColl(name);
  char* path_out = nullptr;
  ErrMsg err;
  Check(aidb_db_snapshot(db_, name.c_str(), &path_out, err.out()), err);
  std::string snap = path_out ? path_out : "";
  aidb_free(path_out);
  if (!target.empty()) {
    std::error_code ec;
    fs::create_directories(fs::path(target).parent_path(), ec);
    if (ec) Fail(500, "create " + fs::path(target).parent_path().string() + ": " + ec.message());
    CopyFileDurably(snap, target);
  }
  aidb_snapshot_info info;
  std::memset(&info, 0, sizeof info);
  Check(aidb_snapshot_verify(target.empty() ? snap.c_str() : target.c_str(), &info, err.out()),
        err);
  Json j = SnapshotJson(info);
  j["collection"] = name;
  j["snapshot"] = fs::path(snap).filename().string();
  if (!target.empty()) j["copied_to"] = target;
  Json coll = CollectionJson(c->handle);
  j["wal_size_bytes"] = coll["wal_size_bytes"];
  j["wal_last_truncate"] = coll["wal_last_truncate"];
  Reply(resp, 200, j);
}

void Api::ListSnapshots(HttpRequest* req, HttpResponse* resp) {
  const std::string& name = req->params[0];
  aidb_snapshot_info* infos = nullptr;
  size_t count = 0;
  ErrMsg err;
  int st = aidb_db_list_snapshots(db_, name.c_str(), &infos, &count, err.out());
  if (st == AIDB_NOT_FOUND) Fail(404, "collection '" + name + "' not found");
  Check(st, err);
  Json arr = Json::array();
  for (size_t i = 0; i < count; ++i) arr.push_back(SnapshotJson(infos[i]));
  aidb_free(infos);
  Reply(resp, 200, Json{{"collection", name}, {"snapshots", std::move(arr)}});
}

void Api::Restore(HttpRequest* req, HttpResponse* resp) {
  const std::string& name = req->params[0];
  element body = ParseBody(req, false);
  auto s = FieldAny(body, {"snapshot", "path", "file"});
  if (!s) Fail(400, "'snapshot' is required");
  std::string snap = ToString(*s, "snapshot");
  std::string path;
  if (snap.find('/') == std::string::npos && snap != "." && snap != ".." && !snap.empty() &&
      snap.find('\0') == std::string::npos) {
    path = snap;  // a file in the collection's snapshots/ folder
  } else {
    path = ConfinePath(snap, true);
  }
  GetColl(name);  // 404 for an unknown collection
  ErrMsg err;
  Check(aidb_db_restore(db_, name.c_str(), path.c_str(), err.out()), err);
  Forget(name);
  auto c = GetColl(name);
  Json j = CollectionJson(c->handle);
  j["restored_from"] = snap;
  Reply(resp, 200, j);
}

void Api::Compact(HttpRequest* req, HttpResponse* resp) {
  auto c = GetColl(req->params[0]);
  ErrMsg err;
  Check(aidb_collection_compact(c->handle, err.out()), err);
  Reply(resp, 200, CollectionJson(c->handle));
}

void Api::Params(HttpRequest* req, HttpResponse* resp) {
  auto c = GetColl(req->params[0]);
  element body = ParseBody(req, false);
  auto ef = Field(body, "ef_search");
  if (!ef) {
    if (auto h = Field(body, "hnsw"); h && h->is_object()) ef = Field(*h, "ef_search");
  }
  if (!ef) Fail(400, "'ef_search' is required");
  uint32_t v = static_cast<uint32_t>(ToUint(*ef, "ef_search"));
  ErrMsg err;
  Check(aidb_collection_set_ef_search(c->handle, v, err.out()), err);
  c->ef_search = v;
  Reply(resp, 200, CollectionJson(c->handle));
}

void Api::Wal(HttpRequest* req, HttpResponse* resp) {
  uint64_t from = 0;
  std::string v;
  if (req->QueryParam("from_lsn", &v)) {
    if (v.empty() || v.size() > 20 || !std::all_of(v.begin(), v.end(), ::isdigit)) {
      Fail(400, "'from_lsn' must be a non-negative integer");
    }
    errno = 0;
    from = std::strtoull(v.c_str(), nullptr, 10);
    if (errno == ERANGE) Fail(400, "'from_lsn' is out of range");
  }
  auto c = GetColl(req->params[0]);
  aidb_wal_iterator* it = nullptr;
  ErrMsg err;
  Check(aidb_wal_iterator_open(c->handle, from, &it, err.out()), err);
  auto stream = std::make_unique<WalStream>(c, it);
  std::string first;
  int st = 0;
  std::string error;
  bool more = stream->Fill(&first, true, &st, &error);
  if (st != 0) Fail(HttpStatusFor(st), error);
  resp->status = 200;
  resp->content_type = "application/x-ndjson";
  resp->body = std::move(first);
  if (more) {
    resp->stream = std::move(stream);
  } else {
    // Everything fit: still chunked, so clients see one framing. A stream
    // that is already at its end just finishes.
    struct Done : BodyStream {
      bool Next(std::string*) override { return false; }
    };
    resp->stream = std::make_unique<Done>();
  }
}

}  // namespace aidbd
