#include "index/sq8.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace aidb::index {

Sq8Quantizer::Sq8Quantizer(uint32_t dim, bool l2) : dim_(dim), l2_(l2), offset_(dim, 0.f) {}

void Sq8Quantizer::Train(const float* rows, size_t n) {
  std::vector<float> lo(dim_, std::numeric_limits<float>::infinity());
  std::vector<float> hi(dim_, -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < n; ++i) {
    const float* v = rows + i * dim_;
    for (uint32_t j = 0; j < dim_; ++j) {
      lo[j] = std::min(lo[j], v[j]);
      hi[j] = std::max(hi[j], v[j]);
    }
  }
  float range = 0.f;
  for (uint32_t j = 0; j < dim_; ++j) {
    if (n == 0) lo[j] = hi[j] = 0.f;
    float pad = (hi[j] - lo[j]) / 16.f;
    lo[j] -= pad;
    hi[j] += pad;
    range = std::max(range, hi[j] - lo[j]);
  }
  Set(lo.data(), range / 255.f);
}

void Sq8Quantizer::Set(const float* offset, float scale) {
  for (uint32_t j = 0; j < dim_; ++j) offset_[j] = offset[j];
  scale_ = scale > 0.f ? scale : 1.f;
  inv_ = 1.f / scale_;
}

namespace {

// Round to nearest, ties to even, of an x already clamped to |x| < 2^22 (as
// std::nearbyint in the default rounding mode, without a libm call on
// baseline x86-64): adding and removing 1.5 * 2^23 leaves no fraction bits.
inline float RoundClamped(float x) {
  constexpr float kMagic = 12582912.f;  // 1.5 * 2^23
  return (x + kMagic) - kMagic;         // IEEE order kept: no -ffast-math here
}

}  // namespace

// L2: the query in code units (offset removed), clamped to [-255, 510]: a
// query that far outside the trained range is scored approximately, and the
// re-ranking restores the exact order. Dot: the query on its own int16 scale
// (|q| <= 1023); codes times query, the offset term being the same for all.
void Sq8Quantizer::PrepareQuery(const float* q, int16_t* out) const {
  if (l2_) {
    for (uint32_t j = 0; j < dim_; ++j) {
      float x = std::clamp((q[j] - offset_[j]) * inv_, -255.f, 510.f);
      out[j] = static_cast<int16_t>(RoundClamped(x));
    }
  } else {
    float mx = 0.f;
    for (uint32_t j = 0; j < dim_; ++j) mx = std::max(mx, std::fabs(q[j]));
    float inv = mx > 0.f ? 1023.f / mx : 0.f;
    for (uint32_t j = 0; j < dim_; ++j)
      out[j] = static_cast<int16_t>(RoundClamped(std::clamp(q[j] * inv, -1023.f, 1023.f)));
  }
}

void Sq8Quantizer::Encode(const float* v, uint8_t* code) const {
  for (uint32_t j = 0; j < dim_; ++j) {
    float x = std::clamp((v[j] - offset_[j]) * inv_, 0.f, 255.f);
    code[j] = static_cast<uint8_t>(RoundClamped(x));
  }
}

}  // namespace aidb::index
