// The database the daemon fuzzers (api_fuzz.cc, http_fuzz.cc) serve: opened
// once per process in the scratch directory, with aidbd's Api over it, and
// reset to one small collection every so many inputs. Apart from
// fuzz_util.h because only these two targets link the daemon's sources.
#pragma once

#include <aidb.h>
#include <stdlib.h>

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string>

#include "api.h"
#include "fuzz_util.h"

namespace aidbfuzz {

struct ApiDb {
  aidb_db* db = nullptr;
  std::unique_ptr<aidbd::Api> api;
};

// Opens ScratchDir()/db (durability none: syncs cost nothing) and an Api
// whose data dir is its real path; aborts on failure.
inline void OpenApiDb(ApiDb* out) {
  std::string dir = ScratchDir() + "/db";
  aidb_db_options o;
  aidb_db_options_init(&o);
  o.durability = AIDB_DURABILITY_NONE;
  if (aidb_db_open(dir.c_str(), &o, &out->db, nullptr) != AIDB_OK) std::abort();
  aidbd::ApiConfig cfg;
  char real[4096];
  if (!realpath(dir.c_str(), real)) std::abort();
  cfg.data_dir = real;
  out->api = std::make_unique<aidbd::Api>(out->db, cfg);
}

// Keeps the database small: drops every collection, then recreates "c"
// (dim 4, euclidean) holding one point with a payload.
inline void ResetApiDb(ApiDb* s) {
  s->api->ReleaseHandles();
  char** names = nullptr;
  size_t n = 0;
  if (aidb_db_list_collections(s->db, &names, &n, nullptr) == AIDB_OK) {
    for (size_t i = 0; i < n; ++i) aidb_db_drop_collection(s->db, names[i], nullptr);
    aidb_free_string_array(names, n);
  }
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "c";
  o.dim = 4;
  o.metric = AIDB_METRIC_EUCLIDEAN;
  aidb_collection* c = nullptr;
  if (aidb_db_create_collection(s->db, &o, &c, nullptr) == AIDB_OK) {
    float v[4] = {1, 2, 3, 4};
    aidb_collection_upsert(c, "00000000-0000-4000-8000-000000000001", v, 4,
                           "{\"a\":1,\"t\":[\"x\"]}", static_cast<size_t>(-1), nullptr);
    aidb_collection_close(c);
  }
}

}  // namespace aidbfuzz
