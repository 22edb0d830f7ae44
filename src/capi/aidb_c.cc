// The C ABI: a thin shim from aidb.h onto the engine. Every entry point is
// noexcept and funnels through Guard(), which turns C++ exceptions (bad_alloc,
// kj::Exception from Cap'n Proto, std::exception, anything) into statuses.
#include "aidb.h"

#include <fcntl.h>
#include <unistd.h>

#include <kj/exception.h>

#include <cctype>
#include <cerrno>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/filter.h"
#include "core/log.h"
#include "core/uuid.h"
#include "engine/collection.h"
#include "engine/database.h"
#include "storage/file.h"
#include "storage/wal.h"
#include "storage/wal_codec.h"
#include "storage/wal_iterator.h"

using aidb::Status;
namespace engine = aidb::engine;

struct aidb_collection {
  std::shared_ptr<engine::Collection> impl;
};

struct aidb_db {
  std::unique_ptr<engine::Database> impl;
};

struct aidb_search_result {
  std::vector<std::vector<aidb_hit>> hits;
  std::vector<std::string> payloads;  // storage behind aidb_hit::payload
};

struct aidb_wal_iterator {
  std::unique_ptr<aidb::storage::WalIterator> impl;
  std::string json;  // behind aidb_wal_entry::json
};

namespace {

char* CopyString(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr) return nullptr;
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

int ToCode(const Status& s) { return static_cast<int>(s.code()); }

int Report(const Status& s, char** errmsg) {
  if (!s.ok() && errmsg != nullptr) *errmsg = CopyString(s.message());
  return ToCode(s);
}

// Runs fn (returning Status) with every exception mapped to a status.
template <typename Fn>
int Guard(char** errmsg, Fn&& fn) noexcept {
  try {
    return Report(fn(), errmsg);
  } catch (const std::bad_alloc&) {
    return Report(Status::NoMemory("out of memory"), errmsg);
  } catch (const kj::Exception& e) {
    return Report(Status::Internal(std::string("Cap'n Proto: ") + e.getDescription().cStr()),
                  errmsg);
  } catch (const std::exception& e) {
    return Report(Status::Internal(e.what()), errmsg);
  } catch (...) {
    return Report(Status::Internal("unknown exception"), errmsg);
  }
}

Status Misuse(const char* what) { return Status::Misuse(std::string(what) + " is NULL"); }

// Options structs carry their size: a caller compiled against an older header
// passes a smaller struct (missing fields take their defaults); a size outside
// any plausible range means the struct was never initialised.
template <typename T>
Status CheckStruct(const T* p, const char* name) {
  if (p == nullptr) return Misuse(name);
  const size_t size = p->struct_size;
  if (size < sizeof(size_t) || size > (1u << 16)) {
    return Status::Misuse(std::string(name) + "->struct_size is not set (use the _init function)");
  }
  return Status::OK();
}

// Copies a caller's options struct into a full-size local one, defaults first.
template <typename T>
T Widen(const T* p, void (*init)(T*)) {
  T out;
  init(&out);
  if (p != nullptr) {
    size_t n = p->struct_size < sizeof(T) ? p->struct_size : sizeof(T);
    std::memcpy(&out, p, n);
    out.struct_size = sizeof(T);
  }
  return out;
}

aidb::storage::Durability ToDurability(int mode) {
  return static_cast<aidb::storage::Durability>(mode);
}

Status BuildConfig(const aidb_collection_options& o, engine::CollectionConfig* c) {
  if (o.name == nullptr) return Status::InvalidArgument("collection name is required");
  c->name = o.name;
  c->index.dim = o.dim;
  if (o.metric < AIDB_METRIC_COSINE || o.metric > AIDB_METRIC_DOT) {
    return Status::InvalidArgument("unknown metric " + std::to_string(o.metric));
  }
  if (o.index_kind < AIDB_INDEX_FLAT || o.index_kind > AIDB_INDEX_HNSW) {
    return Status::InvalidArgument("unknown index kind " + std::to_string(o.index_kind));
  }
  if (o.durability < AIDB_DURABILITY_FSYNC || o.durability > AIDB_DURABILITY_NONE) {
    return Status::InvalidArgument("unknown durability mode " + std::to_string(o.durability));
  }
  c->index.metric = static_cast<aidb::Metric>(o.metric);
  c->index.kind = static_cast<aidb::index::IndexKind>(o.index_kind);
  c->index.hnsw.m = o.hnsw_m;
  c->index.hnsw.ef_construction = o.hnsw_ef_construction;
  c->index.hnsw.ef_search = o.hnsw_ef_search;
  return engine::ValidateConfig(*c);
}

Status ParseFilter(const char* json, std::unique_ptr<aidb::filter::Filter>* out) {
  if (json == nullptr) return Status::OK();
  return aidb::filter::Filter::Parse(json, out);
}

void FillResult(aidb_search_result* r, std::vector<std::vector<engine::SearchHit>>& all) {
  size_t npay = 0;
  for (auto& q : all) npay += q.size();
  r->payloads.reserve(npay);
  r->hits.resize(all.size());
  for (size_t qi = 0; qi < all.size(); ++qi) {
    auto& out = r->hits[qi];
    out.resize(all[qi].size());
    for (size_t i = 0; i < all[qi].size(); ++i) {
      engine::SearchHit& h = all[qi][i];
      aidb_hit& a = out[i];
      std::memset(&a, 0, sizeof(a));
      h.id.ToChars(a.id);
      a.score = h.score;
      if (!h.payload.empty()) {
        r->payloads.push_back(std::move(h.payload));
        a.payload = r->payloads.back().c_str();
        a.payload_len = r->payloads.back().size();
      }
    }
  }
}

engine::SearchRequest ToRequest(const aidb_search_options& o, const aidb::filter::Filter* f) {
  engine::SearchRequest req;
  req.top_k = o.top_k;
  req.ef_search = o.ef_search;
  req.filter = f;
  req.with_payload = o.with_payload != 0;
  req.exact = o.exact != 0;
  req.nonblocking = o.nonblocking != 0;
  return req;
}

void FillSnapshotInfo(const engine::SnapshotInfo& s, aidb_snapshot_info* out) {
  std::memset(out, 0, sizeof(*out));
  std::strncpy(out->path, s.path.c_str(), sizeof(out->path) - 1);
  out->lsn = s.lsn;
  out->size_bytes = s.size_bytes;
  out->created_unix_ns = s.created_unix_ns;
  out->count = s.count;
}

}  // namespace

