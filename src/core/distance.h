// Distance kernels. Scores are "higher is better": dot product, cosine
// similarity (dot of normalised vectors), negative Euclidean distance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

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

// Squared L2 distance that may give up early: once a partial sum exceeds
// `bound` it returns that partial sum (some value > bound); otherwise the full
// squared distance, equal to L2Squared()'s within float tolerance. Graph
// walks pass the distance a candidate must beat, so vectors that cannot make
// it are read only in part.
using BoundedKernel = float (*)(const float* a, const float* b, size_t n, float bound);
float L2SquaredBoundedScalar(const float* a, const float* b, size_t n, float bound);
BoundedKernel L2SquaredBounded();

// 8-bit scalar-quantised vectors against a query quantised to int16, in
// integer arithmetic (exact, no rounding): for graph walks that then re-rank
// with the float vectors.
//   SqL2:  sum_j (code_j - q_j)^2      (-255 <= q_j <= 510, n <= 8192)
//   SqDot: sum_j code_j * q_j          (|q_j| <= 1023, n <= 8192)
// Within those bounds no intermediate or result overflows int32.
using SqKernel = int32_t (*)(const uint8_t* code, const int16_t* q, size_t n);
int32_t SqL2Scalar(const uint8_t* code, const int16_t* q, size_t n);
int32_t SqDotScalar(const uint8_t* code, const int16_t* q, size_t n);
SqKernel SqL2();
SqKernel SqDot();
// Several codes against one query in one call: out[i] = kernel(codes[i], q,
// n) for i < count (a graph walk scores a node's new neighbours together: no
// call per code, and the SIMD versions reduce two sums at once).
using SqBatchKernel = void (*)(const uint8_t* const* codes, size_t count, const int16_t* q,
                               size_t n, int32_t* out);
SqBatchKernel SqL2Batch();
SqBatchKernel SqDotBatch();

// True when none of the n floats is NaN or +-Inf (validation of every
// vector a caller hands in: for a large batch this is the first read of its
// memory, so the SIMD versions read four streams at once, which keeps more
// cache-line fills in flight than one stream does).
using FiniteKernel = bool (*)(const float* v, size_t n);
bool AllFiniteScalar(const float* v, size_t n);
FiniteKernel AllFinite();

// The name of the implementation Dot()/L2Squared() use ("avx512", "avx2",
// "portable").
const char* KernelName();

// One implementation of the kernels. Tests compare every implementation the
// CPU can run against the scalar reference.
struct KernelImpl {
  const char* name;
  Kernel dot;
  Kernel l2_squared;
  BoundedKernel l2_squared_bounded;
  SqKernel sq_l2;
  SqKernel sq_dot;
  SqBatchKernel sq_l2_batch;
  SqBatchKernel sq_dot_batch;
  FiniteKernel all_finite;
};
// Every implementation this CPU supports, portable first, fastest last.
std::vector<KernelImpl> SupportedKernels();

// The environment variable that caps the kernel level the process uses, read
// once at the first distance computation: "scalar" (or "portable"), "avx2",
// "avx512"; unset, empty, "auto" or anything else: the fastest the CPU
// supports. A level the CPU lacks gives the best one below it. For comparing
// kernel levels on one machine (bench/ann) and for ruling out a kernel.
inline constexpr const char* kKernelLevelEnv = "AIDB_SIMD";
// The implementation a process with AIDB_SIMD=level uses on this CPU (level
// null: unset).
KernelImpl KernelsForLevel(const char* level);

// Asks the CPU to start loading the first `bytes` bytes at p (no-op where not
// supported). For graph walks: fetch a neighbour's vector before scoring it.
inline void Prefetch(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
}

// Scales v to unit length in place; leaves a zero vector unchanged.
void Normalize(float* v, size_t n);

// Converts a kernel result into a score for `metric` (for cosine, pass the dot
// of normalised vectors; for Euclidean, the squared distance).
inline float ScoreFromDot(float dot) { return dot; }
float ScoreFromL2Squared(float d2);

}  // namespace distance
}  // namespace aidb
