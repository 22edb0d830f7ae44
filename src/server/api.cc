#include "api.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string_view>
#include <vector>

#include "api_console.h"
#include "render.h"
#include "util.h"

namespace aidbd {

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
  kHistory,
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
      pick("/collections", "GET, POST", {{"GET", kListCollections}, {"POST", kCreateCollection}});
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
      } else if (s == "history") {
        pick("/collections/:name/history", "GET", {{"GET", kHistory}});
      }
    } else if (n == 4 && seg[2] == "points") {
      pick("/collections/:name/points/:id", "GET, DELETE",
           {{"GET", kGetPoint}, {"DELETE", kDeletePoint}});
    }
  }
  return m;
}

}  // namespace

Api::Api(aidb_db* db, ApiConfig config)
    : db_(db),
      config_(std::move(config)),
      handles_(db),
      history_(config_.history_samples,
               std::chrono::milliseconds(std::max<int64_t>(config_.history_interval_ms, 1))) {
  history_.Start([this] { SampleAllHistory(); });
}
Api::~Api() { ReleaseHandles(); }

void Api::ReleaseHandles() {
  history_.Stop();  // its thread opens handles
  handles_.Clear();
}

bool Api::Prepare(HttpRequest* req, HttpResponse* resp) {
  // The console's page and assets hold no data: served without the API key.
  if (ServeConsole(req, resp)) return true;
  std::vector<std::string_view> seg = PathSegments(req->path);
  RouteMatch m = MatchRoute(req->method, seg);
  req->route = m.route;
  req->route_label = m.label;
  for (size_t k = 1; k < seg.size(); k += 2) req->params.emplace_back(seg[k]);

  if (m.route != kHealth && !Authorized(*req, config_.api_key, resp)) return true;
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
    // As the original server: `ok` as text. The version rides in a header.
    resp->content_type = "text/plain; charset=utf-8";
    resp->body = "ok";
    resp->headers.emplace_back("AIDB-Version", aidb_version());
    return true;
  }
  return false;
}

bool Api::TryInline(HttpRequest* req, HttpResponse* resp) {
  if (req->route != kSearch) return false;
  std::shared_ptr<Coll> c = handles_.TryGet(req->params[0]);
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
      case kHistory: GetHistory(req, resp); break;
      default: Fail(404, "no route");
    }
    // The console's chart shows a checkpoint's effect at once: sampled before
    // the answer goes out.
    if (resp->status < 300) {
      switch (req->route) {
        case kSnapshot:
        case kRestore:
        case kCompact: SampleHistory(req->params[0]); break;
        case kDropCollection: history_.Forget(req->params[0]); break;
        default: break;
      }
    }
    return true;
  });
  ReleaseLargeBodyParser();  // the answer holds no element of the body
}

void Api::Completed(const HttpRequest& req, int status, double seconds) {
  const std::string& label = req.route_label.empty() ? std::string("unmatched") : req.route_label;
  http_metrics_.Observe(label, req.method.empty() ? "UNKNOWN" : req.method, status, seconds);
  if (LogEnabled(LogLevel::kDebug)) {
    Log(LogLevel::kDebug, "request",
        KV().Add("method", req.method)
            .Add("path", req.path)
            .Add("status", status)
            .Add("seconds", seconds));
  }
}

}  // namespace aidbd
