// HNSW (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor
// search using Hierarchical Navigable Small World graphs"): hnswlib's algorithm
// (random level, greedy descent, base-layer search, the neighbour-selection
// heuristic) with USearch-style engineering.
//
// Memory layout. Slots live in chunks of 2^chunk_shift_ nodes that are never
// moved, so capacity grows while searches run. A chunk holds, per node, one
// 64-byte aligned block with the float vector (padded to 64 bytes). With the
// 8-bit walk (HnswTuning::sq8, the default from 64 dims) the block holds the
// 8-bit codes instead (128 bytes at 128 dims: two cache lines), and the float
// vectors sit in a second array of the chunk, read for construction, exact
// re-ranking and exact scans. With vectors_on_disk (IndexConfig) that array
// is a segment of a VectorFile (a file-backed shared mapping the page cache
// may evict) instead: anonymous memory holds only what the walk touches
// (links, codes, per-node state).
//
// The level-0 neighbour lists are a third array of the chunk, one record per
// node: uint16 version | uint16 count | 2*M slot numbers, 3 bytes each while
// every slot number fits 24 bits (HnswTuning::narrow_link_slots), else 4
// (100 or 132 bytes with M = 16). Before the first slot past that limit is
// handed out, every record is rewritten with 4-byte numbers (exclusive lock,
// WidenLinks). A list is written under the node's spin lock as a seqlock
// (version odd while the words change); a reader copies the words and
// retries if the version moved, so it never sees a torn slot number. The
// state (free / live / tombstone), a one-byte spin lock and the level-0 tree
// parent are small per-node arrays beside it. Upper-level lists (levels
// 1..top, M 4-byte entries each) are a separate small allocation per node
// (only ~1/M of the nodes have one).
//
// Concurrency. Neighbour lists are written under the owning node's spin lock
// and read with no lock: the upper-level lists with release stores and
// acquire loads (plain moves on x86), the level-0 lists as a seqlock (above),
// so a reader sees, for every entry, some id that was published after its
// vector was written. Entry point and top level are one 64-bit atomic (a
// mutex serialises the rare inserts that raise the top level). A shared mutex
// is held shared by Add/Update/Remove/Search/Save and exclusively only by
// Compact and Load, which free or replace nodes, and WidenLinks. Every search
// uses a thread-local context (a visited bitset, heaps): no global visited
// array.
//
// Update rewrites the vector in place and relinks the node. A search running
// at that moment may score that one node against a half-written vector (the
// benign race hnswlib has too); every other node is unaffected.
//
// Search. Greedy descent on the upper levels, then the base-layer walk with
// ef = SearchParams.ef, else the runtime ef_search, else max(64, 2k) (never
// below k); with codes, the ef candidates are re-scored exactly. A filter is
// evaluated during the walk: every node navigates, only live matching nodes
// enter the results. When the filter's estimate says matches are few
// (PrefersExactScan) the matching slots are scanned exactly instead (from
// ListMatches when the filter can list them), and whenever a walk returns
// fewer than min(k, matches) hits the exact scan runs: a filtered top-k always
// holds min(k, matches) hits. Tombstones are skipped the same way; Compact
// relinks each live node that pointed at one (its live neighbours plus the
// tombstones' live neighbours, through the selection heuristic) and frees the
// slots for reuse.
//
// Internal distances are "lower is better": squared L2, or -dot for cosine
// (vectors normalised on the way in) and dot.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include <vector>

#include "core/rwlock.h"
#include "index/index.h"
#include "index/sq8.h"
#include "index/vector_file.h"

