// The vector index interface. A collection owns one index; the index owns the
// vectors (so an index can lay them out next to its graph) and hands out slots:
// small dense integers the collection maps to point ids.
//
// Thread safety: every method may be called from many threads at once. Search
// runs concurrently with Add/Update/Remove; several Adds may run concurrently.
// The collection guarantees it never calls Update/Remove on a slot while an
// Add/Update/Remove of that same slot is in flight, and never passes a removed
// slot to Update/Remove again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/defaults.h"
#include "core/distance.h"
#include "core/snapshot_image.h"
#include "core/status.h"

namespace aidb::index {

using aidb::HnswParams;
using aidb::IndexConfig;
using aidb::IndexKind;

// A hit inside the index: higher score is better.
struct Hit {
  float score;
  uint32_t slot;
};

// Decides which slots a search may return. Implementations must be cheap and
// thread-safe. `EstimatedMatches` lets the index choose between a graph walk
// and an exact scan of the matching slots.
class SlotFilter {
 public:
  virtual ~SlotFilter() = default;
  virtual bool Allowed(uint32_t slot) const = 0;
  // Upper bound of the number of allowed slots, or -1 if unknown.
  virtual int64_t EstimatedMatches() const { return -1; }
  // If the filter can list its matching slots cheaply (payload index), fills
  // `out` and returns true.
  virtual bool ListMatches(std::vector<uint32_t>* out) const { return false; }
};

struct SearchParams {
  uint32_t k = kDefaultTopK;
  uint32_t ef = 0;                     // 0 = index default (IVF: partitions to probe)
  uint32_t rerank = 0;                 // IVF: candidates re-ranked exactly; 0 = default
  const SlotFilter* filter = nullptr;  // nullptr = every live slot
  bool exact = false;                  // brute force even on approximate indexes
  // Status::Busy instead of waiting for a writer's lock, or instead of an
  // HNSW walk far longer than ef predicts (HnswIndex::kNonblockingVisitsPerEf).
  bool nonblocking = false;
};

class VectorIndex {
 public:
  virtual ~VectorIndex() = default;

  virtual const IndexConfig& config() const = 0;

  // Stores a new vector and returns its slot. For cosine the index normalises
  // the vector (a zero vector stays zero). `vec` has config().dim floats.
  virtual Status Add(const float* vec, uint32_t* slot) = 0;
  // Adds n vectors (row-major), using up to `threads` threads (0 = all cores).
  // slots[i] receives the slot of row i.
  virtual Status AddBatch(const float* vecs, size_t n, uint32_t* slots, uint32_t threads) = 0;
  // Replaces the vector of a live slot.
  virtual Status Update(uint32_t slot, const float* vec) = 0;
  // Removes a live slot: searches stop returning it at once. The index may
  // reuse the slot for a later Add once nothing refers to it any more.
  virtual void Remove(uint32_t slot) = 0;
  // Copies the stored vector of a live slot (normalised for cosine).
  virtual void GetVector(uint32_t slot, float* out) const = 0;
  // Number of live slots.
  virtual uint64_t Size() const = 0;
  // One past the highest slot ever handed out.
  virtual uint32_t SlotLimit() const = 0;
  virtual bool IsLive(uint32_t slot) const = 0;

  // Top-k of `query` (config().dim floats, raw: the index normalises for
  // cosine), best first, into *out (cleared first).
  virtual Status Search(const float* query, const SearchParams& params,
                        std::vector<Hit>* out) const = 0;
  // The top-k of nq queries (row-major) with the same parameters:
  // (*out)[i] receives what Search gives for query i. The default runs
  // Search per query; an index may share work between the queries (IVF
  // scans each list once for all the queries probing it).
  virtual Status SearchBatch(const float* queries, size_t nq, const SearchParams& params,
                             std::vector<std::vector<Hit>>* out) const;

  // Runtime parameter change (HNSW ef_search); Unsupported for flat.
  virtual Status SetEfSearch(uint32_t ef) = 0;
  // Drops traces of removed slots (HNSW: relinks around tombstones).
  virtual Status Compact() = 0;

  // Snapshot support. Storage owns the file format; an index speaks plain
  // data (core/snapshot_image.h).
  // Save describes the index state (vectors of every slot below SlotLimit(),
  // graph) as an image and passes it to `sink` while it holds its lock: the
  // sink pulls the data through the image's fill functions. Returns the
  // sink's status.
  using ImageSink = std::function<Status(const IndexImage&)>;
  virtual Status Save(const ImageSink& sink) const = 0;
  // Replaces the state with a snapshot's (liveness: the slots the image's
  // point chunks give an id). Must not rebuild a graph; may keep pointers
  // into the image's memory, holding `keepalive` while it does.
  virtual Status Load(const SnapshotImage& image, KeepAlive keepalive) = 0;
};

// Creates an empty index for `config` (flat, HNSW or IVF). With
// config.vectors_on_disk (any kind), `vectors_path` names the
// vectors file (index/vector_file.h), created afresh.
Status CreateIndex(const IndexConfig& config, const std::string& vectors_path,
                   std::unique_ptr<VectorIndex>* out);
inline Status CreateIndex(const IndexConfig& config, std::unique_ptr<VectorIndex>* out) {
  return CreateIndex(config, std::string(), out);
}

}  // namespace aidb::index
