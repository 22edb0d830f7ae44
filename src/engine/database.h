// Database: a directory of collections (see aidb.h for the layout). Opening it
// brings every collection back: latest snapshot (MANIFEST), then WAL replay.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/defaults.h"
#include "engine/collection.h"

namespace aidb::engine {

// The files of a collection's folder <dir>/<name>/ (the layout of aidb.h; the
// C API hands these out through aidb_db_collection_path).
inline constexpr const char kConfigFile[] = "collection.json";
inline constexpr const char kWalFile[] = "wal.log";
inline constexpr const char kManifestFile[] = "MANIFEST";
// vectors_on_disk: the float vectors (index/vector_file.h), rebuilt at open.
inline constexpr const char kVectorsFile[] = "vectors.bin";
inline constexpr const char kSnapshotDir[] = "snapshots";

struct DatabaseOptions {
  bool create_if_missing = true;
  storage::Durability durability = storage::Durability::kFsync;
  uint32_t batch_interval_ms = kDefaultBatchIntervalMs;
  uint64_t wal_mmap_threshold = kDefaultWalMmapThreshold;
};

class Database {
 public:
  static Status Open(const std::string& dir, const DatabaseOptions& opts,
                     std::unique_ptr<Database>* out);
  ~Database();  // flushes every WAL
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status CreateCollection(const CollectionConfig& config, std::shared_ptr<Collection>* out);
  Status GetCollection(const std::string& name, std::shared_ptr<Collection>* out) const;
  Status DropCollection(const std::string& name);
  std::vector<std::string> ListCollections() const;

  // Snapshot into <dir>/<name>/snapshots/ (+ WAL truncation); *path receives it.
  Status Snapshot(const std::string& name, std::string* path);
  Status ListSnapshots(const std::string& name, std::vector<SnapshotInfo>* out) const;
  // `path`: absolute, or relative to <dir>/<name>/snapshots/.
  Status Restore(const std::string& name, const std::string& path);

  const std::string& dir() const { return dir_; }
  std::string CollectionDir(const std::string& name) const { return dir_ + "/" + name; }
  std::string SnapshotDir(const std::string& name) const {
    return CollectionDir(name) + "/" + kSnapshotDir;
  }

 private:
  Database() = default;
  Status OpenCollection(const std::string& name, std::shared_ptr<Collection>* out);
  CollectionOptions OptionsFor(const CollectionConfig& config) const;
  void InstallHook(const std::shared_ptr<Collection>& c);
  std::string NewSnapshotPath(const std::string& name, uint64_t lsn) const;

  std::string dir_;
  DatabaseOptions opts_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Collection>> collections_;
  int lock_fd_ = -1;  // flock on <dir>/LOCK: one process per directory
};

}  // namespace aidb::engine