namespace aidb::index {

// Engineering knobs that are not part of the collection config.
struct HnswTuning {
  // Walk the base layer with 8-bit scalar-quantised copies of the vectors
  // (per-dimension offset, one step for all dimensions, trained once on the
  // first >= 1000 vectors), scored in integer SIMD against an int16 query,
  // and re-rank the ef candidates with the float vectors: ~4x fewer bytes per
  // visited node, for 1 extra byte per dimension of memory. Used for
  // sq8_min_dim..8192 dimensions; construction always uses the floats.
  bool sq8 = true;
  uint32_t sq8_min_dim = 64;
  // Level-0 lists hold 3-byte slot numbers while the index has at most this
  // many slots (clamped to 2^24), 4-byte ones beyond (0: always 4 bytes).
  // Tests lower it to reach the widening with few points.
  uint32_t narrow_link_slots = 1u << 24;
};

class HnswIndex final : public VectorIndex {
 public:
  explicit HnswIndex(const IndexConfig& config);
  HnswIndex(const IndexConfig& config, const HnswTuning& tuning);
  // With config.vectors_on_disk: the float vectors live in `vectors` (which
  // the index sizes; required then).
  HnswIndex(const IndexConfig& config, const HnswTuning& tuning,
            std::unique_ptr<VectorFile> vectors);
  ~HnswIndex() override;
  HnswIndex(const HnswIndex&) = delete;
  HnswIndex& operator=(const HnswIndex&) = delete;

  const IndexConfig& config() const override { return config_; }
  Status Add(const float* vec, uint32_t* slot) override;
  Status AddBatch(const float* vecs, size_t n, uint32_t* slots, uint32_t threads) override;
  Status Update(uint32_t slot, const float* vec) override;
  void Remove(uint32_t slot) override;
  void GetVector(uint32_t slot, float* out) const override;
  uint64_t Size() const override { return live_.load(std::memory_order_relaxed); }
  uint32_t SlotLimit() const override { return slot_limit_.load(std::memory_order_acquire); }
  bool IsLive(uint32_t slot) const override;
  Status Search(const float* query, const SearchParams& params,
                std::vector<Hit>* out) const override;
  Status SetEfSearch(uint32_t ef) override;
  Status Compact() override;
  Status Save(const ImageSink& sink) const override;
  Status Load(const SnapshotImage& image, KeepAlive keepalive) override;

  // The ef a search with `k` and `ef` (0 = index default) really uses.
  uint32_t EffectiveEf(uint32_t k, uint32_t ef) const;
  // Bytes of anonymous memory held by vectors, graph and per-node state (for
  // benchmarks; with vectors_on_disk the float vectors are not counted: see
  // VectorFileBytes).
  size_t MemoryBytes() const;
  // MemoryBytes by part (bytes; benchmarks).
  struct MemoryParts {
    size_t codes_or_vectors = 0;  // node blocks: 8-bit codes, or the float vectors in RAM
    size_t links0 = 0;            // level-0 neighbour lists (with their count, lock, version)
    size_t node_state = 0;        // per-node state, level-0 tree parent
    size_t upper_pointers = 0;    // per-node pointer to the upper-level lists
    size_t upper_lists = 0;       // upper-level lists (~1/M of the nodes)
    size_t other = 0;             // chunk table, free list, quantiser, chunk headers
    size_t Total() const {
      return codes_or_vectors + links0 + node_state + upper_pointers + upper_lists + other;
    }
  };
  MemoryParts Memory() const;
  // Bytes of the vectors file mapped (0 without vectors_on_disk).
  uint64_t VectorFileBytes() const { return vfile_ ? vfile_->MappedBytes() : 0; }
  // The vectors file (benchmarks: eviction); null without vectors_on_disk.
  const VectorFile* vector_file() const { return vfile_.get(); }
  // Top level of the graph, -1 when empty.
  int MaxLevel() const;
  // Level-0 out-degree of a slot (tests).
  uint32_t Degree0(uint32_t slot) const;
  // True once searches walk with 8-bit codes (HnswTuning::sq8).
  bool Quantized() const { return sq_ready_.load(std::memory_order_acquire); }
  // Verification (tests, benchmarks): walks every level breadth-first from
  // the entry point, through live nodes and tombstones as searches do, and
  // returns the live slots some level of theirs cannot reach (ascending; empty
  // when every live node can be found). O(nodes * degree).
  std::vector<uint32_t> UnreachableSlots() const;

