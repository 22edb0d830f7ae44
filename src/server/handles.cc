#include "handles.h"

#include "request.h"

namespace aidbd {

CollectionHandles::Coll::~Coll() { aidb_collection_close(handle); }

std::shared_ptr<CollectionHandles::Coll> CollectionHandles::Get(const std::string& name) {
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = colls_.find(name);
    if (it != colls_.end()) return it->second;
  }
  std::lock_guard<std::shared_mutex> lock(mu_);
  auto it = colls_.find(name);
  if (it != colls_.end()) return it->second;
  auto c = std::make_shared<Coll>();
  ErrMsg err;
  int st = aidb_db_open_collection(db_, name.c_str(), &c->handle, err.out());
  if (st == AIDB_NOT_FOUND) Fail(404, "collection '" + name + "' not found");
  Check(st, err);
  aidb_collection_info info;
  aidb_collection_info_init(&info);
  Check(aidb_collection_get_info(c->handle, &info, err.out()), err);
  c->dim = info.dim;
  c->index_kind = info.index_kind;
  c->ef_search = info.hnsw_ef_search;
  c->name = name;
  colls_[name] = c;
  return c;
}

std::shared_ptr<CollectionHandles::Coll> CollectionHandles::TryGet(const std::string& name) {
  std::shared_lock<std::shared_mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return nullptr;
  auto it = colls_.find(name);
  return it == colls_.end() ? nullptr : it->second;
}

void CollectionHandles::Forget(const std::string& name) {
  std::lock_guard<std::shared_mutex> lock(mu_);
  colls_.erase(name);
}

std::vector<std::string> CollectionHandles::Names() const {
  char** names = nullptr;
  size_t count = 0;
  ErrMsg err;
  Check(aidb_db_list_collections(db_, &names, &count, err.out()), err);
  std::vector<std::string> list(names, names + count);
  aidb_free_string_array(names, count);
  return list;
}

void CollectionHandles::Clear() {
  std::lock_guard<std::shared_mutex> lock(mu_);
  colls_.clear();
}

}  // namespace aidbd
