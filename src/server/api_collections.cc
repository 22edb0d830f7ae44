// Collection routes: list, create, get, drop, compact, params.
#include <string>
#include <vector>

#include "api.h"
#include "render.h"

namespace aidbd {

void Api::ListCollections(HttpResponse* resp) {
  Json arr = Json::array();
  for (const auto& n : handles_.Names()) {
    try {
      auto c = handles_.Get(n);
      arr.push_back(CollectionJson(c->handle));
    } catch (const ApiError& e) {
      if (e.status != 404) throw;  // dropped meanwhile
    }
  }
  Reply(resp, 200, Json{{"collections", std::move(arr)}});
}

void Api::CreateCollection(HttpRequest* req, HttpResponse* resp) {
  element body = ParseBody(req, false);
  auto name_el = Field(body, "name");
  if (!name_el) Fail(400, "'name' is required");
  std::string name = ToString(*name_el, "name");
  if (!ValidName(name)) {
    Fail(400, "invalid collection name: names are 1 to 64 of A-Z a-z 0-9 _ -");
  }
  auto dim_el = FieldAny(body, {"dim", "dimension", "size"});
  if (!dim_el) Fail(400, "'dim' is required");
  uint64_t dim = ToUint(*dim_el, "dim", 65536);
  if (dim == 0) Fail(400, "'dim' must be at least 1");

  aidb_collection_options opts;
  aidb_collection_options_init(&opts);
  opts.name = name.c_str();
  opts.dim = static_cast<uint32_t>(dim);
  ErrMsg err;
  if (auto m = FieldAny(body, {"metric", "distance"})) {
    std::string metric = Lower(ToString(*m, "metric"));
    int v = 0;  // the library knows the aliases (euclid, l2, ip, dot_product, ...)
    if (aidb_metric_from_string(metric.c_str(), &v, nullptr) != AIDB_OK) {
      Fail(400, "unknown metric '" + metric + "': use cosine, euclidean (l2) or dot");
    }
    opts.metric = v;
  }
  auto hnsw = Field(body, "hnsw");
  if (auto ix = Field(body, "index")) {
    std::string kind = Lower(ToString(*ix, "index"));
    int v = 0;
    if (aidb_index_kind_from_string(kind.c_str(), &v, nullptr) != AIDB_OK) {
      Fail(400, "unknown index '" + kind + "': use flat, hnsw or ivf");
    }
    opts.index_kind = v;
  } else if (hnsw && !hnsw->is_null()) {
    opts.index_kind = AIDB_INDEX_HNSW;
  }
  if (hnsw && !hnsw->is_null()) {
    if (!hnsw->is_object()) Fail(400, "'hnsw' must be an object");
    if (auto v = Field(*hnsw, "m")) opts.hnsw_m = static_cast<uint32_t>(ToUint(*v, "hnsw.m"));
    if (auto v = Field(*hnsw, "ef_construction")) {
      opts.hnsw_ef_construction = static_cast<uint32_t>(ToUint(*v, "hnsw.ef_construction"));
    }
    if (auto v = Field(*hnsw, "ef_search")) {
      opts.hnsw_ef_search = static_cast<uint32_t>(ToUint(*v, "hnsw.ef_search"));
    }
  }
  handles_.Exclusively(name, [&] {
    int st = aidb_db_create_collection(db_, &opts, nullptr, err.out());
    if (st == AIDB_ALREADY_EXISTS) Fail(409, "collection '" + name + "' already exists");
    Check(st, err);
  });
  auto c = handles_.Get(name);
  Reply(resp, 201, CollectionJson(c->handle));
}

void Api::GetCollection(HttpRequest* req, HttpResponse* resp) {
  auto c = handles_.Get(req->params[0]);
  Reply(resp, 200, CollectionJson(c->handle));
}

void Api::DropCollection(HttpRequest* req, HttpResponse* resp) {
  const std::string& name = req->params[0];
  // The old handle closes when `old` goes, outside the cache's lock.
  std::shared_ptr<Coll> old = handles_.Exclusively(name, [&] {
    ErrMsg err;
    int st = aidb_db_drop_collection(db_, name.c_str(), err.out());
    if (st == AIDB_NOT_FOUND) Fail(404, "collection '" + name + "' not found");
    Check(st, err);
  });
  Reply(resp, 200, Json{{"name", name}, {"deleted", true}});
}

void Api::Compact(HttpRequest* req, HttpResponse* resp) {
  auto c = handles_.Get(req->params[0]);
  ErrMsg err;
  Check(aidb_collection_compact(c->handle, err.out()), err);
  Reply(resp, 200, CollectionJson(c->handle));
}

void Api::Params(HttpRequest* req, HttpResponse* resp) {
  auto c = handles_.Get(req->params[0]);
  element body = ParseBody(req, false);
  auto ef = Field(body, "ef_search");
  if (!ef) {
    if (auto h = Field(body, "hnsw"); h && h->is_object()) ef = Field(*h, "ef_search");
  }
  if (!ef) Fail(400, "'ef_search' is required");
  uint32_t v = static_cast<uint32_t>(ToUint(*ef, "ef_search"));
  ErrMsg err;
  Check(aidb_collection_set_ef_search(c->handle, v, err.out()), err);
  c->ef_search = v;
  Reply(resp, 200, CollectionJson(c->handle));
}

}  // namespace aidbd
