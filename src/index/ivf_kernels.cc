// 4-bit fast-scan kernels: portable scalar, AVX2 (_mm256_shuffle_epi8) and
// AVX-512BW (_mm512_shuffle_epi8, two pairs per instruction), compiled with
// per-function target attributes and picked at run time like core/distance.
#include "index/ivf_kernels.h"

#include "core/distance.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AIDB_X86 1
#endif

namespace aidb::index::pq4 {

// The register-blocked kernels come as templates over the rows (queries,
// vectors) they handle at once, R at the most. ForGroups runs the R-row
// instantiation on each full group of n and the (n % R)-row one on the
// rest: call(fn, i) with fn = make(std::integral_constant<int, r>{}) (the
// r-row instantiation's address; `make` a captureless lambda) and i the
// group's first row. The table is built at compile time.
template <int R, typename Make, typename Call>
inline void ForGroups(size_t n, Make, Call call) {
  static constexpr auto kFns = []<size_t... I>(std::index_sequence<I...>) {
    return std::array{Make{}(std::integral_constant<int, static_cast<int>(I) + 1>{})...};
  }
  (std::make_index_sequence<R>{});
  size_t i = 0;
  for (; i + R <= n; i += R) call(kFns[R - 1], i);
  if (i < n) call(kFns[n - i - 1], i);
}

void ScanScalar(const uint8_t* codes, size_t nblocks, size_t npairs, const uint8_t* lut,
                uint16_t* out) {
  const size_t bb = BlockBytes(npairs);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = codes + b * bb;
    uint32_t acc[kBlock] = {};
    for (size_t p = 0; p < npairs; ++p) {
      const uint8_t* c = block + p * kPairBytes;
      const uint8_t* t0 = lut + p * kPairBytes;
      const uint8_t* t1 = t0 + 16;
      for (size_t i = 0; i < 16; ++i) {
        acc[i] += t0[c[i] & 0x0F] + t1[c[16 + i] & 0x0F];
        acc[16 + i] += t0[c[i] >> 4] + t1[c[16 + i] >> 4];
      }
    }
    for (size_t i = 0; i < kBlock; ++i) out[b * kBlock + i] = static_cast<uint16_t>(acc[i]);
  }
}

void ScanManyScalar(const uint8_t* codes, size_t nblocks, size_t npairs, const uint8_t* const* luts,
                    size_t nq, uint16_t* const* outs) {
  for (size_t q = 0; q < nq; ++q) ScanScalar(codes, nblocks, npairs, luts[q], outs[q]);
}

uint32_t BelowScalar(const uint16_t* vals, uint16_t limit) {
  uint32_t m = 0;
  for (uint32_t i = 0; i < kBlock; ++i) m |= static_cast<uint32_t>(vals[i] <= limit) << i;
  return m;
}

void PackRows(const float* rows, size_t nrows, size_t dim, float* packed) {
  const size_t np = (nrows + kPanel - 1) / kPanel;
  for (size_t p = 0; p < np; ++p)
    for (size_t t = 0; t < dim; ++t)
      for (size_t j = 0; j < kPanel; ++j) {
        const size_t r = p * kPanel + j;
        packed[(p * dim + t) * kPanel + j] = r < nrows ? rows[r * dim + t] : 0.f;
      }
}

namespace {
// x's products with the kPanel rows of one packed panel.
inline void PanelDots(const float* x, const float* panel, size_t dim, float* acc) {
  for (size_t j = 0; j < kPanel; ++j) acc[j] = 0.f;
  for (size_t t = 0; t < dim; ++t) {
    const float xv = x[t];
    for (size_t j = 0; j < kPanel; ++j) acc[j] += xv * panel[t * kPanel + j];
  }
}
}  // namespace

void DotBlockScalar(const float* x, size_t nx, const float* packed, size_t nrows, size_t dim,
                    float* out, size_t ld) {
  const size_t np = (nrows + kPanel - 1) / kPanel;
  for (size_t i = 0; i < nx; ++i)
    for (size_t p = 0; p < np; ++p) {
      float acc[kPanel];
      PanelDots(x + i * dim, packed + p * dim * kPanel, dim, acc);
      for (size_t j = 0; j < kPanel && p * kPanel + j < nrows; ++j)
        out[i * ld + p * kPanel + j] = acc[j];
    }
}

