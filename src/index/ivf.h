// IvfIndex: k-means partitions (inverted lists), 4-bit product-quantised
// residual codes scored with in-register lookup tables (index/ivf_kernels.h),
// and an exact re-rank of the best candidates from the float vectors.
//
// Model. nlist centroids (k-means on a sample of 256 points per list,
// IvfTuning; nlist = ~sqrt(n) unless the config fixes it) partition the
// vectors by nearest centroid (L2; cosine vectors are normalised). Each vector's residual (vector -
// centroid) is product-quantised: `subspaces` groups of sub_dim consecutive dimensions (1 up to 64
// dims, 2 up to 256, else 4), 16 centroids per group, one 4-bit code each.
//
// Search. The query is scored against every centroid; the nprobe best lists
// are scanned. Approximate distances are
//   Euclidean: ||q - c||^2 + (||r||^2 + 2 c.r) - 2 q.r
//   dot/cosine: -(q.c) - q.r
// where r is the quantised residual: q.r comes from one lookup table per
// query (16 entries per subspace, quantised to 8 bits), the bracket is a
// float stored per vector. The best `rerank` candidates (filter checked
// before they enter) are re-scored exactly with the float vectors. With a
// known match count, a filter widens the probe by sqrt(1 / selectivity), or
// is answered by an exact scan of its listed matches when that reads fewer
// bytes; in any case lists are probed until nprobe are done and `rerank`
// matching candidates are held, so selective filters probe further.
//
// Batch. SearchBatch prepares up to 256 queries at a time, groups their
// probed lists by list and scans each list once for all of them (every
// query's nearest list first, then the rest; the kernel scores a block for
// up to four queries per load), with the same per-query thresholds,
// filters and re-rank: its hits equal Search's. Candidates are ranked by
// (approximate distance, slot), so the re-ranked set does not depend on the
// order lists are scanned in.
//
// Growth. Below `min_train` live points the index is an exact scan. Then a
// rebuild trains the model on a sample and assigns every vector, and runs
// again whenever the live count reaches 4x the count it was trained on. The
// first one runs in the thread of the write that crossed min_train (a bulk
// load returns trained); later ones on a background thread. A rebuild runs
// beside searches and writes: it holds the lock shared while
// it reads vectors in batches, trains with no lock, logs the slots written in
// the meantime, and takes the lock exclusively only to re-encode those and
// swap the new structure in (IvfTuning::background = false runs it inline).
//
// Vectors on disk. With IndexConfig::vectors_on_disk the float vectors live
// in a VectorFile (index/vector_file.h: a file-backed shared mapping the page
// cache may evict), one segment per chunk of slots; codes, centroids and
// lists stay in RAM. The re-rank, get(), Save and rebuilds read the floats
// through the mapping; Load copies a snapshot's vectors into the (reset) file.
//
// Thread safety: one writer-preferring RwLock (searches shared, writes
// exclusive), as FlatIndex.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/memory.h"
#include "core/rwlock.h"
#include "index/index.h"
#include "index/vector_file.h"

namespace aidb::index {

struct IvfTuning {
  uint32_t min_train = 2048;  // live points before the first training
  double regrow = 4.0;        // retrain when live >= regrow * trained count
  bool background = true;     // rebuild on a background thread
  uint32_t sub_dim = 0;       // 0: 1 up to 64 dims, 2 up to 256, else 4
  uint32_t kmeans_iters = 15;
  // k-means sample: nlist * this, at least 8192 (FAISS's 256 per centroid).
  uint32_t sample_per_list = 256;
  // Lloyd passes over every vector after the sample's k-means: 0 by
  // default (at 1M x 128 the larger sample alone gives better recall per
  // probed list than 128 per list + 3 passes, in less time; bench/README.md).
  uint32_t refine_passes = 0;
  uint64_t seed = 0x1f2e3d4c5b6a7988ull;
};

class IvfIndex final : public VectorIndex {
 public:
  explicit IvfIndex(const IndexConfig& config);
  IvfIndex(const IndexConfig& config, const IvfTuning& tuning);
  // With config.vectors_on_disk the float vectors live in `vectors` (required
  // then; ignored otherwise).
  IvfIndex(const IndexConfig& config, const IvfTuning& tuning, std::unique_ptr<VectorFile> vectors);
  ~IvfIndex() override;
  IvfIndex(const IvfIndex&) = delete;
  IvfIndex& operator=(const IvfIndex&) = delete;

