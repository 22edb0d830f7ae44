// The C ABI: a thin shim from aidb.h onto the engine. Every entry point is
// noexcept and funnels through Guard(), which turns C++ exceptions (bad_alloc,
// kj::Exception from Cap'n Proto, std::exception, anything) into statuses.
#include "aidb.h"

#include <fcntl.h>
#include <unistd.h>

#include <kj/exception.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "core/filter.h"
#include "core/log.h"
#include "core/names.h"
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

// Internal codes are the AIDB_* codes (status_check.cc asserts it): a cast.
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

// The other direction: copies a full-size output struct into the caller's,
// as much of it as the caller's struct_size covers (an older caller gets the
// fields it knows); the caller's struct_size is kept.
template <typename T>
void CopyOut(const T& full, T* out) {
  const size_t caller = out->struct_size;
  std::memcpy(out, &full, caller < sizeof(T) ? caller : sizeof(T));
  out->struct_size = caller;
}

// --- names ------------------------------------------------------------------
// The tables live in core/names.h (collection.json and the logs use them
// too); the C API adds the misuse checks and the error message.
template <typename T>
int ParseName(bool (*parse)(std::string_view, T*), const char* name, int* value,
              const char* out_name, const char* what, const char* expected, char** errmsg) {
  return Guard(errmsg, [&] {
    if (name == nullptr) return Misuse("name");
    if (value == nullptr) return Misuse(out_name);
    T v{};
    if (!parse(name, &v)) {
      return Status::InvalidArgument("unknown " + std::string(what) + " '" + name + "': expected " +
                                     expected);
    }
    *value = static_cast<int>(v);
    return Status::OK();
  });
}

// The name of a C API enum value; "unknown" outside [0, count).
template <typename T>
const char* NameOfInt(const char* (*name_of)(T), int v, int count) {
  return v >= 0 && v < count ? name_of(static_cast<T>(v)) : "unknown";
}

aidb::storage::Durability ToDurability(int mode) {
  return static_cast<aidb::storage::Durability>(mode);
}

// batch_interval_ms 0 means the default.
uint32_t BatchInterval(uint32_t ms) { return ms ? ms : AIDB_DEFAULT_BATCH_INTERVAL_MS; }

Status BuildConfig(const aidb_collection_options& o, engine::CollectionConfig* c) {
  if (o.name == nullptr) return Status::InvalidArgument("collection name is required");
  c->name = o.name;
  c->index.dim = o.dim;
  if (o.metric < AIDB_METRIC_COSINE || o.metric > AIDB_METRIC_DOT) {
    return Status::InvalidArgument("unknown metric " + std::to_string(o.metric));
  }
  if (o.index_kind < AIDB_INDEX_FLAT || o.index_kind > AIDB_INDEX_IVF) {
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
  c->index.ivf.nlist = o.ivf_nlist;
  c->index.ivf.nprobe = o.ivf_nprobe;
  c->index.ivf.rerank = o.ivf_rerank;
  if (o.quantization < AIDB_QUANTIZATION_SQ8 || o.quantization > AIDB_QUANTIZATION_NONE) {
    return Status::InvalidArgument("unknown quantization " + std::to_string(o.quantization) +
                                   ": expected AIDB_QUANTIZATION_SQ8 or AIDB_QUANTIZATION_NONE");
  }
  if (o.vectors_on_disk != 0 && o.vectors_on_disk != 1) {
    return Status::InvalidArgument("vectors_on_disk must be 0 or 1, not " +
                                   std::to_string(o.vectors_on_disk));
  }
  c->index.quantization = static_cast<aidb::Quantization>(o.quantization);
  c->index.vectors_on_disk = o.vectors_on_disk != 0;
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
  req.ivf_rerank = o.ivf_rerank;
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

// Copies src to `tmp` (fsynced), checks the copy, renames it over dest and
// fsyncs the directory. The caller removes `tmp` on failure.
Status CopySnapshotTo(const std::string& src, const std::string& dest, const std::string& tmp,
                      engine::SnapshotInfo* si) {
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    if (errno == ENOENT) return Status::NotFound("snapshot file not found: " + src);
    return Status::IOErrorFromErrno("cannot open " + src, errno);
  }
  // A stale `tmp` (or a symlink planted there) is replaced, never followed.
  ::unlink(tmp.c_str());
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (out < 0) {
    int e = errno;
    ::close(in);
    return Status::IOErrorFromErrno("cannot create " + tmp, e);
  }
  std::vector<char> buf(1 << 20);
  Status s;
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      s = Status::IOErrorFromErrno("cannot read " + src, errno);
      break;
    }
    s = aidb::storage::WriteAll(out, buf.data(), static_cast<size_t>(n), tmp);
    if (!s.ok()) break;
  }
  ::close(in);
  if (s.ok()) s = aidb::storage::Fsync(out, tmp);
  if (::close(out) != 0 && s.ok()) s = Status::IOErrorFromErrno("cannot close " + tmp, errno);
  if (s.ok()) s = engine::ReadSnapshotInfo(tmp, si).WithContext(src);
  if (s.ok()) s = aidb::storage::RenameDurable(tmp, dest);
  return s;
}

