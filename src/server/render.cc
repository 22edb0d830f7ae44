#include "render.h"

#include <filesystem>

#include "request.h"
#include "util.h"

namespace aidbd {

namespace fs = std::filesystem;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void Reply(HttpResponse* resp, int status, const Json& j) {
  resp->status = status;
  resp->body = Dump(j);
}

Json PayloadJson(const char* text, size_t len) {
  if (!text) return nullptr;
  Json j = Json::parse(text, text + len, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::string(text, len);  // not expected from the library
  return j;
}

Json HitsJson(const aidb_search_result* result, size_t query, bool with_payload) {
  const aidb_hit* hits = nullptr;
  size_t count = 0;
  ErrMsg err;
  int st = aidb_search_result_hits_v2(result, query, &hits, &count, err.out());
  if (st != AIDB_OK) Fail(500, "reading search hits: " + err.str(st));
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
  } else {
    j["hnsw"] = nullptr;  // always present: the original's clients read it
  }
  // Configured values (0 = automatic); null unless the index is IVF.
  j["ivf"] = info.index_kind == AIDB_INDEX_IVF ? Json{{"nlist", info.ivf_nlist},
                                                      {"nprobe", info.ivf_nprobe},
                                                      {"rerank", info.ivf_rerank}}
                                               : Json();
  j["quantization"] = info.quantization == AIDB_QUANTIZATION_NONE ? "none" : "sq8";
  j["vectors_on_disk"] = info.vectors_on_disk != 0;
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

}  // namespace aidbd