extern "C" {

const char* aidb_version(void) { return AIDB_VERSION; }
int aidb_version_number(void) { return AIDB_VERSION_NUMBER; }

const char* aidb_status_name(int status) {
  if (status < 0 || status > AIDB_BUSY) return "UNKNOWN";
  return Status::CodeName(static_cast<Status::Code>(status));
}

void aidb_free(void* ptr) { std::free(ptr); }

void aidb_free_string_array(char** strings, size_t count) {
  if (strings == nullptr) return;
  for (size_t i = 0; i < count; ++i) std::free(strings[i]);
  std::free(strings);
}

int aidb_metric_from_string(const char* name, int* metric, char** errmsg) {
  return Guard(errmsg, [&] {
    if (name == nullptr) return Misuse("name");
    if (metric == nullptr) return Misuse("metric");
    std::string n = name;
    for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (n == "cosine") *metric = AIDB_METRIC_COSINE;
    else if (n == "euclidean" || n == "euclid" || n == "l2") *metric = AIDB_METRIC_EUCLIDEAN;
    else if (n == "dot" || n == "ip" || n == "inner_product") *metric = AIDB_METRIC_DOT;
    else
      return Status::InvalidArgument("unknown metric '" + std::string(name) +
                                     "': expected cosine, euclidean or dot");
    return Status::OK();
  });
}

int aidb_index_kind_from_string(const char* name, int* kind, char** errmsg) {
  return Guard(errmsg, [&] {
    if (name == nullptr) return Misuse("name");
    if (kind == nullptr) return Misuse("kind");
    std::string n = name;
    for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (n == "flat") *kind = AIDB_INDEX_FLAT;
    else if (n == "hnsw") *kind = AIDB_INDEX_HNSW;
    else
      return Status::InvalidArgument("unknown index kind '" + std::string(name) +
                                     "': expected flat or hnsw");
    return Status::OK();
  });
}

int aidb_durability_from_string(const char* name, int* mode, char** errmsg) {
  return Guard(errmsg, [&] {
    if (name == nullptr) return Misuse("name");
    if (mode == nullptr) return Misuse("mode");
    std::string n = name;
    for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (n == "fsync") *mode = AIDB_DURABILITY_FSYNC;
    else if (n == "batch") *mode = AIDB_DURABILITY_BATCH;
    else if (n == "none") *mode = AIDB_DURABILITY_NONE;
    else
      return Status::InvalidArgument("unknown durability mode '" + std::string(name) +
                                     "': expected fsync, batch or none");
    return Status::OK();
  });
}

const char* aidb_metric_name(int metric) {
  switch (metric) {
    case AIDB_METRIC_COSINE: return "cosine";
    case AIDB_METRIC_EUCLIDEAN: return "euclidean";
    case AIDB_METRIC_DOT: return "dot";
  }
  return "unknown";
}

const char* aidb_index_kind_name(int kind) {
  switch (kind) {
    case AIDB_INDEX_FLAT: return "flat";
    case AIDB_INDEX_HNSW: return "hnsw";
  }
  return "unknown";
}

const char* aidb_durability_name(int mode) {
  switch (mode) {
    case AIDB_DURABILITY_FSYNC: return "fsync";
    case AIDB_DURABILITY_BATCH: return "batch";
    case AIDB_DURABILITY_NONE: return "none";
  }
  return "unknown";
}

void aidb_set_log_callback(aidb_log_fn fn, void* user_data, int min_level) {
  if (min_level < AIDB_LOG_DEBUG) min_level = AIDB_LOG_DEBUG;
  if (min_level > AIDB_LOG_OFF) min_level = AIDB_LOG_OFF;
  aidb::log::SetCallback(fn, user_data, static_cast<aidb::log::Level>(min_level));
}

void aidb_uuid_generate(char out[37]) {
  if (out == nullptr) return;
  aidb::Uuid::Random().ToChars(out);
}

int aidb_uuid_canonical(const char* id, char out[37], char** errmsg) {
  return Guard(errmsg, [&] {
    if (id == nullptr) return Misuse("id");
    if (out == nullptr) return Misuse("out");
    aidb::Uuid u;
    AIDB_RETURN_IF_ERROR(aidb::Uuid::Parse(id, &u));
    u.ToChars(out);
    return Status::OK();
  });
}

// --- collections ------------------------------------------------------------

void aidb_collection_options_init(aidb_collection_options* o) {
  if (o == nullptr) return;
  std::memset(o, 0, sizeof(*o));
  o->struct_size = sizeof(*o);
  o->metric = AIDB_METRIC_COSINE;
  o->index_kind = AIDB_INDEX_FLAT;
  o->hnsw_m = 16;
  o->hnsw_ef_construction = 200;
  o->hnsw_ef_search = 0;
  o->durability = AIDB_DURABILITY_FSYNC;
  o->batch_interval_ms = 10;
  o->wal_mmap_threshold = 1u << 20;
}

int aidb_collection_open(const aidb_collection_options* opts, aidb_collection** out,
                         char** errmsg) {
  return Guard(errmsg, [&] {
    AIDB_RETURN_IF_ERROR(CheckStruct(opts, "opts"));
    if (out == nullptr) return Misuse("out");
    aidb_collection_options o = Widen(opts, aidb_collection_options_init);
    engine::CollectionOptions co;
    AIDB_RETURN_IF_ERROR(BuildConfig(o, &co.config));
    if (o.wal_path != nullptr) co.wal_path = o.wal_path;
    co.wal.durability = ToDurability(o.durability);
    co.wal.batch_interval_ms = o.batch_interval_ms ? o.batch_interval_ms : 10;
    co.wal.mmap_threshold = o.wal_mmap_threshold;
    auto h = std::make_unique<aidb_collection>();
    AIDB_RETURN_IF_ERROR(engine::Collection::Open(co, &h->impl));
    *out = h.release();
    return Status::OK();
  });
}

void aidb_collection_close(aidb_collection* coll) {
  if (coll == nullptr) return;
  try {
    // The last handle of a standalone collection syncs its WAL.
    if (coll->impl.use_count() == 1) (void)coll->impl->Flush();
    delete coll;
  } catch (...) {
  }
}

void aidb_collection_info_init(aidb_collection_info* info) {
  if (info == nullptr) return;
  std::memset(info, 0, sizeof(*info));
  info->struct_size = sizeof(*info);
}

int aidb_collection_get_info(aidb_collection* coll, aidb_collection_info* out, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    AIDB_RETURN_IF_ERROR(CheckStruct(out, "out"));
    AIDB_RETURN_IF_ERROR(coll->impl->Usable());
    aidb_collection_info info;
    aidb_collection_info_init(&info);
    engine::CollectionConfig c = coll->impl->config();
    std::strncpy(info.name, c.name.c_str(), sizeof(info.name) - 1);
    info.dim = c.index.dim;
    info.metric = static_cast<int>(c.index.metric);
    info.index_kind = static_cast<int>(c.index.kind);
    info.hnsw_m = c.index.hnsw.m;
    info.hnsw_ef_construction = c.index.hnsw.ef_construction;
    info.hnsw_ef_search = c.index.hnsw.ef_search;
    info.durability = static_cast<int>(coll->impl->durability());
    info.count = coll->impl->Count();
    size_t n = out->struct_size < sizeof(info) ? out->struct_size : sizeof(info);
    size_t caller_size = out->struct_size;
    std::memcpy(out, &info, n);
    out->struct_size = caller_size;
    return Status::OK();
  });
}