  const IndexConfig& config() const override { return config_; }
  Status Add(const float* vec, uint32_t* slot) override;
  Status AddBatch(const float* vecs, size_t n, uint32_t* slots, uint32_t threads) override;
  Status Update(uint32_t slot, const float* vec) override;
  void Remove(uint32_t slot) override;
  void GetVector(uint32_t slot, float* out) const override;
  uint64_t Size() const override;
  uint32_t SlotLimit() const override;
  bool IsLive(uint32_t slot) const override;
  Status Search(const float* query, const SearchParams& params,
                std::vector<Hit>* out) const override;
  // The queries' hits as Search gives them, each list scanned once for all
  // the queries (of a group of a few hundred) that probe it.
  Status SearchBatch(const float* queries, size_t nq, const SearchParams& params,
                     std::vector<std::vector<Hit>>* out) const override;
  // Sets the default nprobe (0: automatic), as ef_search does for HNSW.
  Status SetEfSearch(uint32_t ef) override;
  Status Compact() override;
  Status Save(const ImageSink& sink) const override;
  Status Load(const SnapshotImage& image, KeepAlive keepalive) override;

  // Trains (or retrains) now, inline, whatever the size (at least 1 point).
  Status Train();
  // Waits until no background rebuild runs.
  void WaitIdle() const;
  bool Trained() const;
  uint32_t Nlist() const;
  uint32_t Subspaces() const;
  // The nprobe / rerank a search with these parameters uses.
  uint32_t EffectiveNprobe(uint32_t ef) const;
  uint32_t EffectiveRerank(uint32_t k, uint32_t rerank) const;
  // Bytes of vectors, codes, lists and model (for benchmarks); with
  // vectors_on_disk the float vectors are not counted (see VectorFileBytes).
  size_t MemoryBytes() const;
  // Vectors the last rebuild's final assignment searched the centroids for
  // (the k-means sample keeps its lists: the live count less the sample).
  uint64_t LastRebuildSearched() const { return last_searched_.load(std::memory_order_relaxed); }
  // MemoryBytes by part (benchmarks: the per-point breakdown).
  struct MemoryParts {
    size_t vectors = 0;     // float vectors in RAM (0 with vectors_on_disk)
    size_t codes = 0;       // 4-bit codes, blocks of 32 (the last one padded)
    size_t list_slots = 0;  // each list's slots
    size_t extra = 0;       // per-vector Euclidean correction (Euclidean only)
    size_t slot_maps = 0;   // per slot: its list and position, live flag, free list
    size_t model = 0;       // centroids (and packed), codebooks
    size_t spare = 0;       // list capacity beyond the entries
  };
  MemoryParts MemoryBreakdown() const;
  // Bytes of the vectors file mapped (0 without vectors_on_disk).
  uint64_t VectorFileBytes() const { return vfile_ ? vfile_->MappedBytes() : 0; }
  // The vectors file (benchmarks: eviction); null without vectors_on_disk.
  const VectorFile* vector_file() const { return vfile_.get(); }

 private:
  struct Model;
  struct List;
  struct Structure;
  struct Chunk {
    float* data = nullptr;
    uint32_t capacity_slots = 0;
    HugeBuffer owned;  // empty when data points into a mapping
  };

