// HnswIndex::Save / Load: the graph as plain data (core/snapshot_image.h);
// storage owns the file format. Load reads the graph back as is (never
// rebuilt) and checks every link.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "index/hnsw.h"
#include "index/hnsw_internal.h"

namespace aidb::index {

using namespace hnsw_internal;

Status HnswIndex::Save(const ImageSink& sink) const {
  std::shared_lock<RwLock> g(struct_mu_);
  const uint32_t limit = SlotLimit();
  IndexImage image;
  image.kind = IndexKind::kHnsw;
  image.vector_slots = limit;
  image.fill_vectors = [&](uint32_t first, uint32_t n, float* out) {
    for (uint32_t i = 0; i < n; ++i)
      std::memcpy(out + static_cast<size_t>(i) * dim_, Vec(first + i), sizeof(float) * dim_);
  };
  HnswGraphImage& graph = image.hnsw;
  uint64_t e = entry_.load(std::memory_order_acquire);
  graph.entry_point = e == kNoEntry ? HnswGraphImage::kNoEntryPoint : EntrySlot(e);
  graph.max_level = e == kNoEntry ? -1 : EntryLevel(e);
  graph.m = m_;
  graph.slot_limit = limit;
  if (sq_ready_.load(std::memory_order_acquire)) {
    graph.has_quantizer = true;
    graph.sq_offset = sq_.offset();
    graph.sq_scale = sq_.scale();
  }
  std::vector<uint32_t> offsets, neighbors;
  std::vector<uint8_t> levels, deleted, freebits;
  graph.fill_chunk = [&](uint32_t first, uint32_t count, HnswChunkImage* ch) {
    uint32_t buf[2 * kMaxM];
    levels.assign(count, 0);
    deleted.assign((count + 7) / 8, 0);
    freebits.assign((count + 7) / 8, 0);
    offsets.clear();
    neighbors.clear();
    offsets.push_back(0);
    for (uint32_t i = 0; i < count; ++i) {
      uint32_t s = first + i;
      uint8_t st = StateOf(s);
      int level = st == kFree ? 0 : LevelOf(s);
      levels[i] = static_cast<uint8_t>(level);
      if (st == kDeleted) deleted[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
      if (st == kFree) freebits[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
      for (int lev = 0; lev <= level; ++lev) {
        uint32_t n = st == kFree ? 0 : ReadLinks(s, lev, buf);
        neighbors.insert(neighbors.end(), buf, buf + n);
        offsets.push_back(static_cast<uint32_t>(neighbors.size()));
      }
    }
    ch->first_slot = first;
    ch->count = count;
    ch->levels = levels;
    ch->deleted = deleted;
    ch->free = freebits;
    ch->offsets = offsets;
    ch->neighbors = neighbors;
  };
  return sink(image);
}

Status HnswIndex::Load(const SnapshotImage& image, KeepAlive keepalive) {
  // Vectors and links are copied into the node blocks: keepalive not needed.
  std::unique_lock<RwLock> g(struct_mu_);
  ResetLocked();
  Status st = LoadLocked(image);
  if (!st.ok()) ResetLocked();
  return st;
}

Status HnswIndex::LoadLocked(const SnapshotImage& image) {
  if (image.index.kind != IndexKind::kHnsw)
    return Status::Corruption("hnsw: snapshot holds no HNSW graph");
  const HnswGraphImage& graph = image.index.hnsw;
  if (graph.m != m_)
    return Status::Corruption("hnsw: snapshot graph has m=" + std::to_string(graph.m) +
                              ", index has m=" + std::to_string(m_));
  const uint32_t limit = graph.slot_limit;
  if (limit >= kNoSlot - 1) return Status::Corruption("hnsw: slot limit out of range");
  // The graph chunks must cover [0, limit) (checked again below); check the
  // sizes first, so a lying slot limit cannot make us allocate node storage
  // for slots the file does not hold.
  uint64_t covered = 0;
  for (const HnswChunkImage& ch : graph.chunks) covered += ch.levels.size();
  if (covered != limit) return Status::Corruption("hnsw: graph does not cover the slot limit");
  // More slots than 3-byte numbers reach: 4-byte lists from the start (no
  // chunk exists yet).
  if (narrow_ && limit > narrow_slots_) {
    narrow_ = false;
    lstride_ = LinkStride(false);
  }
  try {
    for (uint64_t s = 0; s < limit; s += (uint64_t{1} << chunk_shift_))
      EnsureChunk(static_cast<uint32_t>(s >> chunk_shift_));
  } catch (const std::bad_alloc&) {
    return Status::NoMemory("hnsw: cannot allocate node storage for the snapshot");
  }
  if (limit > 0) AIDB_RETURN_IF_ERROR(ReserveVectors(limit - 1));
  slot_limit_.store(limit);

  // Vectors.
  std::vector<uint8_t> have(limit, 0);
  for (const VectorChunkImage& vc : image.index.vector_chunks) {
    uint64_t first = vc.first_slot, count = vc.count;
    if (first + count > limit) return Status::Corruption("hnsw: vector chunk beyond slot limit");
    const bool sized = !vc.data.empty() && vc.data.size() == count * dim_;
    const float* data = sized ? vc.data.data() : nullptr;
    if (data == nullptr && count > 0) return Status::Corruption("hnsw: vector chunk size mismatch");
    for (uint64_t i = 0; i < count; ++i) {
      uint32_t s = static_cast<uint32_t>(first + i);
      std::memcpy(MutVec(s), data + i * dim_, sizeof(float) * dim_);
      have[s] = 1;
    }
  }

  // Graph.
  uint64_t expect_first = 0, live = 0, dead = 0;
  for (const HnswChunkImage& ch : graph.chunks) {
    uint32_t first = ch.first_slot, count = ch.count;
    if (first != expect_first || uint64_t{first} + count > limit)
      return Status::Corruption("hnsw: graph chunks out of order");
    expect_first = uint64_t{first} + count;
    const std::span<const uint8_t>& levels = ch.levels;
    const std::span<const uint8_t>& del = ch.deleted;
    const std::span<const uint8_t>& fr = ch.free;
    const std::span<const uint32_t>& off = ch.offsets;
    const std::span<const uint32_t>& nb = ch.neighbors;
    if (levels.size() != count || del.size() != (count + 7) / 8 || fr.size() != (count + 7) / 8)
      return Status::Corruption("hnsw: graph chunk arrays have the wrong size");
    if (off.size() == 0 || off[0] != 0) return Status::Corruption("hnsw: bad graph offsets");
    uint32_t pair = 0;
    uint32_t ids[2 * kMaxM];
    for (uint32_t i = 0; i < count; ++i) {
      uint32_t s = first + i;
      int level = levels[i];
      bool is_free = (fr[i / 8] >> (i % 8)) & 1;
      bool is_del = (del[i / 8] >> (i % 8)) & 1;
      if (level > kMaxLevel || (is_free && (level != 0 || is_del)))
        return Status::Corruption("hnsw: bad node level or state at slot " + std::to_string(s));
      if (!is_free && !have[s])
        return Status::Corruption("hnsw: no vector for slot " + std::to_string(s));
      Flags& h = FlagsOf(s);
      if (level > 0) {
        uint32_t* up = NewUpper(level);
        if (up == nullptr) return Status::NoMemory("hnsw: cannot allocate links");
        ChunkOf(s)->upper[s & chunk_mask_].store(up);
      }
      for (int lev = 0; lev <= level; ++lev, ++pair) {
        if (pair + 1 >= off.size()) return Status::Corruption("hnsw: graph offsets too short");
        uint32_t b = off[pair], e = off[pair + 1];
        if (e < b || e > nb.size() || e - b > MaxDegree(lev) || (is_free && e != b))
          return Status::Corruption("hnsw: bad adjacency at slot " + std::to_string(s));
        for (uint32_t j = b; j < e; ++j) {
          ids[j - b] = nb[j];
          if (ids[j - b] >= limit)
            return Status::Corruption("hnsw: neighbour out of range at slot " + std::to_string(s));
        }
        WriteLinks(s, lev, ids, e - b);
      }
      h.state.store(is_free ? kFree : (is_del ? kDeleted : kLive));
      if (is_free) free_slots_.push_back(s);
      else if (is_del) ++dead;
      else ++live;
    }
    if (pair + 1 != off.size() || off[pair] != nb.size())
      return Status::Corruption("hnsw: graph offsets do not match the neighbours");
  }
  if (expect_first != limit) return Status::Corruption("hnsw: graph does not cover the slot limit");

  // Every link must point at a node that exists on that level.
  uint32_t buf[2 * kMaxM];
  for (uint32_t s = 0; s < limit; ++s) {
    if (StateOf(s) == kFree) continue;
    for (int lev = 0; lev <= LevelOf(s); ++lev) {
      uint32_t n = ReadLinks(s, lev, buf);
      for (uint32_t i = 0; i < n; ++i)
        if (StateOf(buf[i]) == kFree || LevelOf(buf[i]) < lev)
          return Status::Corruption("hnsw: dangling link at slot " + std::to_string(s));
    }
  }
  uint32_t ep = graph.entry_point;
  int top = graph.max_level;
  if (ep == kNoSlot) {
    if (top != -1 || live + dead != 0) return Status::Corruption("hnsw: graph without entry point");
  } else {
    if (ep >= limit || StateOf(ep) == kFree || LevelOf(ep) != top)
      return Status::Corruption("hnsw: bad entry point");
    entry_.store(PackEntry(ep, top));
  }
  std::sort(free_slots_.begin(), free_slots_.end(), std::greater<uint32_t>());
  RebuildTreeLocked();
  // The quantiser of the saved index (codes are derived from the vectors):
  // searches after the load walk exactly as before the save.
  if (sq8_ && graph.has_quantizer) {
    const std::span<const float>& off = graph.sq_offset;
    if (off.size() != dim_)
      return Status::Corruption("hnsw: quantiser size does not match the dimension");
    std::vector<float> o(dim_);
    for (uint32_t j = 0; j < dim_; ++j) {
      o[j] = off[j];
      if (!std::isfinite(o[j])) return Status::Corruption("hnsw: bad quantiser");
    }
    float sc = graph.sq_scale;
    if (!std::isfinite(sc) || sc <= 0.f) return Status::Corruption("hnsw: bad quantiser");
    sq_.Set(o.data(), sc);
    EncodeAllLocked();
  } else if (sq8_ && live >= kSqTrainMin) {
    // Saved by an index that walked with floats: train on the vectors.
    std::vector<float> rows;
    size_t have = 0;
    for (uint32_t s = 0; s < limit && have < kSqTrainMax; ++s) {
      if (StateOf(s) != kLive) continue;
      rows.insert(rows.end(), Vec(s), Vec(s) + dim_);
      ++have;
    }
    TrainQuantizerLocked(rows.data(), have);
  }
  live_.store(live);
  deleted_.store(dead);
  level_counter_.store(limit);
  return Status::OK();
}

}  // namespace aidb::index