  // Whether a filtered search with `estimated_matches` (>= 0) matching slots
  // scans them exactly instead of walking the graph. A filtered walk keeps
  // expanding until it holds ef matching nodes, about ef / selectivity visits
  // of ~kWalkCostPerVisit distance computations each; the exact scan costs one
  // per match. So: scan when matches^2 <= kWalkCostPerVisit * ef * live (or
  // when there are at most kExactScanMinMatches).
  bool PrefersExactScan(int64_t estimated_matches, uint32_t k, uint32_t ef) const;
  static constexpr double kWalkCostPerVisit = 10.0;
  // A nonblocking search's walk may make this many distance computations per
  // unit of ef (an ordinary walk makes ~15-30).
  static constexpr uint32_t kNonblockingVisitsPerEf = 64;
  static constexpr int64_t kExactScanMinMatches = 1000;

 private:
  enum State : uint8_t { kFree = 0, kLive = 1, kDeleted = 2 };
  struct Flags {
    std::atomic<uint8_t> state{kFree};
    std::atomic<uint8_t> lock{0};
  };
  struct Chunk {
    // One mapping: (1 << chunk_shift_) node blocks of stride_ bytes, then, with
    // sq8, as many float vectors of vstride_ bytes (none when stride_ is 0 and
    // the vectors are on disk).
    char* nodes = nullptr;
    char* vecs = nullptr;
    // Another: the level-0 records, lstride_ bytes each.
    char* links = nullptr;
    std::unique_ptr<Flags[]> flags;
    std::unique_ptr<uint32_t[]> parent0;  // level-0 tree parent; through Parent() only
    // Per node: [level, then levels 1..level as (1 + m_) uint32 each:
    // count, ids..., then levels 1..level tree parent each], or null for
    // level-0 nodes.
    std::unique_ptr<std::atomic<uint32_t*>[]> upper;
  };
  struct Cand {
    float d;
    uint32_t id;
  };

 public:
  struct Ctx;  // thread-local search context (hnsw.cc)

 private:
  static Ctx& ThreadCtx();

  // --- node access
  Chunk* ChunkOf(uint32_t s) const {
    return chunks_[s >> chunk_shift_].load(std::memory_order_acquire);
  }
  char* Node(uint32_t s) const {
    return ChunkOf(s)->nodes + static_cast<size_t>(s & chunk_mask_) * stride_;
  }
  const float* Vec(uint32_t s) const {
    if (!split_) return reinterpret_cast<const float*>(Node(s));
    return reinterpret_cast<const float*>(ChunkOf(s)->vecs +
                                          static_cast<size_t>(s & chunk_mask_) * vstride_);
  }
  float* MutVec(uint32_t s) { return const_cast<float*>(Vec(s)); }
  uint8_t* Codes(uint32_t s) const { return reinterpret_cast<uint8_t*>(Node(s)); }
  // The level-0 record of s (see the layout above).
  char* Rec(uint32_t s) const {
    return ChunkOf(s)->links + static_cast<size_t>(s & chunk_mask_) * lstride_;
  }
  // Anonymous bytes of a chunk: node blocks, and the float vectors when they
  // are split off but not on disk.
  size_t ChunkBytes() const {
    return (stride_ + (split_ && vfile_ == nullptr ? vstride_ : 0)) << chunk_shift_;
  }
  Flags& FlagsOf(uint32_t s) const { return ChunkOf(s)->flags[s & chunk_mask_]; }
  size_t LinkStride(bool narrow) const {
    return (4 + (narrow ? 3 : 4) * size_t{m0_} + 3) & ~size_t{3};
  }
  uint8_t StateOf(uint32_t s) const;
  int LevelOf(uint32_t s) const;
  uint32_t MaxDegree(int level) const { return level == 0 ? m0_ : m_; }
  // Copies the neighbour ids of (s, level) into out; returns their number.
  uint32_t ReadLinks(uint32_t s, int level, uint32_t* out) const;
  // The level-0 list in record rec (3-byte numbers when narrow): a consistent
  // copy, retried while a writer changes it.
  uint32_t ReadRec0(const char* rec, bool narrow, uint32_t* out) const;
  // Replaces it (one writer at a time: the node's lock, or the index held
  // exclusively).
  void WriteRec0(char* rec, bool narrow, const uint32_t* ids, uint32_t n);
  // Replaces the list of (s, level); caller holds s's lock (or the index
  // exclusively).
  void WriteLinks(uint32_t s, int level, const uint32_t* ids, uint32_t n);
  void LockNode(uint32_t s) const;
  void UnlockNode(uint32_t s) const;
  // Reachability. On every level the links hold a spanning tree rooted at
  // the entry point: each node records its parent, the node whose list gave
  // it its first way in (set before that list is published), and a list never
  // drops a child of its owner. Parents are older than their children, so the
  // tree has no cycles and every node with a parent can be reached from the
  // entry point, whatever the neighbour selection prunes (hnswlib's heuristic
  // alone can drop every in-link of a node, or leave a group of nodes that
  // only link to each other). Parent(s, level) is kNoSlot while s has no way
  // in, s itself for the entry point. Compact and Load rebuild the tree.
  std::atomic_ref<uint32_t> Parent(uint32_t s, int level) const;
  // Replaces the list of (s, level) (caller holds s's lock) with ids[0..n),
  // nearest first, as the neighbour selection chose it: a child of s that the
  // selection dropped stays (appended while there is room, else in place of
  // the farthest chosen entry that is not a child of s); new entries without
  // a parent get s.
  void CommitLinks(uint32_t s, int level, const uint32_t* ids, uint32_t n);
  // Makes n link to s on `level` and n the parent of s (appended, or in place
  // of n's farthest neighbour that is not its child); false when every entry
  // of n's full list is its child. Takes n's lock.
  bool ForceLink(uint32_t n, uint32_t s, int level);
  // Breadth-first reachability on `level` from the entry point through every
  // non-free node; reach[slot] = 1 (reach sized SlotLimit()). With
  // set_parents, also records the tree of the walk as the parents.
  void MarkReachable(int level, std::vector<uint8_t>* reach, bool set_parents);
  void MarkReachable(int level, std::vector<uint8_t>* reach) const;
  // Rebuilds the parents from the links and links each unreachable live node
  // from reachable nodes near it (Compact, Load; exclusive lock held).
  void RebuildTreeLocked();

