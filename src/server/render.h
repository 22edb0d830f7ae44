// JSON answers for route handlers (see handler.h): nlohmann's ordered JSON,
// and the renderings of the library's results that several routes share.
#pragma once

#include <aidb.h>

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "handler.h"

namespace aidbd {

using Json = nlohmann::ordered_json;

// Compact text; invalid UTF-8 is replaced, never thrown about.
std::string Dump(const Json& j);
// *resp = status + Dump(j).
void Reply(HttpResponse* resp, int status, const Json& j);
// A payload the library returned (JSON text), or null for none.
Json PayloadJson(const char* text, size_t len);
// [{"id", "score", "payload"}, ...] of query `query` of a search result.
Json HitsJson(const aidb_search_result* result, size_t query, bool with_payload);
// A collection's configuration, size and WAL state (the GET /collections/:name
// answer).
Json CollectionJson(aidb_collection* h);
// One snapshot file: file, path, lsn, size_bytes, created, count.
Json SnapshotJson(const aidb_snapshot_info& s);

}  // namespace aidbd
