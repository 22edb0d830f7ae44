// Search routes: one query (on the event loop when short, see kInline*) and
// batches.
#include <algorithm>
#include <string>
#include <vector>

#include "api.h"
#include "render.h"

namespace aidbd {

namespace {

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
struct SearchSpec {
  std::vector<float> vector;
  uint32_t top_k = 10;
  uint32_t ef_search = 0;
  uint32_t ivf_rerank = 0;
  std::string filter;
  bool has_filter = false;
  bool with_payload = true;
  bool exact = false;

  bool SameOptions(const SearchSpec& o) const {
    return top_k == o.top_k && ef_search == o.ef_search && ivf_rerank == o.ivf_rerank &&
           has_filter == o.has_filter && filter == o.filter && with_payload == o.with_payload &&
           exact == o.exact && vector.size() == o.vector.size();
  }
  aidb_search_options Options() const {
    aidb_search_options opts;
    aidb_search_options_init(&opts);
    opts.top_k = top_k;
    opts.ef_search = ef_search;
    opts.ivf_rerank = ivf_rerank;
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
  if (auto e = Field(obj, "ef_search"))
    s->ef_search = static_cast<uint32_t>(ToUint(*e, "ef_search"));
  if (auto r = Field(obj, "ivf_rerank"))
    s->ivf_rerank = static_cast<uint32_t>(ToUint(*r, "ivf_rerank"));
  if (auto w = Field(obj, "with_payload")) s->with_payload = ToBool(*w, "with_payload");
  if (auto x = Field(obj, "exact")) s->exact = ToBool(*x, "exact");
}

struct ResultGuard {
  aidb_search_result* r = nullptr;
  ~ResultGuard() { aidb_search_result_free(r); }
};

}  // namespace

void Api::Search(HttpRequest* req, HttpResponse* resp) {
  auto c = handles_.Get(req->params[0]);
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
    if (aidb_search_result_hits_v2(result.r, 0, &hits, &count, nullptr) == AIDB_OK) {
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
  auto c = handles_.Get(req->params[0]);
  element body = ParseBody(req, false);
  auto items = FieldAny(body, {"searches", "queries"});
  if (!items || !items->is_array()) Fail(400, "'searches' must be an array of searches");
  SearchSpec defaults;
  ReadSearchOptions(body, &defaults);
  std::vector<SearchSpec> specs;
  simdjson::dom::array list = items->get_array().value_unsafe();
  uint64_t hits = 0;  // asked for: bounded like one search's, checked as parsed
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
    hits += std::max<uint32_t>(s.top_k, 1);
    if (hits > kMaxTopK) {
      Fail(400, "a batch may ask for at most " + std::to_string(kMaxTopK) +
                    " hits (its searches' top_k added up): split it");
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
    Check(aidb_collection_search_batch(c->handle, flat.data(), specs.size(), dim, &opts, &result.r,
                                       err.out()),
          err);
    for (size_t q = 0; q < specs.size(); ++q) {
      results.push_back(HitsJson(result.r, q, specs[0].with_payload));
    }
  } else {
    for (const auto& s : specs) {
      aidb_search_options opts = s.Options();
      ResultGuard result;
      Check(aidb_collection_search(c->handle, s.vector.data(), s.vector.size(), &opts, &result.r,
                                   err.out()),
            err);
      results.push_back(HitsJson(result.r, 0, s.with_payload));
    }
  }
  Reply(resp, 200, Json{{"results", std::move(results)}});
}

}  // namespace aidbd