  float Dist(const float* a, const float* b) const {
    float r = kernel_(a, b, dim_);
    return l2_ ? r : -r;
  }
  // Dist, or for L2 possibly a partial sum > bound when the distance exceeds
  // bound (see distance::L2SquaredBounded).
  float DistBounded(const float* a, const float* b, float bound) const {
    if (bounded_ != nullptr) return bounded_(a, b, dim_, bound);
    return Dist(a, b);
  }
  float Score(float d) const;

  // --- slots
  // *widen: nothing allocated, the level-0 records must widen first (call
  // WidenLinks without holding struct_mu_, then retry).
  Status AllocSlot(uint32_t* slot, bool* widen);
  // Rewrites every level-0 record with 4-byte slot numbers (takes the
  // exclusive lock; no-op when already wide).
  Status WidenLinks();
  void ReleaseSlot(uint32_t slot);
  void EnsureChunk(uint32_t chunk_index);  // throws std::bad_alloc
  // vectors_on_disk: allocates the file's disk blocks up to slot s's vector.
  Status ReserveVectors(uint32_t s);
  uint32_t* NewUpper(int level);  // null on allocation failure
  size_t UpperBytes(int level) const;
  int RandomLevel();
  void PrepareVector(const float* in, float* out) const;
  // Writes the vector and state of a freshly allocated slot and links it.
  Status InitNode(uint32_t s, const float* vec);

  // --- graph
  void Insert(uint32_t s, int level);
  // Connects s on levels min(level, top)..0, starting the descent at ep/top.
  void LinkLevels(uint32_t s, int level, uint32_t ep, int top);
  uint32_t GreedyDescend(const float* q, uint32_t ep, int from_level, int to_level) const;
  // GreedyDescend with any distance: dist(slot, bound) -> distance (may stop
  // early above bound); prefetch(slot) asks for what dist will read.
  template <class DistFn, class PrefetchFn>
  uint32_t DescendT(DistFn dist, PrefetchFn prefetch, uint32_t ep, int from_level,
                    int to_level) const;
  // Base-layer search (algorithm 2): leaves in ctx.res (a max-heap) up to ef
  // nearest live nodes of `level` reachable from ep that pass `filter` and are
  // not `exclude`. Every node, matching or not, is used for navigation.
  void SearchLayer(Ctx& ctx, const float* q, uint32_t ep, size_t ef, int level,
                   const SlotFilter* filter, uint32_t exclude) const;
  template <bool kSq, class Q>
  void SearchLayerT(Ctx& ctx, const Q* q, uint32_t ep, size_t ef, int level,
                    const SlotFilter* filter, uint32_t exclude) const;