int aidb_collection_count(aidb_collection* coll, uint64_t* count, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    if (count == nullptr) return Misuse("count");
    AIDB_RETURN_IF_ERROR(coll->impl->Usable());
    *count = coll->impl->Count();
    return Status::OK();
  });
}

int aidb_collection_set_ef_search(aidb_collection* coll, uint32_t ef_search, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    return coll->impl->SetEfSearch(ef_search);
  });
}

int aidb_collection_upsert(aidb_collection* coll, const char* id, const float* vector,
                           size_t dim, const char* payload, size_t payload_len, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    if (id == nullptr) return Misuse("id");
    if (vector == nullptr) return Misuse("vector");
    std::string_view pv;
    if (payload != nullptr) {
      pv = std::string_view(payload, payload_len == static_cast<size_t>(-1) ? std::strlen(payload)
                                                                            : payload_len);
    }
    const char* ids[1] = {id};
    return coll->impl->Upsert(1, ids, vector, dim, payload ? &pv : nullptr);
  });
}

int aidb_collection_upsert_batch(aidb_collection* coll, size_t n, const char* const* ids,
                                 const float* vectors, size_t dim, const char* const* payloads,
                                 char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    if (n == 0) return Status::OK();
    if (ids == nullptr) return Misuse("ids");
    if (vectors == nullptr) return Misuse("vectors");
    std::vector<std::string_view> pv;
    if (payloads != nullptr) {
      pv.resize(n);
      for (size_t i = 0; i < n; ++i) {
        if (payloads[i] != nullptr) pv[i] = std::string_view(payloads[i]);
      }
    }
    return coll->impl->Upsert(n, ids, vectors, dim, payloads ? pv.data() : nullptr);
  });
}

