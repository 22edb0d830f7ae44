// The plain data of a collection snapshot, as the layers that own the state
// (engine: ids and payloads; index: vectors and graph) hand it to storage, and
// as storage hands it back on load. Storage owns the file format
// (storage/snapshot.h, snapshot.capnp); nothing here knows about it.
//
// Saving is pull-based, so nothing is staged twice: storage calls the fill
// functions while the index holds its lock (VectorIndex::Save). Loading is
// zero-copy: the spans point into the snapshot file's private (copy-on-write)
// mapping, which stays alive as long as the keep-alive handle that comes with
// the image (storage::SnapshotFile::keepalive()).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/config.h"

namespace aidb {

// Keeps the memory behind a loaded image alive (type-erased).
using KeepAlive = std::shared_ptr<const void>;

// Vectors are kept in chunks of 2^VectorChunkShift(dim) slots (<= 64 MiB per
// chunk, < 2^29 bytes as Cap'n Proto requires), by indexes and snapshots alike.
constexpr uint32_t VectorChunkShift(uint32_t dim) {
  const uint64_t bytes_per_vec = (dim > 0 ? uint64_t{dim} : 1) * sizeof(float);
  const uint64_t budget = 64ull << 20;
  uint32_t shift = 0;
  while (shift < 24 && (bytes_per_vec << (shift + 1)) <= budget) ++shift;
  return shift;
}

// Ids and payloads of slots [first_slot, first_slot + count) (load).
struct PointChunkImage {
  uint32_t first_slot = 0;
  uint32_t count = 0;
  std::span<const uint8_t> ids;  // 16 bytes per slot; all zero = free (see SlotHoldsPoint)
  std::span<const uint32_t> payload_ends;  // end offset in `payloads` per slot
  std::span<const char> payloads;          // concatenated JSON; empty = no payload
};

// Vectors of slots [first_slot, first_slot + count) (load): `data` should
// hold count * dim floats (cosine vectors normalised; the index checks the
// size against its dimension and reports Corruption), writable without
// touching the file.
struct VectorChunkImage {
  uint32_t first_slot = 0;
  uint32_t count = 0;
  std::span<float> data;
};

// HNSW nodes of slots [first_slot, first_slot + count).
struct HnswChunkImage {
  uint32_t first_slot = 0;
  uint32_t count = 0;
  std::span<const uint8_t> levels;  // one byte per slot: top level of the node
  // Adjacency of every (slot, level) pair in slot order, levels 0..top:
  // `offsets` has one entry per pair plus one; `neighbors` the slots.
  std::span<const uint32_t> offsets;
  std::span<const uint32_t> neighbors;
  std::span<const uint8_t> deleted;  // bitmap, one bit per slot: tombstones
  std::span<const uint8_t> free;     // bitmap, one bit per slot: no node
};

// An HNSW graph (the vectors are in IndexImage).
struct HnswGraphImage {
  static constexpr uint32_t kNoEntryPoint = 0xFFFFFFFFu;
  uint32_t entry_point = kNoEntryPoint;
  int32_t max_level = -1;   // level of the entry point, -1 = empty
  uint32_t m = 0;           // max degree above level 0
  uint32_t slot_limit = 0;  // slots [0, slot_limit) are described
  // 8-bit scalar quantiser: x_j ~ sq_offset_j + sq_scale * code_j (dim
  // offsets), present once trained.
  bool has_quantizer = false;
  std::span<const float> sq_offset;
  float sq_scale = 0.f;
  // Load: the chunks, consecutive, covering [0, slot_limit).
  std::vector<HnswChunkImage> chunks;
  // Save: storage asks for consecutive ranges in order; the spans must stay
  // valid until the next call.
  std::function<void(uint32_t first, uint32_t count, HnswChunkImage* out)> fill_chunk;
};

// One IVF partition: its slots, 4-bit codes (index/ivf_kernels.h layout,
// blocks of 32 slots) and, for Euclidean, one correction term per slot.
struct IvfListImage {
  std::span<const uint32_t> slots;
  std::span<const uint8_t> codes;  // ceil(slots / 32) blocks
  std::span<const float> extra;    // Euclidean: one per slot; else empty
};

// A trained IVF index (the vectors are in IndexImage). Untrained: no lists.
struct IvfImage {
  bool trained = false;
  uint32_t nlist = 0;
  uint32_t subspaces = 0;            // PQ subspaces (4-bit codes each)
  uint32_t sub_dim = 0;              // dimensions per subspace (the last may be shorter)
  uint64_t trained_count = 0;        // live points when trained (regrowth trigger)
  std::span<const float> centroids;  // nlist * dim
  std::span<const float> codebooks;  // subspaces * 16 * sub_dim
  // Load: nlist lists.
  std::vector<IvfListImage> lists;
  // Save: storage asks for every list in order; the spans must stay valid
  // until the next call.
  std::function<void(uint32_t list, IvfListImage* out)> fill_list;
};

// What a vector index saves and loads.
struct IndexImage {
  IndexKind kind = IndexKind::kFlat;
  // Save: the vectors of slots [0, vector_slots); fill_vectors(first, n, out)
  // copies the n vectors of slots first.. into out (n * dim floats). Storage
  // asks for whole chunks of 2^VectorChunkShift(dim) slots, in order.
  uint32_t vector_slots = 0;
  std::function<void(uint32_t first, uint32_t n, float* out)> fill_vectors;
  // Load: the vector chunks as stored.
  std::vector<VectorChunkImage> vector_chunks;
  HnswGraphImage hnsw;  // kind == kHnsw
  IvfImage ivf;         // kind == kIvf
};

// The snapshot's summary.
struct SnapshotMeta {
  uint64_t last_lsn = 0;  // every WAL record <= this is in the snapshot
  int64_t created_unix_ns = 0;
  CollectionConfig config;
  uint64_t count = 0;       // live points
  uint32_t slot_limit = 0;  // slots [0, slot_limit) are described
  // The slot of the point whose id is the nil UUID, which the id lists
  // cannot tell from a free slot (all zero ids); UINT32_MAX: none.
  uint32_t nil_id_slot = UINT32_MAX;
};

// A loaded snapshot.
struct SnapshotImage {
  SnapshotMeta meta;
  std::vector<PointChunkImage> points;
  IndexImage index;
};

// True when slot pc.first_slot + i holds a point: its id is not all zero, or
// it is the slot of the point whose id is the nil UUID (meta.nil_id_slot).
// The caller has checked pc.ids.size() == 16 * pc.count and i < pc.count.
inline bool SlotHoldsPoint(const PointChunkImage& pc, uint32_t i, const SnapshotMeta& meta) {
  const uint8_t* id = pc.ids.data() + static_cast<size_t>(i) * 16;
  for (int b = 0; b < 16; ++b) {
    if (id[b] != 0) return true;
  }
  return pc.first_slot + i == meta.nil_id_slot;
}

}  // namespace aidb
