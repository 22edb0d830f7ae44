// Distance kernels: a portable implementation and x86 AVX2+FMA / AVX-512
// variants, compiled with per-function target attributes (the rest of the
// library stays baseline x86-64) and picked once, at first use, from what the
// CPU reports, capped by the AIDB_SIMD environment variable if set.
//
// Every kernel keeps several independent accumulators so the loop is bound by
// loads, not by the latency of one add chain. Tails use masked loads (AVX-512)
// or scalar code, so no kernel reads past a[n-1] / b[n-1].
#include "core/distance.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AIDB_X86 1
#endif

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

float L2SquaredBoundedScalar(const float* a, const float* b, size_t n, float bound) {
  float s = 0.f;
  size_t i = 0;
  while (i < n) {
    size_t end = std::min(n, i + 128);
    for (; i < end; ++i) {
      float d = a[i] - b[i];
      s += d * d;
    }
    if (s > bound) return s;
  }
  return s;
}

int32_t SqL2Scalar(const uint8_t* code, const int16_t* q, size_t n) {
  int32_t s = 0;
  for (size_t i = 0; i < n; ++i) {
    int32_t d = static_cast<int32_t>(code[i]) - q[i];
    s += d * d;
  }
  return s;
}

int32_t SqDotScalar(const uint8_t* code, const int16_t* q, size_t n) {
  int32_t s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<int32_t>(code[i]) * q[i];
  return s;
}

// A component is NaN or Inf exactly when its exponent is all ones, that is
// when (bits & 0x7f800000) + 0x00800000 carries into bit 31. Branch-free, in
// blocks of 16 lanes so the compiler vectorises it with plain SSE2.
namespace {
constexpr uint32_t kExpBits = 0x7f800000u, kExpOne = 0x00800000u;
}  // namespace

bool AllFiniteScalar(const float* v, size_t n) {
  constexpr size_t kLanes = 16;
  uint32_t acc[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    uint32_t bits[kLanes];
    std::memcpy(bits, v + i, sizeof(bits));
    for (size_t k = 0; k < kLanes; ++k) acc[k] |= (bits[k] & kExpBits) + kExpOne;
  }
  uint32_t bad = 0;
  for (size_t k = 0; k < kLanes; ++k) bad |= acc[k];
  for (; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, v + i, sizeof(bits));
    bad |= (bits & kExpBits) + kExpOne;
  }
  return (bad & 0x80000000u) == 0;
}

namespace {

// Portable: eight independent partial sums (compilers vectorise this with the
// baseline SSE2 without needing -ffast-math).
float DotPortable(const float* a, const float* b, size_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  float t = 0.f;
  for (; i < n; ++i) t += a[i] * b[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + t;
}

float L2Portable(const float* a, const float* b, size_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      float d = a[i + j] - b[i + j];
      s[j] += d * d;
    }
  float t = 0.f;
  for (; i < n; ++i) {
    float d = a[i] - b[i];
    t += d * d;
  }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + t;
}

float L2BoundedPortable(const float* a, const float* b, size_t n, float bound) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  while (i + 8 <= n) {
    size_t end = std::min(n & ~size_t{7}, i + 128);
    for (; i < end; i += 8)
      for (int j = 0; j < 8; ++j) {
        float d = a[i + j] - b[i + j];
        s[j] += d * d;
      }
    float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    if (t > bound) return t;
  }
  float t = 0.f;
  for (; i < n; ++i) {
    float d = a[i] - b[i];
    t += d * d;
  }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + t;
}

// Integer sums are exact in any order: the scalar code is the portable one.
int32_t SqL2Portable(const uint8_t* code, const int16_t* q, size_t n) {
  return SqL2Scalar(code, q, n);
}
int32_t SqDotPortable(const uint8_t* code, const int16_t* q, size_t n) {
  return SqDotScalar(code, q, n);
}
void SqL2BatchPortable(const uint8_t* const* codes, size_t count, const int16_t* q, size_t n,
                       int32_t* out) {
  for (size_t c = 0; c < count; ++c) out[c] = SqL2Scalar(codes[c], q, n);
}
void SqDotBatchPortable(const uint8_t* const* codes, size_t count, const int16_t* q, size_t n,
                        int32_t* out) {
  for (size_t c = 0; c < count; ++c) out[c] = SqDotScalar(codes[c], q, n);
}

#ifdef AIDB_X86

// GCC 12's _mm512_reduce_add_ps uses _mm256_undefined_pd(), which trips
// -Wuninitialized; the value is fully overwritten.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"

__attribute__((target("avx2,fma"))) inline float HSum256(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 sh = _mm_movehdup_ps(lo);
  lo = _mm_add_ps(lo, sh);
  sh = _mm_movehl_ps(sh, lo);
  lo = _mm_add_ss(lo, sh);
  return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) float DotAvx2(const float* a, const float* b, size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8)
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float t = HSum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; ++i) t += a[i] * b[i];
  return t;
}

