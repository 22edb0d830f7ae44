#include "core/distance.h"

#include <cmath>

namespace aidb::distance {

float DotScalar(const float* a, const float* b, size_t n) {
  float s = 0.f;
  for (size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

float L2SquaredScalar(const float* a, const float* b, size_t n) {
  float s = 0.f;
  for (size_t i = 0; i < n; ++i) {
    float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

Kernel Dot() { return &DotScalar; }
Kernel L2Squared() { return &L2SquaredScalar; }

void Normalize(float* v, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  if (s <= 0.0) return;
  float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (size_t i = 0; i < n; ++i) v[i] *= inv;
}

float ScoreFromL2Squared(float d2) { return -std::sqrt(d2 < 0.f ? 0.f : d2); }

}  // namespace aidb::distance
