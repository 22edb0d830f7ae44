// GET /metrics: the library's state per collection (points, WAL size and
// age), the event-loop search counters and the HTTP request metrics, in the
// Prometheus text format.
#include <algorithm>
#include <string>
#include <vector>

#include "api.h"
#include "util.h"

namespace aidbd {

void Api::Metrics(HttpResponse* resp) {
  struct Row {
    std::string name;
    aidb_wal_info wal;
    uint64_t points;
  };
  std::vector<Row> rows;
  for (const std::string& name : handles_.Names()) {
    try {
      auto c = handles_.Get(name);
      Row r{name, {}, 0};
      aidb_wal_info_init(&r.wal);
      if (aidb_wal_stats(c->handle, &r.wal, nullptr) != AIDB_OK) continue;
      if (aidb_collection_count(c->handle, &r.points, nullptr) != AIDB_OK) continue;
      rows.push_back(r);
    } catch (const ApiError&) {
      // dropped meanwhile
    }
  }

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

}  // namespace aidbd
