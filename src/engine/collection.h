// Collection: one index + its id map and payloads + its WAL.
//
// Write path: validate everything, encode one WAL record, Wal::Commit (group
// commit; durable per mode), then apply to memory in LSN order. Nothing is
// applied unless its record was written (and synced, in fsync mode).
//
// Locks, outermost first:
//   - the WAL's exclusive section (Wal::Exclusive; `write_mu_` for in-memory
//     collections): snapshot_to, load_snapshot, recover; blocks writers.
//   - `mu_` (writer-preferring RwLock): searches and reads hold it shared for their whole
//     duration; applies take it exclusively only to update the id map
//     (expensive index insertion runs before, under no collection lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "core/defaults.h"
#include "core/filter.h"
#include "core/payload_slot.h"
#include "core/rwlock.h"
#include "core/status.h"
#include "core/uuid.h"
#include "engine/config.h"
#include "index/index.h"
#include "storage/wal.h"
#include "storage/wal_iterator.h"

namespace aidb::engine {

struct CollectionOptions {
  CollectionConfig config;
  std::string wal_path;  // empty: in memory only, nothing logged
  storage::WalOptions wal;
  // The vectors file of config.index.vectors_on_disk (index/vector_file.h);
  // empty: "<wal_path>.vectors". vectors_on_disk needs one of the two.
  std::string vectors_path;
};

struct SearchRequest {
  uint32_t top_k = kDefaultTopK;
  uint32_t ef_search = 0;   // HNSW breadth; IVF partitions to scan (0 = default)
  uint32_t ivf_rerank = 0;  // IVF candidates re-ranked exactly (0 = default)
  const filter::Filter* filter = nullptr;
  bool with_payload = true;
  bool exact = false;
  bool nonblocking = false;  // Status::Busy instead of waiting (see index::SearchParams)
};

struct SearchHit {
  Uuid id;
  // A distance, lower is better: 1 - cosine similarity (0 for an exact
  // match), the L2 distance ||a-b|| (not squared), or the negated dot product.
  float score = 0.f;
  std::string payload;  // empty: none (or not requested)
};

enum class RecoverTarget { kLatest, kToLsn, kToTime };

struct RecoverOptions {
  RecoverTarget target = RecoverTarget::kLatest;
  uint64_t lsn = 0;
  int64_t timestamp_ns = 0;
};

struct RecoverStats {
  uint64_t records_applied = 0;
  uint64_t records_skipped = 0;
  uint64_t bytes_read = 0;
  uint64_t torn_tail_bytes = 0;
  uint64_t last_lsn = 0;
  bool torn_tail = false;
  bool used_mmap = false;
};

struct SnapshotInfo {
  std::string path;
  uint64_t lsn = 0;
  uint64_t size_bytes = 0;
  int64_t created_unix_ns = 0;
  uint64_t count = 0;
  CollectionConfig config;
};

// Reads a snapshot's header and summary (verifies its checksum).
Status ReadSnapshotInfo(const std::string& path, SnapshotInfo* info);

class Collection {
 public:
  // Called inside snapshot_to after the snapshot file is published and before
  // the WAL is truncated (the database records it as the new baseline).
  using CheckpointHook = std::function<Status(const std::string& path, uint64_t lsn)>;

  static Status Open(const CollectionOptions& opts, std::shared_ptr<Collection>* out);
  ~Collection();
  Collection(const Collection&) = delete;
  Collection& operator=(const Collection&) = delete;

  // ids: textual UUIDs; vectors: n*dim floats; payloads: n entries (nullptr
  // entries or a null array = no payload).
  Status Upsert(size_t n, const char* const* ids, const float* vectors, size_t dim,
                const std::string_view* payloads);
  Status Delete(std::string_view id);
  // vector_out: dim floats or nullptr. *has_payload false when none.
  Status Get(std::string_view id, float* vector_out, size_t dim, std::string* payload,
             bool* has_payload) const;
  // The top_k nearest hits, ascending by distance (SearchHit::score).
  Status Search(const float* query, size_t dim, const SearchRequest& req,
                std::vector<SearchHit>* out) const;
  // threads: 0 = all cores.
  Status SearchBatch(const float* queries, size_t nq, size_t dim, const SearchRequest& req,
                     uint32_t threads, std::vector<std::vector<SearchHit>>* out) const;

  Status SetEfSearch(uint32_t ef);
  Status Compact();

