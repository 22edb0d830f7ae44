// Collection routes: list, create, get, drop, compact, params.
#include <optional>
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
  Reply(resp, 200, arr);  // a bare array, as the original server answered
}

void Api::CreateCollection(HttpRequest* req, HttpResponse* resp) {
  element body = ParseBody(req, false);
  CreateSpec spec = ParseCreate(body, config_.wal_dir.empty() ? config_.data_dir : config_.wal_dir);
  const std::string& name = spec.name;
  // As the original server: creating a collection that exists with the same
  // configuration succeeds and changes nothing; another configuration is 409.
  std::string difference;
  handles_.Exclusively(name, [&] {
    ErrMsg err;
    int st = aidb_db_create_collection(db_, spec.Options(), nullptr, err.out());
    if (st != AIDB_ALREADY_EXISTS) {
      Check(st, err);
      return;
    }
    aidb_collection* h = nullptr;
    Check(aidb_db_open_collection(db_, name.c_str(), &h, err.out()), err);
    aidb_collection_info info;
    aidb_collection_info_init(&info);
    st = aidb_collection_get_info(h, &info, err.out());
    aidb_collection_close(h);
    Check(st, err);
    difference = ConfigDifference(info, *spec.Options());
  });
  if (!difference.empty()) {
    Fail(409, "collection '" + name + "' already exists with another configuration: " + difference);
  }
  Reply(resp, 200, Json{{"ok", true}});
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
  // As the original server: true once an HNSW index is rebuilt, false for an
  // exact index (nothing to compact).
  if (c->index_kind != AIDB_INDEX_HNSW) {
    Reply(resp, 200, false);
    return;
  }
  ErrMsg err;
  Check(aidb_collection_compact(c->handle, err.out()), err);
  Reply(resp, 200, true);
}

void Api::Params(HttpRequest* req, HttpResponse* resp) {
  auto c = handles_.Get(req->params[0]);
  element body = ParseBody(req, false);
  auto ef = Field(body, "ef_search");
  if (!ef || ef->is_null()) {
    if (auto h = Field(body, "hnsw"); h && h->is_object()) ef = Field(*h, "ef_search");
  }
  std::optional<uint32_t> v;
  if (ef && !ef->is_null()) v = static_cast<uint32_t>(ToUint(*ef, "ef_search"));
  // As the original server: true for an HNSW index (a missing ef_search
  // changes nothing), false for an exact index (no parameters to set). For
  // an IVF index ef_search is the default number of lists probed.
  if (c->index_kind != AIDB_INDEX_HNSW && c->index_kind != AIDB_INDEX_IVF) {
    Reply(resp, 200, false);
    return;
  }
  if (v) {
    ErrMsg err;
    Check(aidb_collection_set_ef_search(c->handle, *v, err.out()), err);
    c->ef_search = *v;
  }
  Reply(resp, 200, true);
}

}  // namespace aidbd