  // --- 8-bit scalar quantisation (HnswTuning::sq8, index/sq8.h)
  // Trains sq_ on n rows and encodes every node (exclusive lock held).
  void TrainQuantizerLocked(const float* rows, size_t n);
  void EncodeAllLocked();
  // Trains the quantiser (exclusive lock) once enough vectors exist or arrive.
  void MaybeTrain(const float* batch, size_t n);
  // Keeps up to max_m of `cands` (sorted by distance to the base) with the
  // neighbour-selection heuristic (algorithm 4).
  void SelectNeighbors(std::vector<Cand>* cands, uint32_t max_m) const;
  void AddReverseLink(uint32_t n, uint32_t s, int level);
  void ExactSearch(Ctx& ctx, const float* q, size_t k, const SlotFilter* filter,
                   bool use_list) const;
  // Frees every node; truncate_file: also empties the vectors file (not on
  // destruction: the file stays for inspection until the next open).
  void ResetLocked(bool truncate_file = true);
  Status LoadLocked(const SnapshotImage& image);

  static constexpr size_t kSqTrainMin = 1000;
  static constexpr size_t kSqTrainMax = 20000;
  static constexpr uint32_t kAdaptiveEfMin = 64;
  static constexpr uint32_t kAdaptiveEfPerK = 2;

  IndexConfig config_;
  uint32_t dim_;
  bool l2_;
  uint32_t m_, m0_, ef_construction_;
  std::atomic<uint32_t> ef_search_;
  double level_mult_;
  distance::Kernel kernel_;
  distance::BoundedKernel bounded_ = nullptr;  // L2 only

  uint32_t chunk_shift_, chunk_mask_;
  bool sq8_ = false;
  // The float vectors sit outside the node blocks (sq8_, or vectors on disk).
  bool split_ = false;
  std::unique_ptr<VectorFile> vfile_;  // vectors_on_disk
  std::atomic<bool> sq_ready_{false};
  Sq8Quantizer sq_;        // trained once sq_ready_ (changes under the exclusive lock)
  size_t vstride_;         // bytes per float vector (sq8: separate array)
  size_t stride_;          // bytes per node block
  size_t prefetch_bytes_;  // bytes of a node block prefetched before scoring it
  // Level-0 records: 3-byte slot numbers (narrow_) or 4-byte ones, lstride_
  // bytes per record. Change only under the exclusive lock (WidenLinks, Load).
  uint32_t narrow_slots_;  // 0: never narrow
  bool narrow_ = false;
  size_t lstride_ = 0;
  size_t legacy_head_;  // chunk sizing as when the records sat in the node blocks
  uint32_t max_chunks_;
  std::atomic<Chunk*>* chunks_;  // max_chunks_ entries (calloc: untouched pages stay free)
  uint32_t num_chunks_ = 0;

  // Exclusive: Compact, Load, training. Writer-preferring, so that steady search
  // load cannot starve them (and the writers queued behind a compaction).
  mutable RwLock struct_mu_;
  std::mutex alloc_mu_;               // slot allocation, chunk growth
  std::vector<uint32_t> free_slots_;  // reusable slots (after Compact)
  std::atomic<uint32_t> slot_limit_{0};
  std::atomic<uint64_t> live_{0};
  std::atomic<uint64_t> deleted_{0};
  std::atomic<uint64_t> level_counter_{0};
  std::atomic<size_t> upper_bytes_{0};

  // Entry point and top level packed: (uint64(top level) << 32) | slot.
  static constexpr uint64_t kNoEntry = ~uint64_t{0};
  std::atomic<uint64_t> entry_{kNoEntry};
  std::mutex entry_mu_;
};

}  // namespace aidb::index