void NearestBlockScalar(const float* x, size_t nx, const float* packed, const float* norms,
                        size_t nrows, size_t dim, uint32_t* best) {
  const size_t np = (nrows + kPanel - 1) / kPanel;
  for (size_t i = 0; i < nx; ++i) {
    uint32_t b = 0;
    float bd = std::numeric_limits<float>::infinity();
    for (size_t p = 0; p < np; ++p) {
      float acc[kPanel];
      PanelDots(x + i * dim, packed + p * dim * kPanel, dim, acc);
      for (size_t j = 0; j < kPanel && p * kPanel + j < nrows; ++j) {
        const float v = norms[p * kPanel + j] - 2.f * acc[j];
        if (v < bd) bd = v, b = static_cast<uint32_t>(p * kPanel + j);
      }
    }
    best[i] = b;
  }
}

void EncodeScalar(const float* r, size_t dim, size_t ds, const float* cbt, uint8_t* codes) {
  const size_t m = (dim + ds - 1) / ds;
  for (size_t s = 0; s < m; ++s) {
    const size_t off = s * ds, len = std::min(ds, dim - off);
    float acc[16] = {};
    for (size_t t = 0; t < len; ++t) {
      const float* w = cbt + (off + t) * 16;
      for (size_t j = 0; j < 16; ++j) {
        const float d = r[off + t] - w[j];
        acc[j] += d * d;
      }
    }
    uint8_t best = 0;
    for (uint8_t j = 1; j < 16; ++j)
      if (acc[j] < acc[best]) best = j;
    codes[s] = best;
  }
}

void LutScalar(const float* q, size_t dim, size_t ds, const float* cbt, float alpha, float* lutf,
               float* lo, float* hi) {
  const size_t m = (dim + ds - 1) / ds;
  for (size_t s = 0; s < m; ++s) {
    const size_t off = s * ds, len = std::min(ds, dim - off);
    float acc[16] = {};
    for (size_t t = 0; t < len; ++t) {
      const float qv = -alpha * q[off + t];
      const float* w = cbt + (off + t) * 16;
      for (size_t j = 0; j < 16; ++j) acc[j] += qv * w[j];
    }
    float l = acc[0], h = acc[0];
    for (size_t j = 1; j < 16; ++j) {
      l = std::min(l, acc[j]);
      h = std::max(h, acc[j]);
    }
    for (size_t j = 0; j < 16; ++j) lutf[s * 16 + j] = acc[j] - l;
    lo[s] = l;
    hi[s] = h;
  }
}

void QuantizeScalar(const float* lutf, size_t n, float inv, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(std::min(255.f, lutf[i] * inv));
}

#ifdef AIDB_X86
// GCC 12's 512->256 extract intrinsics start from an undefined register,
// which trips -W(maybe-)uninitialized; the value is fully overwritten.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace {

// acc_even/acc_odd (16 x u16): per 128-bit lane, word k sums vector 2k / 2k+1
// of a half block. Folds the lanes and interleaves into 16 consecutive
// vector totals.
__attribute__((target("avx2"))) inline void Fold(__m256i even, __m256i odd, uint16_t* out) {
  __m128i e = _mm_add_epi16(_mm256_castsi256_si128(even), _mm256_extracti128_si256(even, 1));
  __m128i o = _mm_add_epi16(_mm256_castsi256_si128(odd), _mm256_extracti128_si256(odd, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi16(e, o));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), _mm_unpackhi_epi16(e, o));
}

// The kernels add each shuffled pair of 8-bit entries as one 16-bit word
// (low entry + 256 * high entry) into `both` and the high entries alone
// into `high`: the low entries' sum is both - 256 * high (mod 2^16, exact:
// the sums are <= 65535), one AND less per shuffle than masking.
__attribute__((target("avx2"))) inline __m256i Low(__m256i both, __m256i high) {
  return _mm256_sub_epi16(both, _mm256_slli_epi16(high, 8));
}

inline void PrefetchBlock(const uint8_t* p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64)
    _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T0);
}

__attribute__((target("avx2"))) uint32_t BelowAvx2(const uint16_t* vals, uint16_t limit) {
  const __m256i lim = _mm256_set1_epi16(static_cast<short>(limit));
  const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(vals));
  const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(vals + 16));
  // Unsigned v <= limit  <=>  min(v, limit) == v.
  const __m256i m0 = _mm256_cmpeq_epi16(_mm256_min_epu16(v0, lim), v0);
  const __m256i m1 = _mm256_cmpeq_epi16(_mm256_min_epu16(v1, lim), v1);
  // Pack to bytes (lane-interleaved), then restore the order.
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi16(m0, m1), 0xD8);
  return static_cast<uint32_t>(_mm256_movemask_epi8(packed));
}

// Shuffles one code pair's nibbles (lo, hi) against table t and adds the
// entries to the four accumulators (see Low).
__attribute__((target("avx2"))) inline void AddPair(__m256i t, __m256i lo, __m256i hi, __m256i* a) {
  __m256i rl = _mm256_shuffle_epi8(t, lo);
  __m256i rh = _mm256_shuffle_epi8(t, hi);
  a[0] = _mm256_add_epi16(a[0], rl);
  a[1] = _mm256_add_epi16(a[1], _mm256_srli_epi16(rl, 8));
  a[2] = _mm256_add_epi16(a[2], rh);
  a[3] = _mm256_add_epi16(a[3], _mm256_srli_epi16(rh, 8));
}

