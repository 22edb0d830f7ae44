// 4-bit fast-scan kernels: portable scalar, AVX2 (_mm256_shuffle_epi8) and
// AVX-512BW (_mm512_shuffle_epi8, two pairs per instruction), compiled with
// per-function target attributes and picked at run time like core/distance.
#include "index/ivf_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AIDB_X86 1
#endif

namespace aidb::index::pq4 {

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

void DotManyScalar(const float* q, const float* rows, size_t nrows, size_t dim, float* out) {
  for (size_t j = 0; j < nrows; ++j) {
    const float* r = rows + j * dim;
    float s = 0.f;
    for (size_t t = 0; t < dim; ++t) s += q[t] * r[t];
    out[j] = s;
  }
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
  size_t q = 0;
  for (; q + 2 <= nq; q += 2) ScanQAvx2<2>(codes, nblocks, npairs, luts + q, outs + q);
  if (q < nq) ScanQAvx2<1>(codes, nblocks, npairs, luts + q, outs + q);
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
  size_t q = 0;
  for (; q + 4 <= nq; q += 4) ScanQAvx512<4>(codes, nblocks, npairs, luts + q, outs + q);
  switch (nq - q) {
    case 3: ScanQAvx512<3>(codes, nblocks, npairs, luts + q, outs + q); break;
    case 2: ScanQAvx512<2>(codes, nblocks, npairs, luts + q, outs + q); break;
    case 1: ScanQAvx512<1>(codes, nblocks, npairs, luts + q, outs + q); break;
    default: break;
  }
}

__attribute__((target("avx2,fma"))) inline float HSum8(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

__attribute__((target("avx2,fma"))) void DotManyAvx2(const float* q, const float* rows,
                                                     size_t nrows, size_t dim, float* out) {
  const size_t d8 = dim & ~size_t{7};
  size_t j = 0;
  for (; j + 4 <= nrows; j += 4) {
    const float* r0 = rows + j * dim;
    const float* r1 = r0 + dim;
    const float* r2 = r1 + dim;
    const float* r3 = r2 + dim;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    for (size_t t = 0; t < d8; t += 8) {
      __m256 x = _mm256_loadu_ps(q + t);
      s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r0 + t), s0);
      s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r1 + t), s1);
      s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r2 + t), s2);
      s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r3 + t), s3);
    }
    float t0 = HSum8(s0), t1 = HSum8(s1), t2 = HSum8(s2), t3 = HSum8(s3);
    for (size_t t = d8; t < dim; ++t) {
      t0 += q[t] * r0[t];
      t1 += q[t] * r1[t];
      t2 += q[t] * r2[t];
      t3 += q[t] * r3[t];
    }
    out[j] = t0, out[j + 1] = t1, out[j + 2] = t2, out[j + 3] = t3;
  }
  if (j < nrows) DotManyScalar(q, rows + j * dim, nrows - j, dim, out + j);
}

AIDB_AVX512BW void DotManyAvx512(const float* q, const float* rows, size_t nrows, size_t dim,
                                 float* out) {
  size_t j = 0;
  const __mmask16 tail = static_cast<__mmask16>((1u << (dim % 16)) - 1u);
  const size_t d16 = dim & ~size_t{15};
  for (; j + 4 <= nrows; j += 4) {
    const float* r0 = rows + j * dim;
    const float* r1 = r0 + dim;
    const float* r2 = r1 + dim;
    const float* r3 = r2 + dim;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    for (size_t t = 0; t < d16; t += 16) {
      __m512 x = _mm512_loadu_ps(q + t);
      s0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r0 + t), s0);
      s1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r1 + t), s1);
      s2 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r2 + t), s2);
      s3 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r3 + t), s3);
    }
    if (tail) {
      __m512 x = _mm512_maskz_loadu_ps(tail, q + d16);
      s0 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(tail, r0 + d16), s0);
      s1 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(tail, r1 + d16), s1);
      s2 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(tail, r2 + d16), s2);
      s3 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(tail, r3 + d16), s3);
    }
    out[j] = _mm512_reduce_add_ps(s0);
    out[j + 1] = _mm512_reduce_add_ps(s1);
    out[j + 2] = _mm512_reduce_add_ps(s2);
    out[j + 3] = _mm512_reduce_add_ps(s3);
  }
  if (j < nrows) DotManyScalar(q, rows + j * dim, nrows - j, dim, out + j);
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

}  // namespace
#pragma GCC diagnostic pop
#endif  // AIDB_X86

std::vector<ScanImpl> SupportedScans() {
  std::vector<ScanImpl> v;
  v.push_back({"scalar", &ScanScalar, &DotManyScalar, &BelowScalar, &ScanManyScalar});
#ifdef AIDB_X86
  if (CpuHasAvx2()) v.push_back({"avx2", &ScanAvx2, &DotManyAvx2, &BelowAvx2, &ScanManyAvx2});
  if (CpuHasAvx512Bw())
    v.push_back({"avx512", &ScanAvx512, &DotManyAvx512, &BelowAvx512, &ScanManyAvx512});
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
DotManyFn DotMany() { return Picked().dot_many; }
BelowFn Below() { return Picked().below; }
ScanManyFn ScanMany() { return Picked().scan_many; }
const char* ScanName() { return Picked().name; }

}  // namespace aidb::index::pq4
