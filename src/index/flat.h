// FlatIndex: exact search by scanning every live vector.
//
// Vectors live in chunks of 2^VectorChunkShift(dim) slots. A chunk is either
// owned memory (huge-page backed) or points into a snapshot's private mapping
// (loaded without copying; writes go to copy-on-write pages), or, with
// vectors_on_disk, a segment of a VectorFile (a file-backed shared mapping
// the page cache may evict: a snapshot's vectors are copied there on load, so
// no write ever lands in anonymous memory). Quantization does not apply: the
// scan reads the floats. One
// RwLock: searches share it, Add/Update/Remove take it briefly.
#pragma once

#include <memory>
#include <vector>

#include "core/memory.h"
#include "core/rwlock.h"
#include "index/index.h"
#include "index/vector_file.h"

namespace aidb::index {

class FlatIndex final : public VectorIndex {
 public:
  explicit FlatIndex(const IndexConfig& config);
  // With config.vectors_on_disk, `vectors` holds the vectors (required then).
  FlatIndex(const IndexConfig& config, std::unique_ptr<VectorFile> vectors);
  ~FlatIndex() override;

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
  Status SetEfSearch(uint32_t ef) override;
  Status Compact() override;
  Status Save(const ImageSink& sink) const override;
  Status Load(const SnapshotImage& image, KeepAlive keepalive) override;

 private:
  struct Chunk {
    float* data = nullptr;  // capacity_slots * dim floats
    uint32_t capacity_slots = 0;
    HugeBuffer owned;  // empty when data points into a mapping
  };

  float* SlotPtr(uint32_t slot) const {
    return chunks_[slot >> shift_].data + static_cast<size_t>(slot & mask_) * config_.dim;
  }
  Status AllocateSlotLocked(uint32_t* slot);  // grows storage as needed
  void StoreLocked(uint32_t slot, const float* vec);
  void PopulateAheadLocked(size_t batch);  // after adding `batch` vectors

  const IndexConfig config_;
  const uint32_t shift_;
  const uint32_t mask_;
  mutable RwLock mu_;  // writer-preferring: scans must not starve Add
  std::vector<Chunk> chunks_;
  std::vector<uint8_t> live_;   // one byte per slot below slot_limit_
  std::vector<uint32_t> free_;  // removed slots, reused by Add
  uint32_t slot_limit_ = 0;
  uint64_t size_ = 0;
  uint64_t populated_to_ = 0;          // bytes of slot space asked to be faulted in
  KeepAlive mapping_;                  // keeps chunks loaded from a snapshot alive
  std::unique_ptr<VectorFile> vfile_;  // vectors_on_disk
};

}  // namespace aidb::index