__attribute__((target("avx2,fma"))) float L2Avx2(const float* a, const float* b, size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
    __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
    s2 = _mm256_fmadd_ps(d2, d2, s2);
    s3 = _mm256_fmadd_ps(d3, d3, s3);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  float t = HSum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; ++i) {
    float d = a[i] - b[i];
    t += d * d;
  }
  return t;
}

__attribute__((target("avx512f"))) float DotAvx512(const float* a, const float* b, size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i + 16 <= n; i += 16)
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  if (i < n) {
    __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

__attribute__((target("avx512f"))) float L2Avx512(const float* a, const float* b, size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
    __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
    s2 = _mm512_fmadd_ps(d2, d2, s2);
    s3 = _mm512_fmadd_ps(d3, d3, s3);
  }
  for (; i + 16 <= n; i += 16) {
    __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(d, d, s0);
  }
  if (i < n) {
    __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_fmadd_ps(d, d, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

__attribute__((target("avx2,fma"))) float L2BoundedAvx2(const float* a, const float* b, size_t n,
                                                        float bound) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  while (i + 32 <= n) {
    size_t end = std::min(n & ~size_t{31}, i + 128);
    for (; i < end; i += 32) {
      __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
      __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
      __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
      __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
      s0 = _mm256_fmadd_ps(d0, d0, s0);
      s1 = _mm256_fmadd_ps(d1, d1, s1);
      s2 = _mm256_fmadd_ps(d2, d2, s2);
      s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    float t = HSum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    if (t > bound) return t;
  }
  for (; i + 8 <= n; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  float t = HSum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; ++i) {
    float d = a[i] - b[i];
    t += d * d;
  }
  return t;
}

__attribute__((target("avx512f"))) float L2BoundedAvx512(const float* a, const float* b, size_t n,
                                                         float bound) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  while (i + 64 <= n) {
    size_t end = std::min(n & ~size_t{63}, i + 128);
    for (; i < end; i += 64) {
      __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
      __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
      __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
      __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
      s0 = _mm512_fmadd_ps(d0, d0, s0);
      s1 = _mm512_fmadd_ps(d1, d1, s1);
      s2 = _mm512_fmadd_ps(d2, d2, s2);
      s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    float t = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    if (t > bound) return t;
  }
  for (; i + 16 <= n; i += 16) {
    __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(d, d, s0);
  }
  if (i < n) {
    __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_fmadd_ps(d, d, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

__attribute__((target("avx2"))) inline int32_t HSum256i(__m256i v) {
  __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4E));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xB1));
  return _mm_cvtsi128_si32(x);
}

__attribute__((target("avx2"))) int32_t SqL2Avx2(const uint8_t* code, const int16_t* q, size_t n) {
  __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i)));
    __m256i c1 =
        _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i + 16)));
    __m256i d0 = _mm256_sub_epi16(c0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i)));
    __m256i d1 =
        _mm256_sub_epi16(c1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i + 16)));
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(d0, d0));
    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(d1, d1));
  }
  int32_t t = HSum256i(_mm256_add_epi32(s0, s1));
  for (; i < n; ++i) {
    int32_t d = static_cast<int32_t>(code[i]) - q[i];
    t += d * d;
  }
  return t;
}

__attribute__((target("avx2"))) int32_t SqDotAvx2(const uint8_t* code, const int16_t* q, size_t n) {
  __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i)));
    __m256i c1 =
        _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i + 16)));
    s0 = _mm256_add_epi32(
        s0, _mm256_madd_epi16(c0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i))));
    s1 = _mm256_add_epi32(
        s1,
        _mm256_madd_epi16(c1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i + 16))));
  }
  int32_t t = HSum256i(_mm256_add_epi32(s0, s1));
  for (; i < n; ++i) t += static_cast<int32_t>(code[i]) * q[i];
  return t;
}

template <bool kL2>
__attribute__((target("avx2"))) inline __m256i SqTermAvx2(__m256i c, __m256i qv) {
  if constexpr (kL2) {
    __m256i d = _mm256_sub_epi16(c, qv);
    return _mm256_madd_epi16(d, d);
  } else {
    return _mm256_madd_epi16(c, qv);
  }
}