int aidb_collection_delete(aidb_collection* coll, const char* id, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    if (id == nullptr) return Misuse("id");
    return coll->impl->Delete(id);
  });
}

int aidb_collection_get(aidb_collection* coll, const char* id, float* vector_out, size_t dim,
                        char** payload_out, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    if (id == nullptr) return Misuse("id");
    std::string payload;
    bool has = false;
    AIDB_RETURN_IF_ERROR(coll->impl->Get(id, vector_out, dim, payload_out ? &payload : nullptr,
                                         &has));
    if (payload_out != nullptr) {
      *payload_out = nullptr;
      if (has) {
        *payload_out = CopyString(payload);
        if (*payload_out == nullptr) return Status::NoMemory("out of memory");
      }
    }
    return Status::OK();
  });
}

// --- search -----------------------------------------------------------------

void aidb_search_options_init(aidb_search_options* o) {
  if (o == nullptr) return;
  std::memset(o, 0, sizeof(*o));
  o->struct_size = sizeof(*o);
  o->top_k = 10;
  o->with_payload = 1;
}

int aidb_collection_search(aidb_collection* coll, const float* query, size_t dim,
                           const aidb_search_options* opts, aidb_search_result** out,
                           char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    if (query == nullptr) return Misuse("query");
    if (out == nullptr) return Misuse("out");
    if (opts != nullptr) AIDB_RETURN_IF_ERROR(CheckStruct(opts, "opts"));
    aidb_search_options o = Widen(opts, aidb_search_options_init);
    std::unique_ptr<aidb::filter::Filter> f;
    AIDB_RETURN_IF_ERROR(ParseFilter(o.filter, &f));
    std::vector<std::vector<engine::SearchHit>> all(1);
    AIDB_RETURN_IF_ERROR(coll->impl->Search(query, dim, ToRequest(o, f.get()), &all[0]));
    auto r = std::make_unique<aidb_search_result>();
    FillResult(r.get(), all);
    *out = r.release();
    return Status::OK();
  });
}