Status ExportSnapshot(const std::string& src, const std::string& dest, aidb_snapshot_info* info) {
  if (dest.empty()) return Status::InvalidArgument("dest_path is empty");
  AIDB_RETURN_IF_ERROR(aidb::storage::CreateDirsDurable(aidb::storage::DirName(dest)));
  const std::string tmp = dest + ".tmp";
  engine::SnapshotInfo si;
  Status s = CopySnapshotTo(src, dest, tmp, &si);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  si.path = dest;
  if (info != nullptr) FillSnapshotInfo(si, info);
  return Status::OK();
}

// Whether some folder from db_dir down to path's parent holds a collection's
// configuration file (see aidb_db_path_is_managed).
bool PathIsManaged(const std::string& db_dir, const std::string& path) {
  namespace fs = std::filesystem;
  fs::path root = fs::path(db_dir).lexically_normal();
  fs::path p(path);
  if (p.is_relative()) p = root / p;
  fs::path rel = p.lexically_normal().lexically_relative(root);
  if (rel.empty() || rel == "." || *rel.begin() == "..") return false;
  fs::path dir = root;
  for (const fs::path& part : rel) {
    if (aidb::storage::FileExists((dir / engine::kConfigFile).string())) return true;
    dir /= part;
  }
  return false;
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
  return ParseName(aidb::ParseMetric, name, metric, "metric", "metric", aidb::MetricChoices(),
                   errmsg);
}

int aidb_index_kind_from_string(const char* name, int* kind, char** errmsg) {
  return ParseName(aidb::ParseIndexKind, name, kind, "kind", "index kind", aidb::IndexKindChoices(),
                   errmsg);
}

int aidb_durability_from_string(const char* name, int* mode, char** errmsg) {
  return ParseName(aidb::ParseDurability, name, mode, "mode", "durability mode",
                   aidb::DurabilityChoices(), errmsg);
}

const char* aidb_metric_name(int metric) {
  return NameOfInt(aidb::MetricName, metric, AIDB_METRIC_DOT + 1);
}
const char* aidb_index_kind_name(int kind) {
  return NameOfInt(aidb::IndexKindName, kind, AIDB_INDEX_IVF + 1);
}
const char* aidb_durability_name(int mode) {
  return NameOfInt(aidb::DurabilityName, mode, AIDB_DURABILITY_NONE + 1);
}

void aidb_set_log_callback(aidb_log_fn fn, void* user_data, int min_level) {
  if (min_level < AIDB_LOG_DEBUG) min_level = AIDB_LOG_DEBUG;
  if (min_level > AIDB_LOG_OFF) min_level = AIDB_LOG_OFF;
  aidb::log::SetCallback(fn, user_data, static_cast<aidb::log::Level>(min_level));
}

