// Distance kernels. Scores are "higher is better": dot product, cosine
// similarity (dot of normalised vectors), negative Euclidean distance.
#pragma once

#include <cstddef>

namespace aidb {

enum class Metric : int { kCosine = 0, kEuclidean = 1, kDot = 2 };

namespace distance {

// Portable reference kernels.
float DotScalar(const float* a, const float* b, size_t n);
float L2SquaredScalar(const float* a, const float* b, size_t n);

using Kernel = float (*)(const float* a, const float* b, size_t n);

// The fastest kernels the CPU supports, picked once at start-up.
Kernel Dot();
Kernel L2Squared();

// Scales v to unit length in place; leaves a zero vector unchanged.
void Normalize(float* v, size_t n);

// Converts a kernel result into a score for `metric` (for cosine, pass the dot
// of normalised vectors; for Euclidean, the squared distance).
inline float ScoreFromDot(float dot) { return dot; }
float ScoreFromL2Squared(float d2);

}  // namespace distance
}  // namespace aidb