int aidb_collection_search_batch(aidb_collection* coll, const float* queries, size_t nq,
                                 size_t dim, const aidb_search_options* opts,
                                 aidb_search_result** out, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    if (queries == nullptr && nq > 0) return Misuse("queries");
    if (out == nullptr) return Misuse("out");
    if (opts != nullptr) AIDB_RETURN_IF_ERROR(CheckStruct(opts, "opts"));
    aidb_search_options o = Widen(opts, aidb_search_options_init);
    std::unique_ptr<aidb::filter::Filter> f;
    AIDB_RETURN_IF_ERROR(ParseFilter(o.filter, &f));
    std::vector<std::vector<engine::SearchHit>> all;
    AIDB_RETURN_IF_ERROR(
        coll->impl->SearchBatch(queries, nq, dim, ToRequest(o, f.get()), o.threads, &all));
    auto r = std::make_unique<aidb_search_result>();
    FillResult(r.get(), all);
    *out = r.release();
    return Status::OK();
  });
}

size_t aidb_search_result_query_count(const aidb_search_result* result) {
  return result ? result->hits.size() : 0;
}

int aidb_search_result_hits(const aidb_search_result* result, size_t query,
                            const aidb_hit** hits, size_t* count) {
  if (result == nullptr || hits == nullptr || count == nullptr) return AIDB_MISUSE;
  if (query >= result->hits.size()) return AIDB_INVALID_ARGUMENT;
  *hits = result->hits[query].data();
  *count = result->hits[query].size();
  return AIDB_OK;
}

void aidb_search_result_free(aidb_search_result* result) { delete result; }

// --- WAL, snapshots, recovery ----------------------------------------------

int aidb_collection_snapshot_to(aidb_collection* coll, const char* path, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    if (path == nullptr) return Misuse("path");
    return coll->impl->SnapshotTo(path);
  });
}

int aidb_collection_load_snapshot(aidb_collection* coll, const char* path, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    if (path == nullptr) return Misuse("path");
    return coll->impl->LoadSnapshot(path);
  });
}

void aidb_recover_options_init(aidb_recover_options* o) {
  if (o == nullptr) return;
  std::memset(o, 0, sizeof(*o));
  o->struct_size = sizeof(*o);
  o->target = AIDB_RECOVER_LATEST;
}

void aidb_recover_stats_init(aidb_recover_stats* s) {
  if (s == nullptr) return;
  std::memset(s, 0, sizeof(*s));
  s->struct_size = sizeof(*s);
}