// Scan for Q queries at once: each code pair is loaded and split into
// nibbles once, then shuffled against every query's table. The codes of a
// list come from L3 or memory: blocks are fetched two ahead.
template <int Q>
__attribute__((target("avx2"))) void ScanQAvx2(const uint8_t* codes, size_t nblocks, size_t npairs,
                                               const uint8_t* const* luts, uint16_t* const* outs) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const size_t bb = BlockBytes(npairs);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = codes + b * bb;
    if (b + 2 < nblocks) PrefetchBlock(block + 2 * bb, bb);
    __m256i a[Q][4];
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q)
      for (int k = 0; k < 4; ++k) a[q][k] = _mm256_setzero_si256();
    for (size_t p = 0; p < npairs; ++p) {
      __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + p * kPairBytes));
      __m256i lo = _mm256_and_si256(c, low4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), low4);
#pragma GCC unroll 4
      for (int q = 0; q < Q; ++q) {
        AddPair(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(luts[q] + p * kPairBytes)), lo,
                hi, a[q]);
      }
    }
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) {
      Fold(Low(a[q][0], a[q][1]), a[q][1], outs[q] + b * kBlock);
      Fold(Low(a[q][2], a[q][3]), a[q][3], outs[q] + b * kBlock + 16);
    }
  }
}

__attribute__((target("avx2"))) void ScanAvx2(const uint8_t* codes, size_t nblocks, size_t npairs,
                                              const uint8_t* lut, uint16_t* out) {
  ScanQAvx2<1>(codes, nblocks, npairs, &lut, &out);
}

__attribute__((target("avx2"))) void ScanManyAvx2(const uint8_t* codes, size_t nblocks,
                                                  size_t npairs, const uint8_t* const* luts,
                                                  size_t nq, uint16_t* const* outs) {
  ForGroups<2>(
      nq, [](auto q) { return &ScanQAvx2<decltype(q)::value>; },
      [&](auto fn, size_t q) { fn(codes, nblocks, npairs, luts + q, outs + q); });
}

#define AIDB_AVX512BW __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl")))

// Sums the four 128-bit lanes of a 512-bit accumulator into 256 bits (the
// sum lands in both halves' lane 0 after the AVX2 Fold).
AIDB_AVX512BW inline __m256i Fold512(__m512i v) {
  return _mm256_add_epi16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

AIDB_AVX512BW uint32_t BelowAvx512(const uint16_t* vals, uint16_t limit) {
  return _mm512_cmple_epu16_mask(_mm512_loadu_si512(vals),
                                 _mm512_set1_epi16(static_cast<short>(limit)));
}

template <int Q>
AIDB_AVX512BW void ScanQAvx512(const uint8_t* codes, size_t nblocks, size_t npairs,
                               const uint8_t* const* luts, uint16_t* const* outs) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m256i low4y = _mm256_set1_epi8(0x0F);
  const size_t bb = BlockBytes(npairs);
  const size_t pairs2 = npairs & ~size_t{1};
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = codes + b * bb;
    if (b + 2 < nblocks) PrefetchBlock(block + 2 * bb, bb);
    __m512i a[Q][4];
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q)
      for (int k = 0; k < 4; ++k) a[q][k] = _mm512_setzero_si512();
    for (size_t p = 0; p < pairs2; p += 2) {
      __m512i c = _mm512_loadu_si512(block + p * kPairBytes);
      __m512i lo = _mm512_and_si512(c, low4);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), low4);
#pragma GCC unroll 4
      for (int q = 0; q < Q; ++q) {
        __m512i t = _mm512_loadu_si512(luts[q] + p * kPairBytes);
        __m512i rl = _mm512_shuffle_epi8(t, lo);
        __m512i rh = _mm512_shuffle_epi8(t, hi);
        a[q][0] = _mm512_add_epi16(a[q][0], rl);
        a[q][1] = _mm512_add_epi16(a[q][1], _mm512_srli_epi16(rl, 8));
        a[q][2] = _mm512_add_epi16(a[q][2], rh);
        a[q][3] = _mm512_add_epi16(a[q][3], _mm512_srli_epi16(rh, 8));
      }
    }
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) {
      __m256i y[4] = {Fold512(a[q][0]), Fold512(a[q][1]), Fold512(a[q][2]), Fold512(a[q][3])};
      if (pairs2 != npairs) {  // an odd pair: 256 bits
        const size_t p = pairs2;
        __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + p * kPairBytes));
        AddPair(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(luts[q] + p * kPairBytes)),
                _mm256_and_si256(c, low4y), _mm256_and_si256(_mm256_srli_epi16(c, 4), low4y), y);
      }
      Fold(Low(y[0], y[1]), y[1], outs[q] + b * kBlock);
      Fold(Low(y[2], y[3]), y[3], outs[q] + b * kBlock + 16);
    }
  }
}