int aidb_uuid_generate_v2(char out[37], char** errmsg) {
  return Guard(errmsg, [&] {
    if (out == nullptr) return Misuse("out");
    aidb::Uuid::Random().ToChars(out);
    return Status::OK();
  });
}

void aidb_uuid_generate(char out[37]) { (void)aidb_uuid_generate_v2(out, nullptr); }

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
  o->metric = AIDB_DEFAULT_METRIC;
  o->index_kind = AIDB_DEFAULT_INDEX_KIND;
  o->hnsw_m = AIDB_DEFAULT_HNSW_M;
  o->hnsw_ef_construction = AIDB_DEFAULT_HNSW_EF_CONSTRUCTION;
  o->hnsw_ef_search = AIDB_DEFAULT_HNSW_EF_SEARCH;
  o->durability = AIDB_DEFAULT_DURABILITY;
  o->batch_interval_ms = AIDB_DEFAULT_BATCH_INTERVAL_MS;
  o->wal_mmap_threshold = AIDB_DEFAULT_WAL_MMAP_THRESHOLD;
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
    co.wal.batch_interval_ms = BatchInterval(o.batch_interval_ms);
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
    if (c.index.kind == aidb::IndexKind::kIvf) {
      info.ivf_nlist = c.index.ivf.nlist;
      info.ivf_nprobe = c.index.ivf.nprobe;
      info.ivf_rerank = c.index.ivf.rerank;
    }
    info.quantization = static_cast<int>(c.index.quantization);
    info.vectors_on_disk = c.index.vectors_on_disk ? 1 : 0;
    CopyOut(info, out);
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