int aidb_recover(aidb_collection* coll, const aidb_recover_options* opts,
                 aidb_recover_stats* stats, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    if (opts != nullptr) AIDB_RETURN_IF_ERROR(CheckStruct(opts, "opts"));
    if (stats != nullptr) AIDB_RETURN_IF_ERROR(CheckStruct(stats, "stats"));
    aidb_recover_options o = Widen(opts, aidb_recover_options_init);
    engine::RecoverOptions ro;
    switch (o.target) {
      case AIDB_RECOVER_LATEST: ro.target = engine::RecoverTarget::kLatest; break;
      case AIDB_RECOVER_TO_LSN: ro.target = engine::RecoverTarget::kToLsn; break;
      case AIDB_RECOVER_TO_TIME: ro.target = engine::RecoverTarget::kToTime; break;
      default: return Status::InvalidArgument("unknown recovery target " + std::to_string(o.target));
    }
    ro.lsn = o.lsn;
    ro.timestamp_ns = o.timestamp_ns;
    engine::RecoverStats rs;
    Status s = coll->impl->Recover(ro, &rs);
    if (stats != nullptr) {
      aidb_recover_stats full;
      aidb_recover_stats_init(&full);
      full.records_applied = rs.records_applied;
      full.records_skipped = rs.records_skipped;
      full.bytes_read = rs.bytes_read;
      full.torn_tail_bytes = rs.torn_tail_bytes;
      full.last_lsn = rs.last_lsn;
      full.torn_tail = rs.torn_tail ? 1 : 0;
      full.used_mmap = rs.used_mmap ? 1 : 0;
      size_t caller = stats->struct_size;
      std::memcpy(stats, &full, caller < sizeof(full) ? caller : sizeof(full));
      stats->struct_size = caller;
    }
    return s;
  });
}

void aidb_wal_info_init(aidb_wal_info* info) {
  if (info == nullptr) return;
  std::memset(info, 0, sizeof(*info));
  info->struct_size = sizeof(*info);
}

int aidb_wal_stats(aidb_collection* coll, aidb_wal_info* out, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    AIDB_RETURN_IF_ERROR(CheckStruct(out, "out"));
    AIDB_RETURN_IF_ERROR(coll->impl->Usable());
    aidb::storage::WalStats ws = coll->impl->WalStats();
    aidb_wal_info full;
    aidb_wal_info_init(&full);
    full.size_bytes = ws.size_bytes;
    full.has_last_truncate = ws.last_truncate_ns.has_value() ? 1 : 0;
    full.last_truncate_unix_ns = ws.last_truncate_ns.value_or(0);
    full.bytes_since_truncate = ws.bytes_since_truncate;
    full.last_lsn = ws.last_lsn;
    size_t caller = out->struct_size;
    std::memcpy(out, &full, caller < sizeof(full) ? caller : sizeof(full));
    out->struct_size = caller;
    return Status::OK();
  });
}

void aidb_wal_entry_init(aidb_wal_entry* entry) {
  if (entry == nullptr) return;
  std::memset(entry, 0, sizeof(*entry));
  entry->struct_size = sizeof(*entry);
}

int aidb_wal_iterator_open(aidb_collection* coll, uint64_t from_lsn, aidb_wal_iterator** out,
                           char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    if (out == nullptr) return Misuse("out");
    auto it = std::make_unique<aidb_wal_iterator>();
    AIDB_RETURN_IF_ERROR(coll->impl->OpenWalIterator(from_lsn, &it->impl));
    *out = it.release();
    return Status::OK();
  });
}

