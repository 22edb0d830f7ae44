// aidbd's REST API over the public C API (aidb.h): one Handler (see handler.h)
// that routes, authenticates and serves the collection, point, search,
// snapshot and WAL routes of docs/http-api.md, and /health and /metrics.
//
// Its files: api.cc (routing, auth, dispatch, request metrics),
// api_collections.cc, api_points.cc, api_search.cc (incl. what runs on the
// event loop), api_snapshots.cc (snapshots, restore, the WAL feed),
// api_metrics.cc (/metrics), api_console.cc (the web console's page and
// GET /collections/:name/history, kept in history.h); handles.h (the
// collection handle cache), request.h and render.h (request JSON and
// answers, shared with other routers).
#pragma once

#include <aidb.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "handler.h"
#include "handles.h"
#include "history.h"
#include "metrics.h"
#include "request.h"

namespace aidbd {

struct ApiConfig {
  std::string data_dir;  // absolute, canonical
  // The directory a create's "wal_dir" must name (absolute, canonical): the
  // daemon's --data-dir. Empty: data_dir.
  std::string wal_dir;
  std::string api_key;  // empty: no authentication
  int64_t start_unix_ns = 0;
  // The console's history: one sample of every collection per interval.
  int64_t history_interval_ms = 10000;
  size_t history_samples = 360;
};

class Api : public Handler {
 public:
  Api(aidb_db* db, ApiConfig config);
  ~Api() override;

  bool Prepare(HttpRequest* req, HttpResponse* resp) override;
  // Serves on the event loop what is short and cannot wait: unfiltered HNSW
  // searches with a bounded walk (see kInline* in api_search.cc), through a
  // nonblocking engine call; everything else goes to Execute().
  bool TryInline(HttpRequest* req, HttpResponse* resp) override;
  void Execute(HttpRequest* req, HttpResponse* resp) override;
  void Completed(const HttpRequest& req, int status, double seconds) override;
  void ConnectionRefused(const char* reason) override { http_metrics_.ConnectionRefused(reason); }

  // Closes the cached collection handles; call before aidb_db_close().
  void ReleaseHandles();

  using Coll = CollectionHandles::Coll;

 private:
  // Why a search did not run on the event loop (aidb_http_searches_deferred_total).
  enum Deferral { kShape, kBusy, kPayload, kDeferralCount };
  // One search. With `on_loop` only if short and lock-free; else it answers
  // nothing, sets *why and returns false.
  bool SearchOne(const Coll& c, HttpRequest* req, HttpResponse* resp, bool on_loop,
                 Deferral* why = nullptr);

  void Metrics(HttpResponse* resp);
  void ListCollections(HttpResponse* resp);
  void CreateCollection(HttpRequest* req, HttpResponse* resp);
  void GetCollection(HttpRequest* req, HttpResponse* resp);
  void DropCollection(HttpRequest* req, HttpResponse* resp);
  void Compact(HttpRequest* req, HttpResponse* resp);
  void Params(HttpRequest* req, HttpResponse* resp);
  void Upsert(HttpRequest* req, HttpResponse* resp);
  void UpsertBatch(HttpRequest* req, HttpResponse* resp);
  void GetPoint(HttpRequest* req, HttpResponse* resp);
  void DeletePoint(HttpRequest* req, HttpResponse* resp);
  void Search(HttpRequest* req, HttpResponse* resp);
  void SearchBatch(HttpRequest* req, HttpResponse* resp);
  void Snapshot(HttpRequest* req, HttpResponse* resp);
  void ListSnapshots(HttpRequest* req, HttpResponse* resp);
  void Restore(HttpRequest* req, HttpResponse* resp);
  void Wal(HttpRequest* req, HttpResponse* resp);
  void GetHistory(HttpRequest* req, HttpResponse* resp);
  // Records a history sample of collection `name` (if it still exists), or
  // of every collection.
  void SampleHistory(const std::string& name);
  void SampleAllHistory();

  // A path from a request, resolved against the data dir and confined to it
  // (no "..", no symlinks, not inside a collection's own folder); opening it is
  // confined again (confined.h).
  std::string ConfinePath(const std::string& user_path, bool must_exist) const;

  aidb_db* db_;
  ApiConfig config_;
  HttpMetrics http_metrics_;
  std::atomic<uint64_t> searches_on_loop_{0};
  std::atomic<uint64_t> searches_deferred_[kDeferralCount] = {};
  CollectionHandles handles_;
  History history_;  // last: its sampler thread stops before handles_ go
};

}  // namespace aidbd
