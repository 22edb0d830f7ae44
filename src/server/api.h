// The REST API of aidbd over the public C API (include/aidb.h): routing, auth,
// request JSON (simdjson), response JSON (nlohmann), status mapping, metrics.
#pragma once

#include <aidb.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "http_server.h"
#include "metrics.h"

namespace aidbd {

struct ApiConfig {
  std::string data_dir;  // absolute, canonical
  std::string api_key;   // empty: no authentication
  int64_t start_unix_ns = 0;
};

// The HTTP status for an AIDB_* status code (the one place that maps them):
//   INVALID_ARGUMENT, DIMENSION_MISMATCH, UNSUPPORTED -> 400
//   NOT_FOUND -> 404, ALREADY_EXISTS -> 409, NO_MEMORY and BUSY -> 503
//   IO_ERROR, CORRUPTION, MISUSE, INTERNAL and unknown codes -> 500
int HttpStatusFor(int aidb_status);

class Api : public Handler {
 public:
  Api(aidb_db* db, ApiConfig config);
  ~Api() override;

  bool Prepare(HttpRequest* req, HttpResponse* resp) override;
  // Serves on the event loop what is short and cannot wait: unfiltered HNSW
  // searches with a bounded walk (see kInline* in api.cc), through a
  // nonblocking engine call; everything else goes to Execute().
  bool TryInline(HttpRequest* req, HttpResponse* resp) override;
  void Execute(HttpRequest* req, HttpResponse* resp) override;
  void Completed(const HttpRequest& req, int status, double seconds) override;

  // Closes the cached collection handles; call before aidb_db_close().
  void ReleaseHandles();

  // A cached collection handle (closed when the last user lets go).
  struct Coll {
    aidb_collection* handle = nullptr;
    uint32_t dim = 0;
    int index_kind = AIDB_INDEX_FLAT;
    std::atomic<uint32_t> ef_search{0};  // the collection's default (0 = adapts to k)
    std::string name;
    ~Coll();
  };

 private:
  std::shared_ptr<Coll> GetColl(const std::string& name);
  // The cached handle, or nullptr if it is not cached or the cache is locked
  // (never waits).
  std::shared_ptr<Coll> TryGetColl(const std::string& name);
  // Why a search did not run on the event loop (aidb_http_searches_deferred_total).
  enum Deferral { kShape, kBusy, kPayload, kDeferralCount };
  // One search. With `on_loop` only if short and lock-free; else it answers
  // nothing, sets *why and returns false.
  bool SearchOne(const Coll& c, HttpRequest* req, HttpResponse* resp, bool on_loop,
                 Deferral* why = nullptr);
  void Forget(const std::string& name);

  void Metrics(HttpResponse* resp);
  void ListCollections(HttpResponse* resp);
  void CreateCollection(HttpRequest* req, HttpResponse* resp);
  void GetCollection(HttpRequest* req, HttpResponse* resp);
  void DropCollection(HttpRequest* req, HttpResponse* resp);
  void Upsert(HttpRequest* req, HttpResponse* resp);
  void UpsertBatch(HttpRequest* req, HttpResponse* resp);
  void GetPoint(HttpRequest* req, HttpResponse* resp);
  void DeletePoint(HttpRequest* req, HttpResponse* resp);
  void Search(HttpRequest* req, HttpResponse* resp);
  void SearchBatch(HttpRequest* req, HttpResponse* resp);
  void Snapshot(HttpRequest* req, HttpResponse* resp);
  void ListSnapshots(HttpRequest* req, HttpResponse* resp);
  void Restore(HttpRequest* req, HttpResponse* resp);
  void Compact(HttpRequest* req, HttpResponse* resp);
  void Params(HttpRequest* req, HttpResponse* resp);
  void Wal(HttpRequest* req, HttpResponse* resp);

  // A path from a request, resolved against the data dir and confined to it
  // (no "..", no symlink escape, not inside a collection's own folder).
  std::string ConfinePath(const std::string& user_path, bool must_exist) const;

  aidb_db* db_;
  ApiConfig config_;
  HttpMetrics http_metrics_;
  std::atomic<uint64_t> searches_on_loop_{0};
  std::atomic<uint64_t> searches_deferred_[kDeferralCount] = {};
  std::shared_mutex colls_mu_;  // shared for lookups, exclusive to open/create/drop
  std::unordered_map<std::string, std::shared_ptr<Coll>> colls_;
};

}  // namespace aidbd