int aidb_wal_iterator_next(aidb_wal_iterator* it, aidb_wal_entry* entry, int* has_entry,
                           char** errmsg) {
  return Guard(errmsg, [&] {
    if (it == nullptr) return Misuse("it");
    if (has_entry == nullptr) return Misuse("has_entry");
    AIDB_RETURN_IF_ERROR(CheckStruct(entry, "entry"));
    *has_entry = 0;
    aidb::storage::WalRecord r;
    bool has = false;
    AIDB_RETURN_IF_ERROR(it->impl->Peek(&r, &has));
    if (!has) return Status::OK();
    AIDB_RETURN_IF_ERROR(
        aidb::storage::RenderRecordJson(r.lsn, r.timestamp_ns, r.op, r.body, &it->json));
    it->impl->Advance();
    aidb_wal_entry e;
    std::memset(&e, 0, sizeof(e));
    e.struct_size = sizeof(e);
    e.lsn = r.lsn;
    e.timestamp_ns = r.timestamp_ns;
    e.op = r.op;
    e.json = it->json.c_str();
    e.json_len = it->json.size();
    size_t caller = entry->struct_size;
    std::memcpy(entry, &e, caller < sizeof(e) ? caller : sizeof(e));
    entry->struct_size = caller;
    *has_entry = 1;
    return Status::OK();
  });
}

void aidb_wal_iterator_close(aidb_wal_iterator* it) { delete it; }

int aidb_collection_compact(aidb_collection* coll, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    return coll->impl->Compact();
  });
}

// --- databases --------------------------------------------------------------

void aidb_db_options_init(aidb_db_options* o) {
  if (o == nullptr) return;
  std::memset(o, 0, sizeof(*o));
  o->struct_size = sizeof(*o);
  o->create_if_missing = 1;
  o->durability = AIDB_DURABILITY_FSYNC;
  o->batch_interval_ms = 10;
  o->wal_mmap_threshold = 1u << 20;
}

int aidb_db_open(const char* dir, const aidb_db_options* opts, aidb_db** out, char** errmsg) {
  return Guard(errmsg, [&] {
    if (dir == nullptr) return Misuse("dir");
    if (out == nullptr) return Misuse("out");
    if (opts != nullptr) AIDB_RETURN_IF_ERROR(CheckStruct(opts, "opts"));
    aidb_db_options o = Widen(opts, aidb_db_options_init);
    if (o.durability < AIDB_DURABILITY_FSYNC || o.durability > AIDB_DURABILITY_NONE) {
      return Status::InvalidArgument("unknown durability mode " + std::to_string(o.durability));
    }
    engine::DatabaseOptions dbo;
    dbo.create_if_missing = o.create_if_missing != 0;
    dbo.durability = ToDurability(o.durability);
    dbo.batch_interval_ms = o.batch_interval_ms ? o.batch_interval_ms : 10;
    dbo.wal_mmap_threshold = o.wal_mmap_threshold;
    auto h = std::make_unique<aidb_db>();
    AIDB_RETURN_IF_ERROR(engine::Database::Open(dir, dbo, &h->impl));
    *out = h.release();
    return Status::OK();
  });
}

void aidb_db_close(aidb_db* db) {
  if (db == nullptr) return;
  try {
    delete db;
  } catch (...) {
  }
}

int aidb_db_create_collection(aidb_db* db, const aidb_collection_options* opts,
                              aidb_collection** out, char** errmsg) {
  return Guard(errmsg, [&] {
    if (db == nullptr) return Misuse("db");
    AIDB_RETURN_IF_ERROR(CheckStruct(opts, "opts"));
    aidb_collection_options o = Widen(opts, aidb_collection_options_init);
    engine::CollectionConfig config;
    AIDB_RETURN_IF_ERROR(BuildConfig(o, &config));
    std::shared_ptr<engine::Collection> c;
    AIDB_RETURN_IF_ERROR(db->impl->CreateCollection(config, &c));
    if (out != nullptr) {
      auto h = std::make_unique<aidb_collection>();
      h->impl = std::move(c);
      *out = h.release();
    }
    return Status::OK();
  });
}

int aidb_db_open_collection(aidb_db* db, const char* name, aidb_collection** out,
                            char** errmsg) {
  return Guard(errmsg, [&] {
    if (db == nullptr) return Misuse("db");
    if (name == nullptr) return Misuse("name");
    if (out == nullptr) return Misuse("out");
    auto h = std::make_unique<aidb_collection>();
    AIDB_RETURN_IF_ERROR(db->impl->GetCollection(name, &h->impl));
    *out = h.release();
    return Status::OK();
  });
}