  Status SnapshotTo(const std::string& path);
  Status LoadSnapshot(const std::string& path);
  Status Recover(const RecoverOptions& opts, RecoverStats* stats);
  // load_snapshot + replay of newer records + snapshot_to(new_baseline), with
  // the previous state kept on any failure.
  Status Restore(const std::string& snapshot_path, const std::string& new_baseline_path);

  storage::WalStats WalStats() const;
  // An iterator over the WAL's committed records from `from_lsn` on (change
  // feed); safe beside writers and snapshots. An in-memory collection has none.
  Status OpenWalIterator(uint64_t from_lsn, std::unique_ptr<storage::WalIterator>* out) const;
  const std::string& wal_path() const { return wal_path_; }
  CollectionConfig config() const;
  uint64_t Count() const;
  const std::string& name() const { return name_; }
  storage::Durability durability() const { return wal_opts_.durability; }

  // OK, or NotFound once dropped, or the error that stopped the collection.
  Status Usable() const { return CheckUsable(); }

  void SetCheckpointHook(CheckpointHook hook);
  // After the database dropped the collection: every call fails NotFound.
  void MarkDropped();
  // Syncs the WAL (batch/none modes).
  Status Flush();

 private:
  struct State;
  Collection() = default;

  Status CheckUsable() const;
  // The answer of a nonblocking read that found the collection locked.
  Status Busy() const;
  Status NewState(const CollectionConfig& config, std::unique_ptr<State>* out) const;
  // Applies a WAL record to `st`; `live` = st is the published state (locks).
  Status ApplyRecord(State& st, bool live, uint8_t op, std::string_view body, uint64_t lsn);
  // Upsert's work; Upsert adds the heap release after a bulk load.
  Status UpsertPoints(size_t n, const char* const* ids, const float* vectors, size_t dim,
                      const std::string_view* payloads);
  // `owned` (optional): the payloads as blocks the call may take (moved
  // into the state instead of copied; `payloads` is then not read).
  void ApplyUpsert(State& st, bool live, uint32_t n, const Uuid* ids, const float* vectors,
                   const std::string_view* payloads, uint64_t lsn, PayloadSlot* owned = nullptr);
  // The two halves of ApplyUpsert: the index insert into slots no reader can
  // reach yet (safe before the record is durable), then the mapping of the
  // ids to them (the point becomes visible). UnaddUpsert undoes the first
  // when the commit failed.
  Status AddUpsert(State& st, bool live, uint32_t n, const float* vectors, uint32_t* slots);
  void MapUpsert(State& st, bool live, const Status& added, uint32_t n, const Uuid* ids,
                 const uint32_t* slots, const std::string_view* payloads, uint64_t lsn,
                 PayloadSlot* owned = nullptr);
  void UnaddUpsert(State& st, const Status& added, uint32_t n, const uint32_t* slots);
  void ApplyDelete(State& st, bool live, const std::vector<Uuid>& ids, uint64_t lsn);
  // Logs (if there is a WAL) then applies.
  Status Commit(uint8_t op, std::string_view body, const std::function<void(uint64_t)>& apply);
  Status Exclusive(const std::function<Status()>& fn);
  Status SnapshotLocked(const std::string& path);
  Status BuildStateFromSnapshot(const std::string& path, std::unique_ptr<State>* out) const;
  Status ReplayInto(State& st, bool live, const RecoverOptions& opts, RecoverStats* stats);
  Status SearchLocked(const State& st, const float* query, const SearchRequest& req,
                      std::vector<SearchHit>* out) const;
  // DimensionMismatch / InvalidArgument (NaN, Inf) for nq queries of dim
  // floats; `batch` words the messages for SearchBatch.
  Status CheckQueries(const State& st, const float* queries, size_t nq, size_t dim,
                      bool batch) const;

  std::string name_;
  std::string wal_path_;
  std::string vectors_path_;  // vectors_on_disk (empty: not possible)
  storage::WalOptions wal_opts_;
  std::unique_ptr<storage::Wal> wal_;
  std::mutex write_mu_;   // serialises writers of in-memory collections
  uint64_t mem_lsn_ = 0;  // LSNs of in-memory collections (under write_mu_)

  mutable RwLock mu_;
  std::unique_ptr<State> state_;
  std::atomic<int> adds_in_flight_{0};

  std::mutex hook_mu_;
  CheckpointHook hook_;
  std::atomic<bool> dropped_{false};
  mutable std::mutex poison_mu_;
  Status poisoned_;  // set if a logged record could not be applied
};

}  // namespace aidb::engine
