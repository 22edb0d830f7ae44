// Sq8Quantizer: 8-bit scalar quantisation of float vectors, kept apart from
// the graph (as USearch keeps its quantisation apart): per-dimension offset,
// one step for all dimensions, x_j ~ offset_j + scale * code_j, so codes
// compare in integer SIMD (distance::SqL2 / SqDot) against a query quantised
// to int16. HnswIndex walks its base layer with these codes and re-ranks the
// candidates with the float vectors.
//
// Not thread-safe to change: Train/Set run under the index's exclusive lock;
// Encode/PrepareQuery/Dist are const and run concurrently.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/distance.h"

namespace aidb::index {

class Sq8Quantizer {
 public:
  Sq8Quantizer() = default;
  // `l2`: squared Euclidean distances; otherwise -dot (vectors normalised
  // for cosine by the caller).
  Sq8Quantizer(uint32_t dim, bool l2);

  // Fits offset and scale to n rows (row-major, dim floats each): the
  // per-dimension low end of the sample, one step (the widest range / 255),
  // ranges widened by 1/16 on each side for later vectors.
  void Train(const float* rows, size_t n);
  // Sets a saved quantiser (dim offsets; scale <= 0 means 1).
  void Set(const float* offset, float scale);

  const std::vector<float>& offset() const { return offset_; }
  float scale() const { return scale_; }

  // dim codes of v, clamped to [0, 255].
  void Encode(const float* v, uint8_t* code) const;
  // The query as Dist expects it (dim int16 values).
  void PrepareQuery(const float* q, int16_t* out) const;
  // "Lower is better" distance of a prepared query to a code.
  float Dist(const int16_t* prepared, const uint8_t* code) const {
    if (l2_) return static_cast<float>(l2_kernel_(code, prepared, dim_));
    return -static_cast<float>(dot_kernel_(code, prepared, dim_));
  }
  // Dist of count codes (graph walks: a node's new neighbours together).
  void DistBatch(const int16_t* prepared, const uint8_t* const* codes, size_t count,
                 float* out) const {
    int32_t raw[512];
    for (size_t at = 0; at < count; at += 512) {
      const size_t m = std::min<size_t>(512, count - at);
      (l2_ ? l2_batch_ : dot_batch_)(codes + at, m, prepared, dim_, raw);
      for (size_t i = 0; i < m; ++i)
        out[at + i] = l2_ ? static_cast<float>(raw[i]) : -static_cast<float>(raw[i]);
    }
  }

 private:
  uint32_t dim_ = 0;
  bool l2_ = false;
  std::vector<float> offset_;      // per dimension
  float scale_ = 1.f, inv_ = 1.f;  // one step for every dimension
  distance::SqKernel l2_kernel_ = distance::SqL2();
  distance::SqKernel dot_kernel_ = distance::SqDot();
  distance::SqBatchKernel l2_batch_ = distance::SqL2Batch();
  distance::SqBatchKernel dot_batch_ = distance::SqDotBatch();
};

}  // namespace aidb::index