int aidb_db_drop_collection(aidb_db* db, const char* name, char** errmsg) {
  return Guard(errmsg, [&] {
    if (db == nullptr) return Misuse("db");
    if (name == nullptr) return Misuse("name");
    return db->impl->DropCollection(name);
  });
}

int aidb_db_list_collections(aidb_db* db, char*** names, size_t* count, char** errmsg) {
  return Guard(errmsg, [&] {
    if (db == nullptr) return Misuse("db");
    if (names == nullptr) return Misuse("names");
    if (count == nullptr) return Misuse("count");
    std::vector<std::string> list = db->impl->ListCollections();
    char** arr = static_cast<char**>(std::calloc(list.size() + 1, sizeof(char*)));
    if (arr == nullptr) return Status::NoMemory("out of memory");
    for (size_t i = 0; i < list.size(); ++i) {
      arr[i] = CopyString(list[i]);
      if (arr[i] == nullptr) {
        aidb_free_string_array(arr, i);
        return Status::NoMemory("out of memory");
      }
    }
    *names = arr;
    *count = list.size();
    return Status::OK();
  });
}

int aidb_db_snapshot(aidb_db* db, const char* name, char** path_out, char** errmsg) {
  return Guard(errmsg, [&] {
    if (db == nullptr) return Misuse("db");
    if (name == nullptr) return Misuse("name");
    std::string path;
    AIDB_RETURN_IF_ERROR(db->impl->Snapshot(name, &path));
    if (path_out != nullptr) *path_out = CopyString(path);
    return Status::OK();
  });
}

int aidb_db_list_snapshots(aidb_db* db, const char* name, aidb_snapshot_info** infos,
                           size_t* count, char** errmsg) {
  return Guard(errmsg, [&] {
    if (db == nullptr) return Misuse("db");
    if (name == nullptr) return Misuse("name");
    if (infos == nullptr) return Misuse("infos");
    if (count == nullptr) return Misuse("count");
    std::vector<engine::SnapshotInfo> list;
    AIDB_RETURN_IF_ERROR(db->impl->ListSnapshots(name, &list));
    auto* arr = static_cast<aidb_snapshot_info*>(
        std::calloc(list.size() + 1, sizeof(aidb_snapshot_info)));
    if (arr == nullptr) return Status::NoMemory("out of memory");
    for (size_t i = 0; i < list.size(); ++i) FillSnapshotInfo(list[i], &arr[i]);
    *infos = arr;
    *count = list.size();
    return Status::OK();
  });
}

int aidb_db_restore(aidb_db* db, const char* name, const char* path, char** errmsg) {
  return Guard(errmsg, [&] {
    if (db == nullptr) return Misuse("db");
    if (name == nullptr) return Misuse("name");
    if (path == nullptr) return Misuse("path");
    return db->impl->Restore(name, path);
  });
}

int aidb_snapshot_verify(const char* path, aidb_snapshot_info* info, char** errmsg) {
  return Guard(errmsg, [&] {
    if (path == nullptr) return Misuse("path");
    engine::SnapshotInfo si;
    AIDB_RETURN_IF_ERROR(engine::ReadSnapshotInfo(path, &si));
    if (info != nullptr) FillSnapshotInfo(si, info);
    return Status::OK();
  });
}

int aidb_wal_verify(const char* path, uint64_t* records, uint64_t* valid_bytes, char** errmsg) {
  return Guard(errmsg, [&] {
    if (path == nullptr) return Misuse("path");
    if (!aidb::storage::FileExists(path)) return Status::NotFound(std::string("WAL file not found: ") + path);
    aidb::storage::WalReadStats st;
    AIDB_RETURN_IF_ERROR(aidb::storage::ReadWal(
        path, 1u << 20, [](const aidb::storage::WalRecord&) { return Status::OK(); }, &st));
    if (records != nullptr) *records = st.records;
    if (valid_bytes != nullptr) *valid_bytes = st.valid_bytes;
    return Status::OK();
  });
}

}  // extern "C"