int aidb_collection_upsert(aidb_collection* coll, const char* id, const float* vector, size_t dim,
                           const char* payload, size_t payload_len, char** errmsg) {
  return Guard(errmsg, [&] {
    if (coll == nullptr) return Misuse("coll");
    if (id == nullptr) return Misuse("id");
    if (vector == nullptr) return Misuse("vector");
    std::string_view pv;
    if (payload != nullptr) {
      pv = std::string_view(
          payload, payload_len == static_cast<size_t>(-1) ? std::strlen(payload) : payload_len);
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
    AIDB_RETURN_IF_ERROR(
        coll->impl->Get(id, vector_out, dim, payload_out ? &payload : nullptr, &has));
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
  o->top_k = AIDB_DEFAULT_TOP_K;
  o->with_payload = AIDB_DEFAULT_WITH_PAYLOAD;
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

int aidb_collection_search_batch(aidb_collection* coll, const float* queries, size_t nq, size_t dim,
                                 const aidb_search_options* opts, aidb_search_result** out,
                                 char** errmsg) {
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

int aidb_search_result_hits_v2(const aidb_search_result* result, size_t query,
                               const aidb_hit** hits, size_t* count, char** errmsg) {
  // On the search path of every host: no Guard, nothing here throws, and the
  // message is only built on failure.
  if (result == nullptr || hits == nullptr || count == nullptr) {
    return Guard(errmsg, [&] {
      return Misuse(result == nullptr ? "result" : hits == nullptr ? "hits" : "count");
    });
  }
  if (query >= result->hits.size()) {
    return Guard(errmsg, [&] {
      return Status::InvalidArgument("query " + std::to_string(query) +
                                     " out of range: the "
                                     "result holds " +
                                     std::to_string(result->hits.size()));
    });
  }
  *hits = result->hits[query].data();
  *count = result->hits[query].size();
  return AIDB_OK;
}

int aidb_search_result_hits(const aidb_search_result* result, size_t query, const aidb_hit** hits,
                            size_t* count) {
  return aidb_search_result_hits_v2(result, query, hits, count, nullptr);
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

int aidb_recover(aidb_collection* coll, const aidb_recover_options* opts, aidb_recover_stats* stats,
                 char** errmsg) {
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
      default:
        return Status::InvalidArgument("unknown recovery target " + std::to_string(o.target));
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
      CopyOut(full, stats);
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
    CopyOut(full, out);
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
  o->create_if_missing = AIDB_DEFAULT_CREATE_IF_MISSING;
  o->durability = AIDB_DEFAULT_DURABILITY;
  o->batch_interval_ms = AIDB_DEFAULT_BATCH_INTERVAL_MS;
  o->wal_mmap_threshold = AIDB_DEFAULT_WAL_MMAP_THRESHOLD;
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
    dbo.batch_interval_ms = BatchInterval(o.batch_interval_ms);
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

int aidb_db_open_collection(aidb_db* db, const char* name, aidb_collection** out, char** errmsg) {
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

int aidb_db_list_snapshots(aidb_db* db, const char* name, aidb_snapshot_info** infos, size_t* count,
                           char** errmsg) {
  return Guard(errmsg, [&] {
    if (db == nullptr) return Misuse("db");
    if (name == nullptr) return Misuse("name");
    if (infos == nullptr) return Misuse("infos");
    if (count == nullptr) return Misuse("count");
    std::vector<engine::SnapshotInfo> list;
    AIDB_RETURN_IF_ERROR(db->impl->ListSnapshots(name, &list));
    auto* arr =
        static_cast<aidb_snapshot_info*>(std::calloc(list.size() + 1, sizeof(aidb_snapshot_info)));
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
    if (!aidb::storage::FileExists(path))
      return Status::NotFound(std::string("WAL file not found: ") + path);
    aidb::storage::WalReadStats st;
    AIDB_RETURN_IF_ERROR(aidb::storage::ReadWal(
        path, AIDB_DEFAULT_WAL_MMAP_THRESHOLD,
        [](const aidb::storage::WalRecord&) { return Status::OK(); }, &st));
    if (records != nullptr) *records = st.records;
    if (valid_bytes != nullptr) *valid_bytes = st.valid_bytes;
    return Status::OK();
  });
}

int aidb_snapshot_export(const char* src_path, const char* dest_path, aidb_snapshot_info* info,
                         char** errmsg) {
  return Guard(errmsg, [&] {
    if (src_path == nullptr) return Misuse("src_path");
    if (dest_path == nullptr) return Misuse("dest_path");
    return ExportSnapshot(src_path, dest_path, info);
  });
}

int aidb_db_collection_path(const char* db_dir, const char* name, int which, char** path,
                            char** errmsg) {
  return Guard(errmsg, [&] {
    if (db_dir == nullptr) return Misuse("db_dir");
    if (name == nullptr) return Misuse("name");
    if (path == nullptr) return Misuse("path");
    AIDB_RETURN_IF_ERROR(engine::ValidateCollectionName(name));
    std::string dir = db_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    std::string p = dir + "/" + name;
    switch (which) {
      case AIDB_PATH_COLLECTION: break;
      case AIDB_PATH_CONFIG: p += std::string("/") + engine::kConfigFile; break;
      case AIDB_PATH_WAL: p += std::string("/") + engine::kWalFile; break;
      case AIDB_PATH_MANIFEST: p += std::string("/") + engine::kManifestFile; break;
      case AIDB_PATH_SNAPSHOTS: p += std::string("/") + engine::kSnapshotDir; break;
      default: return Status::InvalidArgument("unknown path kind " + std::to_string(which));
    }
    *path = CopyString(p);
    if (*path == nullptr) return Status::NoMemory("out of memory");
    return Status::OK();
  });
}

int aidb_db_path_is_managed(const char* db_dir, const char* path, int* managed, char** errmsg) {
  return Guard(errmsg, [&] {
    if (db_dir == nullptr) return Misuse("db_dir");
    if (path == nullptr) return Misuse("path");
    if (managed == nullptr) return Misuse("managed");
    *managed = PathIsManaged(db_dir, path) ? 1 : 0;
    return Status::OK();
  });
}

}  // extern "C"