// Two codes at a time: the query is loaded once for both, and one pair of
// horizontal adds reduces both sums.
template <bool kL2>
__attribute__((target("avx2"))) inline void SqBatchAvx2(const uint8_t* const* codes, size_t count,
                                                        const int16_t* q, size_t n, int32_t* out) {
  size_t c = 0;
  for (; c + 2 <= count; c += 2) {
    const uint8_t* a = codes[c];
    const uint8_t* b = codes[c + 1];
    __m256i sa = _mm256_setzero_si256(), sb = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i));
      sa = _mm256_add_epi32(
          sa,
          SqTermAvx2<kL2>(
              _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i))), qv));
      sb = _mm256_add_epi32(
          sb,
          SqTermAvx2<kL2>(
              _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i))), qv));
    }
    __m256i h = _mm256_hadd_epi32(sa, sb);  // a01 a23 b01 b23 | a45 a67 b45 b67
    __m128i x = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    x = _mm_hadd_epi32(x, x);  // a b a b
    int32_t ta = _mm_cvtsi128_si32(x), tb = _mm_extract_epi32(x, 1);
    for (; i < n; ++i) {
      if constexpr (kL2) {
        int32_t da = static_cast<int32_t>(a[i]) - q[i], db = static_cast<int32_t>(b[i]) - q[i];
        ta += da * da;
        tb += db * db;
      } else {
        ta += static_cast<int32_t>(a[i]) * q[i];
        tb += static_cast<int32_t>(b[i]) * q[i];
      }
    }
    out[c] = ta;
    out[c + 1] = tb;
  }
  if (c < count) out[c] = kL2 ? SqL2Avx2(codes[c], q, n) : SqDotAvx2(codes[c], q, n);
}

__attribute__((target("avx2"))) void SqL2BatchAvx2(const uint8_t* const* codes, size_t count,
                                                   const int16_t* q, size_t n, int32_t* out) {
  SqBatchAvx2<true>(codes, count, q, n, out);
}
__attribute__((target("avx2"))) void SqDotBatchAvx2(const uint8_t* const* codes, size_t count,
                                                    const int16_t* q, size_t n, int32_t* out) {
  SqBatchAvx2<false>(codes, count, q, n, out);
}

#define AIDB_AVX512BW __attribute__((target("avx512f,avx512bw,avx512vl")))

AIDB_AVX512BW int32_t SqL2Avx512(const uint8_t* code, const int16_t* q, size_t n) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512i c0 =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i)));
    __m512i c1 =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i + 32)));
    __m512i d0 = _mm512_sub_epi16(c0, _mm512_loadu_si512(q + i));
    __m512i d1 = _mm512_sub_epi16(c1, _mm512_loadu_si512(q + i + 32));
    s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(d0, d0));
    s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(d1, d1));
  }
  for (; i < n; i += 32) {
    __mmask32 m = n - i >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << (n - i)) - 1u);
    __m512i c = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, code + i));
    __m512i d = _mm512_sub_epi16(c, _mm512_maskz_loadu_epi16(m, q + i));
    s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(d, d));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

AIDB_AVX512BW int32_t SqDotAvx512(const uint8_t* code, const int16_t* q, size_t n) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512i c0 =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i)));
    __m512i c1 =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i + 32)));
    s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(c0, _mm512_loadu_si512(q + i)));
    s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(c1, _mm512_loadu_si512(q + i + 32)));
  }
  for (; i < n; i += 32) {
    __mmask32 m = n - i >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << (n - i)) - 1u);
    __m512i c = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, code + i));
    s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(c, _mm512_maskz_loadu_epi16(m, q + i)));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

AIDB_AVX512BW void SqL2BatchAvx512(const uint8_t* const* codes, size_t count, const int16_t* q,
                                   size_t n, int32_t* out) {
  for (size_t c = 0; c < count; ++c) out[c] = SqL2Avx512(codes[c], q, n);
}
AIDB_AVX512BW void SqDotBatchAvx512(const uint8_t* const* codes, size_t count, const int16_t* q,
                                    size_t n, int32_t* out) {
  for (size_t c = 0; c < count; ++c) out[c] = SqDotAvx512(codes[c], q, n);
}

// AllFinite over four streams: the n floats are cut into four runs of equal
// length (a multiple of the vector width each), read in lockstep, and the
// rest goes to the scalar loop. Reading from DRAM, four streams ran at
// 1.1-1.5x the rate of one (bench/README.md, "Validation of a batch's
// vectors").
#define AIDB_FINITE_FOUR_STREAMS(W, VEC, LOAD, AND, ADD, OR)                              \
  const size_t run = n / 4 / (W) * (W);                                                   \
  for (size_t i = 0; i < run; i += (W)) {                                                 \
    VEC t0 = ADD(AND(LOAD(v + i), exp), one), t1 = ADD(AND(LOAD(v + run + i), exp), one); \
    VEC t2 = ADD(AND(LOAD(v + 2 * run + i), exp), one);                                   \
    VEC t3 = ADD(AND(LOAD(v + 3 * run + i), exp), one);                                   \
    acc = OR(acc, OR(OR(t0, t1), OR(t2, t3)));                                            \
  }                                                                                       \
  const bool tail_ok = AllFiniteScalar(v + 4 * run, n - 4 * run)