  float* SlotPtr(uint32_t slot) const {
    return chunks_[slot >> shift_].data + static_cast<size_t>(slot & mask_) * config_.dim;
  }
  // A free or new slot; with vectors_on_disk, fails when the vectors file
  // cannot get the space.
  Status AllocateSlotLocked(uint32_t* out);
  void StoreLocked(uint32_t slot, const float* vec);
  // Structure maintenance (lock held exclusively).
  void InsertLocked(Structure* st, uint32_t slot);
  void EraseLocked(Structure* st, uint32_t slot);
  void NoteDirtyLocked(uint32_t slot);
  // The nearest list of each slot's vector (kNone for slots not live), the
  // vectors scored a block at a time by the blocked kernel, in parallel;
  // known[i] (if given and not kNone) is taken for slots[i] as it is
  // (known may be out).
  // Returns how many vectors it searched.
  size_t NearestSlotsLocked(const Model& m, const uint32_t* slots, size_t n, uint32_t* out,
                            uint32_t threads, const uint32_t* known = nullptr) const;
  // Starts (or runs inline) a rebuild when the growth rules ask for one.
  void MaybeRebuild(std::unique_lock<RwLock>& lock);
  bool WantsRebuildLocked() const;
  void RunRebuild(uint64_t generation);
  // Exact top-k over the live slots (or `listed_matches`, or the filter's
  // list when it has one).
  void ExactSearch(const float* q, const SearchParams& params, std::vector<Hit>* out,
                   const std::vector<uint32_t>* listed_matches) const;
  // Search in steps (shared lock held), shared by Search and SearchBatch:
  // PrepareLocked scores the centroids (or takes their dot products with
  // the query, `qdot`, from a batch's matrix product) and builds the lookup
  // table (false: answered by an exact scan, into *out); ScanListLocked scans one list
  // for one query (code sums, then CollectLocked); ProbeFromLocked scans the query's lists in probe
  // order from a position; RerankLocked re-scores the candidates exactly.
  struct Query;
  bool PrepareLocked(const float* query, const SearchParams& params, Query* qs,
                     std::vector<Hit>* out, const float* qdot = nullptr) const;
  void ScanListLocked(Query* qs, uint32_t l, const SlotFilter* filter, const List* next) const;
  // The base of list l's approximate distances for the query (*base) and
  // their lower bound (returned).
  float ListLowerLocked(const Query& qs, uint32_t l, float* base) const;
  // The candidates of list l given its code sums `acc` into the reservoir.
  void CollectLocked(Query* qs, uint32_t l, const SlotFilter* filter, const uint16_t* acc) const;
  void ProbeFromLocked(Query* qs, uint32_t from, const SlotFilter* filter) const;
  void RerankLocked(Query* qs, uint32_t k, std::vector<Hit>* out) const;
  float ExactDist(const float* q, uint32_t slot) const;
  float ToScore(float d) const;

  const IndexConfig config_;
  const IvfTuning tuning_;
  const bool l2_;
  const uint32_t shift_, mask_;
  mutable RwLock mu_;
  std::vector<Chunk> chunks_;
  std::vector<uint8_t> live_;
  std::vector<uint32_t> free_;
  uint32_t slot_limit_ = 0;
  uint64_t size_ = 0;
  KeepAlive mapping_;
  std::unique_ptr<Structure> st_;      // null: untrained (exact scan)
  std::unique_ptr<VectorFile> vfile_;  // vectors_on_disk
  // Default nprobe (0: automatic); starts as config_.ivf.nprobe, changed by
  // SetEfSearch.
  std::atomic<uint32_t> nprobe_;
  std::atomic<uint64_t> last_searched_{0};

  // Rebuild state (under mu_ exclusively, except the thread handle).
  bool rebuilding_ = false;
  uint64_t generation_ = 0;      // bumped by Load: a running rebuild is dropped
  std::vector<uint32_t> dirty_;  // slots written while a rebuild runs
  mutable std::mutex thread_mu_;
  mutable std::condition_variable idle_cv_;
  std::thread worker_;
  std::atomic<bool> stop_{false};
};

}  // namespace aidb::index