AIDB_AVX512BW void ScanAvx512(const uint8_t* codes, size_t nblocks, size_t npairs,
                              const uint8_t* lut, uint16_t* out) {
  ScanQAvx512<1>(codes, nblocks, npairs, &lut, &out);
}

AIDB_AVX512BW void ScanManyAvx512(const uint8_t* codes, size_t nblocks, size_t npairs,
                                  const uint8_t* const* luts, size_t nq, uint16_t* const* outs) {
  ForGroups<4>(
      nq, [](auto q) { return &ScanQAvx512<decltype(q)::value>; },
      [&](auto fn, size_t q) { fn(codes, nblocks, npairs, luts + q, outs + q); });
}

// ---- blocked products (see DotBlockFn) ----

// AVX2: R vectors x one panel (two registers of 8 rows): per dimension two
// loads of the panel, R broadcasts, 2R multiply-adds (2R + 3 registers).
template <int R>
__attribute__((target("avx2,fma"), always_inline)) inline void TileAvx2(const float* x, size_t dim,
                                                                        const float* panel,
                                                                        __m256 (&acc)[R][2]) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (size_t t = 0; t < dim; ++t) {
    const __m256 c0 = _mm256_loadu_ps(panel + t * kPanel);
    const __m256 c1 = _mm256_loadu_ps(panel + t * kPanel + 8);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 xv = _mm256_broadcast_ss(x + r * dim + t);
      acc[r][0] = _mm256_fmadd_ps(xv, c0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(xv, c1, acc[r][1]);
    }
  }
}

template <int R>
__attribute__((target("avx2,fma"))) void DotRowsAvx2(const float* x, const float* packed,
                                                     size_t nrows, size_t dim, float* out,
                                                     size_t ld) {
  const size_t np = (nrows + kPanel - 1) / kPanel;
  for (size_t p = 0; p < np; ++p) {
    __m256 acc[R][2];
    TileAvx2<R>(x, dim, packed + p * dim * kPanel, acc);
    const size_t col = p * kPanel, left = nrows - col;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      float* o = out + r * ld + col;
      if (left >= kPanel) {
        _mm256_storeu_ps(o, acc[r][0]);
        _mm256_storeu_ps(o + 8, acc[r][1]);
      } else {
        alignas(32) float tmp[kPanel];
        _mm256_store_ps(tmp, acc[r][0]);
        _mm256_store_ps(tmp + 8, acc[r][1]);
        for (size_t j = 0; j < left; ++j) o[j] = tmp[j];
      }
    }
  }
}

__attribute__((target("avx2,fma"))) void DotBlockAvx2(const float* x, size_t nx,
                                                      const float* packed, size_t nrows, size_t dim,
                                                      float* out, size_t ld) {
  ForGroups<6>(
      nx, [](auto r) { return &DotRowsAvx2<decltype(r)::value>; },
      [&](auto fn, size_t i) { fn(x + i * dim, packed, nrows, dim, out + i * ld, ld); });
}

// The lowest index of the lanes holding the smallest value.
inline uint32_t ArgMin16(const float* v, const uint32_t* idx) {
  float m = v[0];
  for (size_t j = 1; j < kPanel; ++j) m = v[j] < m ? v[j] : m;
  uint32_t b = 0xFFFFFFFFu;
  for (size_t j = 0; j < kPanel; ++j)
    if (v[j] == m && idx[j] < b) b = idx[j];
  return b == 0xFFFFFFFFu ? 0 : b;  // all NaN: row 0, as the scalar kernel
}