__attribute__((target("avx2"))) inline __m256i LoadI256(const float* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

__attribute__((target("avx2"))) bool AllFiniteAvx2(const float* v, size_t n) {
  const __m256i exp = _mm256_set1_epi32(static_cast<int>(kExpBits));
  const __m256i one = _mm256_set1_epi32(static_cast<int>(kExpOne));
  __m256i acc = _mm256_setzero_si256();
  AIDB_FINITE_FOUR_STREAMS(8, __m256i, LoadI256, _mm256_and_si256, _mm256_add_epi32,
                           _mm256_or_si256);
  return tail_ok && _mm256_movemask_ps(_mm256_castsi256_ps(acc)) == 0;
}

__attribute__((target("avx512f"))) bool AllFiniteAvx512(const float* v, size_t n) {
  const __m512i exp = _mm512_set1_epi32(static_cast<int>(kExpBits));
  const __m512i one = _mm512_set1_epi32(static_cast<int>(kExpOne));
  __m512i acc = _mm512_setzero_si512();
  AIDB_FINITE_FOUR_STREAMS(16, __m512i, _mm512_loadu_si512, _mm512_and_si512, _mm512_add_epi32,
                           _mm512_or_si512);
  return tail_ok && _mm512_test_epi32_mask(acc, _mm512_set1_epi32(INT32_MIN)) == 0;
}
#undef AIDB_FINITE_FOUR_STREAMS

#pragma GCC diagnostic pop

bool CpuHasAvx2Fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool CpuHasAvx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}

#endif  // AIDB_X86

KernelImpl Pick() { return KernelsForLevel(std::getenv(kKernelLevelEnv)); }

const KernelImpl& Picked() {
  static const KernelImpl k = Pick();
  return k;
}

}  // namespace

std::vector<KernelImpl> SupportedKernels() {
  std::vector<KernelImpl> v;
  v.push_back({"portable", &DotPortable, &L2Portable, &L2BoundedPortable, &SqL2Portable,
               &SqDotPortable, &SqL2BatchPortable, &SqDotBatchPortable, &AllFiniteScalar});
#ifdef AIDB_X86
  if (CpuHasAvx2Fma())
    v.push_back({"avx2", &DotAvx2, &L2Avx2, &L2BoundedAvx2, &SqL2Avx2, &SqDotAvx2, &SqL2BatchAvx2,
                 &SqDotBatchAvx2, &AllFiniteAvx2});
  if (CpuHasAvx512())
    v.push_back({"avx512", &DotAvx512, &L2Avx512, &L2BoundedAvx512, &SqL2Avx512, &SqDotAvx512,
                 &SqL2BatchAvx512, &SqDotBatchAvx512, &AllFiniteAvx512});
#endif
  return v;
}

static int KernelRank(std::string_view name) {
  if (name == "portable" || name == "scalar") return 0;
  if (name == "avx2") return 1;
  if (name == "avx512") return 2;
  return -1;
}

KernelImpl KernelsForLevel(const char* level) {
  std::vector<KernelImpl> all = SupportedKernels();
  int want = level == nullptr ? -1 : KernelRank(level);
  if (want < 0) return all.back();  // unset, "auto" or unknown: the fastest
  KernelImpl best = all.front();
  for (const KernelImpl& k : all)
    if (KernelRank(k.name) <= want) best = k;
  return best;
}

Kernel Dot() { return Picked().dot; }
Kernel L2Squared() { return Picked().l2_squared; }
BoundedKernel L2SquaredBounded() { return Picked().l2_squared_bounded; }
SqKernel SqL2() { return Picked().sq_l2; }
SqKernel SqDot() { return Picked().sq_dot; }
SqBatchKernel SqL2Batch() { return Picked().sq_l2_batch; }
SqBatchKernel SqDotBatch() { return Picked().sq_dot_batch; }
FiniteKernel AllFinite() { return Picked().all_finite; }
const char* KernelName() { return Picked().name; }

void Normalize(float* v, size_t n) {
  // Eight independent double sums: one running sum is a chain of dependent
  // adds (~4 cycles per component); eight are 25% faster at 784 dims.
  constexpr size_t kLanes = 8;
  double lane[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) lane[j] += static_cast<double>(v[i + j]) * v[i + j];
  }
  double s = 0.0;
  for (size_t j = 0; j < kLanes; ++j) s += lane[j];
  for (; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  if (s <= 0.0) return;
  float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (size_t i = 0; i < n; ++i) v[i] *= inv;
}

float ScoreFromL2Squared(float d2) { return -std::sqrt(d2 < 0.f ? 0.f : d2); }

}  // namespace aidb::distance
