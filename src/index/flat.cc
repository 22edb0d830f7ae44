#include "index/flat.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "index/topk.h"

namespace aidb::index {

FlatIndex::FlatIndex(const IndexConfig& config) : FlatIndex(config, nullptr) {}

FlatIndex::FlatIndex(const IndexConfig& config, std::unique_ptr<VectorFile> vectors)
    : config_(config),
      shift_(VectorChunkShift(config.dim)),
      mask_((1u << VectorChunkShift(config.dim)) - 1),
      vfile_(config.vectors_on_disk ? std::move(vectors) : nullptr) {
  if (vfile_ != nullptr) {
    vfile_->SetSegmentBytes((size_t{1} << shift_) * config_.dim * sizeof(float));
  }
}

FlatIndex::~FlatIndex() = default;

Status FlatIndex::AllocateSlotLocked(uint32_t* out) {
  if (!free_.empty()) {
    *out = free_.back();
    free_.pop_back();
    return Status::OK();
  }
  const uint32_t slot = slot_limit_;
  const uint32_t c = slot >> shift_;
  const uint32_t per_chunk = 1u << shift_;
  const size_t vec_bytes = static_cast<size_t>(config_.dim) * sizeof(float);
  const uint32_t need = (slot & mask_) + 1;
  if (vfile_ != nullptr) {
    // A whole segment per chunk, mapped once; disk blocks reserved ahead of
    // the vector written through the mapping.
    char* data = nullptr;
    if (c == chunks_.size()) {
      AIDB_RETURN_IF_ERROR(vfile_->Segment(c, &data));
      chunks_.emplace_back();
      chunks_[c].data = reinterpret_cast<float*>(data);
      chunks_[c].capacity_slots = per_chunk;
    }
    AIDB_RETURN_IF_ERROR(vfile_->Reserve(uint64_t{c} * vfile_->segment_bytes() + need * vec_bytes));
    ++slot_limit_;
    live_.push_back(0);
    *out = slot;
    return Status::OK();
  }
  if (c == chunks_.size()) chunks_.emplace_back();
  Chunk& chunk = chunks_[c];
  if (need > chunk.capacity_slots) {
    // Grow geometrically while small; copy what is there. Once a chunk would
    // span a huge page (or is not the first), reserve all of it: HugeBuffer is
    // an anonymous mapping whose untouched pages cost neither memory nor time,
    // while every regrowth step zeroes and copies the chunk again (doubling
    // the first-touch cost that bounds ingest and WAL replay).
    uint32_t cap = std::max<uint32_t>(std::min<uint32_t>(per_chunk, 64), chunk.capacity_slots * 2);
    if (c > 0 || static_cast<size_t>(cap) * vec_bytes >= (size_t{2} << 20)) cap = per_chunk;
    cap = std::min(std::max(cap, need), per_chunk);
    HugeBuffer buf(static_cast<size_t>(cap) * vec_bytes);
    if (chunk.capacity_slots > 0) {
      std::memcpy(buf.data(), chunk.data, static_cast<size_t>(chunk.capacity_slots) * vec_bytes);
    }
    chunk.owned = std::move(buf);
    chunk.data = static_cast<float*>(chunk.owned.data());
    chunk.capacity_slots = cap;
  }
  ++slot_limit_;
  live_.push_back(0);
  *out = slot;
  return Status::OK();
}

void FlatIndex::PopulateAheadLocked(size_t batch) {
  // Keep the pages of the next max(2 batches, 2 MiB) of slots (at most
  // 16 MiB) faulted in ahead of slot_limit_, by the populate thread: the
  // next batch then copies into memory that is already there. Only within
  // the chunk the next slot goes to, and only a chunk of owned memory at
  // its full size (smaller ones are still growing by copies).
  const uint64_t vec_bytes = uint64_t{config_.dim} * sizeof(float);
  const uint64_t used = uint64_t{slot_limit_} * vec_bytes;
  const uint64_t ahead = std::clamp<uint64_t>(2 * batch * vec_bytes, 2u << 20, 16u << 20);
  if (populated_to_ >= used + ahead / 2) return;
  const uint32_t c = slot_limit_ >> shift_;
  if (c >= chunks_.size()) return;
  Chunk& chunk = chunks_[c];
  if (chunk.owned.data() == nullptr || chunk.capacity_slots != (1u << shift_)) return;
  const uint64_t chunk_start = (uint64_t{c} << shift_) * vec_bytes;
  const uint64_t from = std::max(populated_to_, used) - chunk_start;
  const uint64_t to = std::min<uint64_t>(used + ahead - chunk_start, chunk.owned.size());
  if (to > from) chunk.owned.PopulateAsync(from, to - from);
  populated_to_ = chunk_start + to;
}

void FlatIndex::StoreLocked(uint32_t slot, const float* vec) {
  float* dst = SlotPtr(slot);
  std::memcpy(dst, vec, static_cast<size_t>(config_.dim) * sizeof(float));
  if (config_.metric == Metric::kCosine) distance::Normalize(dst, config_.dim);
}

Status FlatIndex::Add(const float* vec, uint32_t* slot) {
  std::unique_lock lock(mu_);
  uint32_t s;
  AIDB_RETURN_IF_ERROR(AllocateSlotLocked(&s));
  StoreLocked(s, vec);
  live_[s] = 1;
  ++size_;
  *slot = s;
  PopulateAheadLocked(1);
  return Status::OK();
}

Status FlatIndex::AddBatch(const float* vecs, size_t n, uint32_t* slots, uint32_t threads) {
  std::unique_lock lock(mu_);
  for (size_t i = 0; i < n; ++i) {
    uint32_t s;
    Status st = AllocateSlotLocked(&s);
    if (!st.ok()) {
      // No space for the vectors file: the batch adds nothing.
      for (size_t j = 0; j < i; ++j) {
        live_[slots[j]] = 0;
        --size_;
        free_.push_back(slots[j]);
      }
      return st;
    }
    StoreLocked(s, vecs + i * config_.dim);
    live_[s] = 1;
    ++size_;
    slots[i] = s;
  }
  PopulateAheadLocked(n);
  return Status::OK();
}

Status FlatIndex::Update(uint32_t slot, const float* vec) {
  std::unique_lock lock(mu_);
  if (slot >= slot_limit_ || !live_[slot]) return Status::NotFound("flat index: slot not live");
  StoreLocked(slot, vec);
  return Status::OK();
}

void FlatIndex::Remove(uint32_t slot) {
  std::unique_lock lock(mu_);
  if (slot >= slot_limit_ || !live_[slot]) return;
  live_[slot] = 0;
  --size_;
  free_.push_back(slot);
}

void FlatIndex::GetVector(uint32_t slot, float* out) const {
  std::shared_lock lock(mu_);
  if (slot >= slot_limit_) return;
  std::memcpy(out, SlotPtr(slot), static_cast<size_t>(config_.dim) * sizeof(float));
}

uint64_t FlatIndex::Size() const {
  std::shared_lock lock(mu_);
  return size_;
}

uint32_t FlatIndex::SlotLimit() const {
  std::shared_lock lock(mu_);
  return slot_limit_;
}

bool FlatIndex::IsLive(uint32_t slot) const {
  std::shared_lock lock(mu_);
  return slot < slot_limit_ && live_[slot];
}

Status FlatIndex::Search(const float* query, const SearchParams& params,
                         std::vector<Hit>* out) const {
  out->clear();
  const uint32_t dim = config_.dim;
  std::vector<float> normalized;
  if (config_.metric == Metric::kCosine) {
    normalized.assign(query, query + dim);
    distance::Normalize(normalized.data(), dim);
    query = normalized.data();
  }
  const bool l2 = config_.metric == Metric::kEuclidean;
  const distance::Kernel kernel = l2 ? distance::L2Squared() : distance::Dot();
  const SlotFilter* filter = params.filter;

  std::shared_lock<RwLock> lock(mu_, std::defer_lock);
  if (!LockShared(lock, params.nonblocking)) {
    return Status::Busy("flat: the index is being written; retry, or search without nonblocking");
  }
  TopK top(params.k);
  auto consider = [&](uint32_t slot) {
    float raw = kernel(query, SlotPtr(slot), dim);
    float score = l2 ? -raw : raw;  // rank by -d^2; converted to -d below
    // The filter may be costly (payload parsing): check it only for hits
    // that would enter the top-k.
    if (!top.WouldKeep(score)) return;
    if (filter && !filter->Allowed(slot)) return;
    top.Push(score, slot);
  };

  std::vector<uint32_t> listed;
  if (filter && filter->ListMatches(&listed)) {
    for (uint32_t slot : listed) {
      if (slot < slot_limit_ && live_[slot]) consider(slot);
    }
  } else {
    for (uint32_t slot = 0; slot < slot_limit_; ++slot) {
      if (live_[slot]) consider(slot);
    }
  }
  top.Take(out);
  if (l2) {
    for (Hit& h : *out) h.score = distance::ScoreFromL2Squared(-h.score);
  }
  return Status::OK();
}

Status FlatIndex::SetEfSearch(uint32_t) {
  return Status::Unsupported("ef_search applies to HNSW collections only");
}

Status FlatIndex::Compact() { return Status::OK(); }

Status FlatIndex::Save(const ImageSink& sink) const {
  std::shared_lock lock(mu_);
  IndexImage image;
  image.kind = IndexKind::kFlat;
  image.vector_slots = slot_limit_;
  const size_t vec_floats = config_.dim;
  image.fill_vectors = [&](uint32_t first, uint32_t n, float* dst) {
    // Slots of one snapshot chunk are the slots of one index chunk.
    std::memcpy(dst, SlotPtr(first), static_cast<size_t>(n) * vec_floats * sizeof(float));
  };
  return sink(image);
}

Status FlatIndex::Load(const SnapshotImage& image, KeepAlive keepalive) {
  if (image.index.kind != IndexKind::kFlat) return Status::Corruption("snapshot index is not flat");
  const uint32_t limit = image.meta.slot_limit;
  const uint32_t per_chunk = 1u << shift_;
  const std::vector<VectorChunkImage>& vchunks = image.index.vector_chunks;

  // In 64 bits, and checked before allocating: a slot limit near 2^32 must
  // not wrap to "no chunks" and then size the liveness array below.
  const uint64_t n_chunks = (uint64_t{limit} + per_chunk - 1) / per_chunk;
  if (vchunks.size() != n_chunks) {
    return Status::Corruption("snapshot: " + std::to_string(vchunks.size()) +
                              " vector chunks for " + std::to_string(limit) + " slots");
  }
  std::vector<Chunk> chunks(n_chunks);
  // Vectors on disk: copied into the (reset) vectors file below, under the
  // lock; the image's mapping is not kept.
  std::unique_lock lock(mu_, std::defer_lock);
  bool loaded = false;
  struct OnFailure {  // the vectors file was reset: leave an empty index
    FlatIndex* self;
    const bool* loaded;
    ~OnFailure() {
      if (*loaded || self->vfile_ == nullptr) return;
      self->chunks_.clear();
      self->live_.clear();
      self->free_.clear();
      self->slot_limit_ = 0;
      self->size_ = 0;
      self->populated_to_ = 0;
      self->vfile_->Reset();
    }
  } on_failure{this, &loaded};
  if (vfile_ != nullptr) {
    lock.lock();
    chunks_.clear();
    vfile_->Reset();
  }
  for (uint32_t c = 0; c < vchunks.size(); ++c) {
    const VectorChunkImage& vc = vchunks[c];
    const uint32_t expect = std::min(per_chunk, limit - c * per_chunk);
    if (vc.first_slot != c * per_chunk || vc.count != expect) {
      return Status::Corruption("snapshot: vector chunk " + std::to_string(c) + " misplaced");
    }
    float* data = vc.data.data();
    if (vc.data.empty() || vc.data.size() != static_cast<size_t>(vc.count) * config_.dim) {
      return Status::Corruption("snapshot: vector chunk " + std::to_string(c) + " has wrong size");
    }
    if (vfile_ != nullptr) {
      char* seg = nullptr;
      AIDB_RETURN_IF_ERROR(vfile_->Segment(c, &seg));
      AIDB_RETURN_IF_ERROR(
          vfile_->Reserve(uint64_t{c} * vfile_->segment_bytes() + vc.data.size() * sizeof(float)));
      std::memcpy(seg, data, vc.data.size() * sizeof(float));
      chunks[c].data = reinterpret_cast<float*>(seg);
      chunks[c].capacity_slots = per_chunk;
      continue;
    }
    chunks[c].data = data;
    chunks[c].capacity_slots = expect;
  }

  // Liveness: a slot is live iff the snapshot gives it an id.
  std::vector<uint8_t> live(limit, 0);
  std::vector<uint32_t> free_slots;
  uint64_t size = 0;
  for (const PointChunkImage& pc : image.points) {
    const std::span<const uint8_t>& ids = pc.ids;
    const uint32_t first = pc.first_slot, n = pc.count;
    if (ids.size() != static_cast<size_t>(n) * 16 || first + static_cast<uint64_t>(n) > limit) {
      return Status::Corruption("snapshot: malformed point chunk");
    }
    for (uint32_t i = 0; i < n; ++i) {
      if (SlotHoldsPoint(pc, i, image.meta)) {
        live[first + i] = 1;
        ++size;
      }
    }
  }
  for (uint32_t s = limit; s-- > 0;) {
    if (!live[s]) free_slots.push_back(s);
  }

  if (!lock.owns_lock()) lock.lock();
  chunks_ = std::move(chunks);
  live_ = std::move(live);
  free_ = std::move(free_slots);
  slot_limit_ = limit;
  size_ = size;
  populated_to_ = 0;
  if (vfile_ == nullptr) mapping_ = std::move(keepalive);
  loaded = true;
  return Status::OK();
}

}  // namespace aidb::index