template <int R>
__attribute__((target("avx2,fma"))) void NearestRowsAvx2(const float* x, const float* packed,
                                                         const float* norms, size_t nrows,
                                                         size_t dim, uint32_t* best) {
  const size_t np = (nrows + kPanel - 1) / kPanel;
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  const __m256i lane0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i lane1 = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
  __m256 bv[R][2];
  __m256i bi[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    bv[r][0] = bv[r][1] = inf;
    bi[r][0] = bi[r][1] = _mm256_setzero_si256();
  }
  for (size_t p = 0; p < np; ++p) {
    __m256 acc[R][2];
    TileAvx2<R>(x, dim, packed + p * dim * kPanel, acc);
    const size_t col = p * kPanel, left = nrows - col;
    __m256 n0, n1;
    if (left >= kPanel) {
      n0 = _mm256_loadu_ps(norms + col);
      n1 = _mm256_loadu_ps(norms + col + 8);
    } else {  // padding rows score +inf
      alignas(32) float tmp[kPanel];
      for (size_t j = 0; j < kPanel; ++j)
        tmp[j] = j < left ? norms[col + j] : std::numeric_limits<float>::infinity();
      n0 = _mm256_load_ps(tmp);
      n1 = _mm256_load_ps(tmp + 8);
    }
    const __m256i base = _mm256_set1_epi32(static_cast<int>(col));
    const __m256i i0 = _mm256_add_epi32(base, lane0), i1 = _mm256_add_epi32(base, lane1);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 v0 = _mm256_sub_ps(n0, _mm256_add_ps(acc[r][0], acc[r][0]));
      const __m256 v1 = _mm256_sub_ps(n1, _mm256_add_ps(acc[r][1], acc[r][1]));
      const __m256 m0 = _mm256_cmp_ps(v0, bv[r][0], _CMP_LT_OQ);
      const __m256 m1 = _mm256_cmp_ps(v1, bv[r][1], _CMP_LT_OQ);
      bv[r][0] = _mm256_blendv_ps(bv[r][0], v0, m0);
      bv[r][1] = _mm256_blendv_ps(bv[r][1], v1, m1);
      bi[r][0] = _mm256_castps_si256(
          _mm256_blendv_ps(_mm256_castsi256_ps(bi[r][0]), _mm256_castsi256_ps(i0), m0));
      bi[r][1] = _mm256_castps_si256(
          _mm256_blendv_ps(_mm256_castsi256_ps(bi[r][1]), _mm256_castsi256_ps(i1), m1));
    }
  }
  for (int r = 0; r < R; ++r) {
    alignas(32) float v[kPanel];
    alignas(32) uint32_t idx[kPanel];
    _mm256_store_ps(v, bv[r][0]);
    _mm256_store_ps(v + 8, bv[r][1]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(idx), bi[r][0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(idx + 8), bi[r][1]);
    best[r] = ArgMin16(v, idx);
  }
}

__attribute__((target("avx2,fma"))) void NearestBlockAvx2(const float* x, size_t nx,
                                                          const float* packed, const float* norms,
                                                          size_t nrows, size_t dim,
                                                          uint32_t* best) {
  ForGroups<6>(
      nx, [](auto r) { return &NearestRowsAvx2<decltype(r)::value>; },
      [&](auto fn, size_t i) { fn(x + i * dim, packed, norms, nrows, dim, best + i); });
}

// AVX-512: R vectors x P panels (one register each): per dimension P loads,
// R broadcasts, R * P multiply-adds (8 x 3: 24 accumulators, 28 registers).
template <int R, int P>
__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl"), always_inline)) inline void TileAvx512(
    const float* x, size_t dim, const float* panel, __m512 (&acc)[R][P]) {
  const size_t ps = dim * kPanel;
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < P; ++q) acc[r][q] = _mm512_setzero_ps();
  for (size_t t = 0; t < dim; ++t) {
    __m512 c[P];
#pragma GCC unroll 4
    for (int q = 0; q < P; ++q) c[q] = _mm512_loadu_ps(panel + q * ps + t * kPanel);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 xv = _mm512_set1_ps(x[r * dim + t]);
#pragma GCC unroll 4
      for (int q = 0; q < P; ++q) acc[r][q] = _mm512_fmadd_ps(xv, c[q], acc[r][q]);
    }
  }
}

inline __mmask16 LeftMask(size_t left) {
  return left >= kPanel ? static_cast<__mmask16>(0xFFFF)
                        : static_cast<__mmask16>((1u << left) - 1u);
}

template <int R, int P>
AIDB_AVX512BW inline void DotTileAvx512(const float* x, const float* packed, size_t p, size_t nrows,
                                        size_t dim, float* out, size_t ld) {
  __m512 acc[R][P];
  TileAvx512<R, P>(x, dim, packed + p * dim * kPanel, acc);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < P; ++q) {
      const size_t col = (p + q) * kPanel;
      _mm512_mask_storeu_ps(out + r * ld + col, LeftMask(nrows - col), acc[r][q]);
    }
}

template <int R>
AIDB_AVX512BW void DotRowsAvx512(const float* x, const float* packed, size_t nrows, size_t dim,
                                 float* out, size_t ld) {
  const size_t np = (nrows + kPanel - 1) / kPanel;
  size_t p = 0;
  for (; p + 3 <= np; p += 3) DotTileAvx512<R, 3>(x, packed, p, nrows, dim, out, ld);
  if (np - p == 2) DotTileAvx512<R, 2>(x, packed, p, nrows, dim, out, ld);
  if (np - p == 1) DotTileAvx512<R, 1>(x, packed, p, nrows, dim, out, ld);
}

