// The daemon's cache of open collection handles, by name: one handle per
// collection, shared by every request (a handle is thread-safe), closed when
// the collection is dropped or restored and the last request using it ends.
#pragma once

#include <aidb.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace aidbd {

class CollectionHandles {
 public:
  // A cached collection handle (closed when the last user lets go).
  struct Coll {
    aidb_collection* handle = nullptr;
    uint32_t dim = 0;
    int index_kind = AIDB_INDEX_FLAT;
    std::atomic<uint32_t> ef_search{0};  // the collection's default (0 = adapts to k)
    std::string name;
    ~Coll();
  };

  explicit CollectionHandles(aidb_db* db) : db_(db) {}

  // The handle, opened on first use. Fails (ApiError) with 404 for an
  // unknown collection.
  std::shared_ptr<Coll> Get(const std::string& name);
  // The cached handle, or nullptr if it is not cached or the cache is locked
  // (never waits: for the event loop).
  std::shared_ptr<Coll> TryGet(const std::string& name);
  // Drops the cached handle (it closes once no request uses it).
  void Forget(const std::string& name);
  // Drops every handle; call before aidb_db_close().
  void Clear();

  // The names of the database's collections, sorted.
  std::vector<std::string> Names() const;

  // Runs `fn` (creating or dropping collection `name`; it may throw) under
  // the exclusive lock, so that no lookup opens a handle meanwhile, and then
  // takes the cached handle of `name` out of the cache. The caller lets it go
  // outside the lock.
  template <class Fn>
  std::shared_ptr<Coll> Exclusively(const std::string& name, Fn&& fn) {
    std::lock_guard<std::shared_mutex> lock(mu_);
    fn();
    std::shared_ptr<Coll> old;
    auto it = colls_.find(name);
    if (it != colls_.end()) {
      old = std::move(it->second);
      colls_.erase(it);
    }
    return old;
  }

 private:
  aidb_db* db_;
  std::shared_mutex mu_;  // shared for lookups, exclusive to open/create/drop
  std::unordered_map<std::string, std::shared_ptr<Coll>> colls_;
};

}  // namespace aidbd