AIDB_AVX512BW void DotBlockAvx512(const float* x, size_t nx, const float* packed, size_t nrows,
                                  size_t dim, float* out, size_t ld) {
  ForGroups<8>(
      nx, [](auto r) { return &DotRowsAvx512<decltype(r)::value>; },
      [&](auto fn, size_t i) { fn(x + i * dim, packed, nrows, dim, out + i * ld, ld); });
}

template <int R, int P>
AIDB_AVX512BW inline void NearestTileAvx512(const float* x, const float* packed, const float* norms,
                                            size_t p, size_t nrows, size_t dim, __m512 (&bv)[R],
                                            __m512i (&bi)[R]) {
  __m512 acc[R][P];
  TileAvx512<R, P>(x, dim, packed + p * dim * kPanel, acc);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#pragma GCC unroll 4
  for (int q = 0; q < P; ++q) {
    const size_t col = (p + q) * kPanel;
    // Padding rows score +inf.
    const __m512 nv = _mm512_mask_loadu_ps(_mm512_set1_ps(std::numeric_limits<float>::infinity()),
                                           LeftMask(nrows - col), norms + col);
    const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(col)), lane);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 v = _mm512_sub_ps(nv, _mm512_add_ps(acc[r][q], acc[r][q]));
      const __mmask16 m = _mm512_cmp_ps_mask(v, bv[r], _CMP_LT_OQ);
      bv[r] = _mm512_mask_mov_ps(bv[r], m, v);
      bi[r] = _mm512_mask_mov_epi32(bi[r], m, idx);
    }
  }
}

template <int R>
AIDB_AVX512BW void NearestRowsAvx512(const float* x, const float* packed, const float* norms,
                                     size_t nrows, size_t dim, uint32_t* best) {
  const size_t np = (nrows + kPanel - 1) / kPanel;
  __m512 bv[R];
  __m512i bi[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    bv[r] = _mm512_set1_ps(std::numeric_limits<float>::infinity());
    bi[r] = _mm512_setzero_si512();
  }
  size_t p = 0;
  for (; p + 3 <= np; p += 3) NearestTileAvx512<R, 3>(x, packed, norms, p, nrows, dim, bv, bi);
  if (np - p == 2) NearestTileAvx512<R, 2>(x, packed, norms, p, nrows, dim, bv, bi);
  if (np - p == 1) NearestTileAvx512<R, 1>(x, packed, norms, p, nrows, dim, bv, bi);
  for (int r = 0; r < R; ++r) {
    alignas(64) float v[kPanel];
    alignas(64) uint32_t idx[kPanel];
    _mm512_store_ps(v, bv[r]);
    _mm512_store_si512(idx, bi[r]);
    best[r] = ArgMin16(v, idx);
  }
}

AIDB_AVX512BW void NearestBlockAvx512(const float* x, size_t nx, const float* packed,
                                      const float* norms, size_t nrows, size_t dim,
                                      uint32_t* best) {
  ForGroups<8>(
      nx, [](auto r) { return &NearestRowsAvx512<decltype(r)::value>; },
      [&](auto fn, size_t i) { fn(x + i * dim, packed, norms, nrows, dim, best + i); });
}

// ---- encoding (see EncodeFn) ----

__attribute__((target("avx2,fma"))) void EncodeAvx2(const float* r, size_t dim, size_t ds,
                                                    const float* cbt, uint8_t* codes) {
  const size_t m = (dim + ds - 1) / ds;
  for (size_t s = 0; s < m; ++s) {
    const size_t off = s * ds, len = std::min(ds, dim - off);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (size_t t = 0; t < len; ++t) {
      const __m256 x = _mm256_broadcast_ss(r + off + t);
      const float* w = cbt + (off + t) * 16;
      const __m256 d0 = _mm256_sub_ps(x, _mm256_loadu_ps(w));
      const __m256 d1 = _mm256_sub_ps(x, _mm256_loadu_ps(w + 8));
      a0 = _mm256_fmadd_ps(d0, d0, a0);
      a1 = _mm256_fmadd_ps(d1, d1, a1);
    }
    // The minimum in every lane, then the first lane holding it.
    __m256 mn = _mm256_min_ps(a0, a1);
    mn = _mm256_min_ps(mn, _mm256_permute2f128_ps(mn, mn, 1));
    mn = _mm256_min_ps(mn, _mm256_shuffle_ps(mn, mn, 0x4E));
    mn = _mm256_min_ps(mn, _mm256_shuffle_ps(mn, mn, 0xB1));
    const uint32_t eq =
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a0, mn, _CMP_EQ_OQ))) |
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a1, mn, _CMP_EQ_OQ))) << 8;
    codes[s] = eq ? static_cast<uint8_t>(__builtin_ctz(eq)) : 0;
  }
}

AIDB_AVX512BW void EncodeAvx512(const float* r, size_t dim, size_t ds, const float* cbt,
                                uint8_t* codes) {
  const size_t m = (dim + ds - 1) / ds;
  for (size_t s = 0; s < m; ++s) {
    const size_t off = s * ds, len = std::min(ds, dim - off);
    __m512 a = _mm512_setzero_ps();
    for (size_t t = 0; t < len; ++t) {
      const __m512 d =
          _mm512_sub_ps(_mm512_set1_ps(r[off + t]), _mm512_loadu_ps(cbt + (off + t) * 16));
      a = _mm512_fmadd_ps(d, d, a);
    }
    const uint32_t eq = _mm512_cmp_ps_mask(a, _mm512_set1_ps(_mm512_reduce_min_ps(a)), _CMP_EQ_OQ);
    codes[s] = eq ? static_cast<uint8_t>(__builtin_ctz(eq)) : 0;
  }
}

// ---- lookup tables (see LutFn, QuantizeFn) ----

__attribute__((target("avx2,fma"))) void LutAvx2(const float* q, size_t dim, size_t ds,
                                                 const float* cbt, float alpha, float* lutf,
                                                 float* lo, float* hi) {
  const size_t m = (dim + ds - 1) / ds;
  for (size_t s = 0; s < m; ++s) {
    const size_t off = s * ds, len = std::min(ds, dim - off);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (size_t t = 0; t < len; ++t) {
      const __m256 qv = _mm256_set1_ps(-alpha * q[off + t]);
      const float* w = cbt + (off + t) * 16;
      a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(w), a0);
      a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(w + 8), a1);
    }
    __m256 mn = _mm256_min_ps(a0, a1), mx = _mm256_max_ps(a0, a1);
    mn = _mm256_min_ps(mn, _mm256_permute2f128_ps(mn, mn, 1));
    mx = _mm256_max_ps(mx, _mm256_permute2f128_ps(mx, mx, 1));
    mn = _mm256_min_ps(mn, _mm256_shuffle_ps(mn, mn, 0x4E));
    mx = _mm256_max_ps(mx, _mm256_shuffle_ps(mx, mx, 0x4E));
    mn = _mm256_min_ps(mn, _mm256_shuffle_ps(mn, mn, 0xB1));
    mx = _mm256_max_ps(mx, _mm256_shuffle_ps(mx, mx, 0xB1));
    _mm256_storeu_ps(lutf + s * 16, _mm256_sub_ps(a0, mn));
    _mm256_storeu_ps(lutf + s * 16 + 8, _mm256_sub_ps(a1, mn));
    lo[s] = _mm256_cvtss_f32(mn);
    hi[s] = _mm256_cvtss_f32(mx);
  }
}

__attribute__((target("avx2,fma"))) void QuantizeAvx2(const float* lutf, size_t n, float inv,
                                                      uint8_t* out) {
  const __m256 vinv = _mm256_set1_ps(inv), cap = _mm256_set1_ps(255.f);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // min(x, 255) with x first: a NaN gives 255, as std::min(255.f, x).
    const __m256i a =
        _mm256_cvttps_epi32(_mm256_min_ps(_mm256_mul_ps(_mm256_loadu_ps(lutf + i), vinv), cap));
    const __m256i b =
        _mm256_cvttps_epi32(_mm256_min_ps(_mm256_mul_ps(_mm256_loadu_ps(lutf + i + 8), vinv), cap));
    // 16 words (lanes interleaved by the pack), then 16 bytes in order.
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
    const __m128i bytes =
        _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), bytes);
  }
  if (i < n) QuantizeScalar(lutf + i, n - i, inv, out + i);
}

AIDB_AVX512BW void LutAvx512(const float* q, size_t dim, size_t ds, const float* cbt, float alpha,
                             float* lutf, float* lo, float* hi) {
  const size_t m = (dim + ds - 1) / ds;
  for (size_t s = 0; s < m; ++s) {
    const size_t off = s * ds, len = std::min(ds, dim - off);
    __m512 a = _mm512_setzero_ps();
    for (size_t t = 0; t < len; ++t)
      a = _mm512_fmadd_ps(_mm512_set1_ps(-alpha * q[off + t]),
                          _mm512_loadu_ps(cbt + (off + t) * 16), a);
    const float l = _mm512_reduce_min_ps(a);
    _mm512_storeu_ps(lutf + s * 16, _mm512_sub_ps(a, _mm512_set1_ps(l)));
    lo[s] = l;
    hi[s] = _mm512_reduce_max_ps(a);
  }
}

AIDB_AVX512BW void QuantizeAvx512(const float* lutf, size_t n, float inv, uint8_t* out) {
  const __m512 vinv = _mm512_set1_ps(inv), cap = _mm512_set1_ps(255.f);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_min_ps(_mm512_mul_ps(_mm512_loadu_ps(lutf + i), vinv), cap);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
  }
  if (i < n) QuantizeScalar(lutf + i, n - i, inv, out + i);
}

bool CpuHasAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool CpuHasAvx512Bw() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
         __builtin_cpu_supports("fma");
}

// ---- the re-rank's distances, four rows at a time (see Dist4Fn) ----

// core/distance's AVX-512 Dot (kL2 false) and L2Squared (kL2 true) of `a`
// and four rows: per row the same four accumulators, steps, masked tail
// and reduction as those kernels, so the same bits; the four rows' loads
// are interleaved, four memory streams at once.
template <bool kL2>
__attribute__((target("avx512f"), always_inline)) inline __m512 Dist4Step(__m512 x, __m512 y,
                                                                          __m512 acc) {
  if constexpr (kL2) {
    const __m512 d = _mm512_sub_ps(x, y);
    return _mm512_fmadd_ps(d, d, acc);
  } else {
    return _mm512_fmadd_ps(x, y, acc);
  }
}

template <bool kL2>
__attribute__((target("avx512f"))) void Dist4Avx512(const float* a, const float* const* rows,
                                                    size_t n, float* out) {
  __m512 s[4][4];
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) s[k][j] = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m512 av = _mm512_loadu_ps(a + i + 16 * j);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k)
        s[k][j] = Dist4Step<kL2>(av, _mm512_loadu_ps(rows[k] + i + 16 * j), s[k][j]);
    }
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 av = _mm512_loadu_ps(a + i);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) s[k][0] = Dist4Step<kL2>(av, _mm512_loadu_ps(rows[k] + i), s[k][0]);
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512 av = _mm512_maskz_loadu_ps(m, a + i);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k)
      s[k][1] = Dist4Step<kL2>(av, _mm512_maskz_loadu_ps(m, rows[k] + i), s[k][1]);
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k)
    out[k] = _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(s[k][0], s[k][1]), _mm512_add_ps(s[k][2], s[k][3])));
}

}  // namespace
#pragma GCC diagnostic pop
#endif  // AIDB_X86

namespace {
// The four-row form of the distance kernels' level, if it has one.
Dist4Fn PickDist4(bool l2) {
#ifdef AIDB_X86
  if (std::strcmp(distance::KernelName(), "avx512") == 0)
    return l2 ? &Dist4Avx512<true> : &Dist4Avx512<false>;
#endif
  (void)l2;
  return nullptr;
}
}  // namespace

Dist4Fn Dot4() {
  static const Dist4Fn f = PickDist4(false);
  return f;
}
Dist4Fn L2Squared4() {
  static const Dist4Fn f = PickDist4(true);
  return f;
}

std::vector<ScanImpl> SupportedScans() {
  std::vector<ScanImpl> v;
  v.push_back({"scalar", &ScanScalar, &BelowScalar, &ScanManyScalar, &DotBlockScalar,
               &NearestBlockScalar, &EncodeScalar, &LutScalar, &QuantizeScalar});
#ifdef AIDB_X86
  if (CpuHasAvx2())
    v.push_back({"avx2", &ScanAvx2, &BelowAvx2, &ScanManyAvx2, &DotBlockAvx2, &NearestBlockAvx2,
                 &EncodeAvx2, &LutAvx2, &QuantizeAvx2});
  if (CpuHasAvx512Bw())
    v.push_back({"avx512", &ScanAvx512, &BelowAvx512, &ScanManyAvx512, &DotBlockAvx512,
                 &NearestBlockAvx512, &EncodeAvx512, &LutAvx512, &QuantizeAvx512});
#endif
  return v;
}

namespace {
const ScanImpl& Picked() {
  static const ScanImpl k = SupportedScans().back();
  return k;
}
}  // namespace

ScanFn Scan() { return Picked().scan; }
BelowFn Below() { return Picked().below; }
ScanManyFn ScanMany() { return Picked().scan_many; }
DotBlockFn DotBlock() { return Picked().dot_block; }
NearestBlockFn NearestBlock() { return Picked().nearest_block; }
EncodeFn Encode() { return Picked().encode; }
LutFn Lut() { return Picked().lut; }
QuantizeFn Quantize() { return Picked().quantize; }
const char* ScanName() { return Picked().name; }

}  // namespace aidb::index::pq4
