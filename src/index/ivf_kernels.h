// 4-bit product-quantisation "fast scan" kernels for IvfIndex (index/ivf.h).
//
// Codes of a list are stored in blocks of 32 vectors. A vector has `npairs`
// pairs of 4-bit codes (subspaces 2p and 2p+1); a block holds, per pair, 32
// bytes: byte i (i < 16) = code_{2p}[v_i] | code_{2p}[v_{i+16}] << 4, byte
// 16 + i = code_{2p+1}[v_i] | code_{2p+1}[v_{i+16}] << 4. So one 256-bit load
// of a pair and one in-register shuffle against the pair's two 16-entry
// lookup tables (one per 128-bit lane) score 16 vectors on each lane at once;
// the high nibbles give the other 16 (FAISS's IVFPQFastScan idea, our own
// layout and code).
//
// The lookup table is 8-bit: per pair, 32 bytes (16 entries of subspace 2p,
// then 16 of 2p+1). Sums are accumulated in 16 bits without saturation: the
// caller scales the table so the sum of the per-subspace maxima is <= 65535.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace aidb::index::pq4 {

inline constexpr size_t kBlock = 32;  // vectors per code block
inline constexpr size_t kPairBytes = 32;

// Bytes of one block of codes with `npairs` pairs.
inline size_t BlockBytes(size_t npairs) { return npairs * kPairBytes; }

// Sets / reads the 4-bit code of subspace `m` of vector `i` (0..31) of a block.
inline void SetCode(uint8_t* block, size_t i, size_t m, uint8_t code) {
  uint8_t* b = block + (m / 2) * kPairBytes + (m % 2) * 16 + (i % 16);
  if (i < 16) {
    *b = static_cast<uint8_t>((*b & 0xF0) | (code & 0x0F));
  } else {
    *b = static_cast<uint8_t>((*b & 0x0F) | ((code & 0x0F) << 4));
  }
}
inline uint8_t GetCode(const uint8_t* block, size_t i, size_t m) {
  const uint8_t b = block[(m / 2) * kPairBytes + (m % 2) * 16 + (i % 16)];
  return i < 16 ? (b & 0x0F) : (b >> 4);
}

// Scores `nblocks` consecutive blocks: out[32 * b + i] = sum over subspaces of
// lut[code] for vector i of block b.
using ScanFn = void (*)(const uint8_t* codes, size_t nblocks, size_t npairs, const uint8_t* lut,
                        uint16_t* out);

void ScanScalar(const uint8_t* codes, size_t nblocks, size_t npairs, const uint8_t* lut,
                uint16_t* out);

// Scan for nq queries over the same blocks: outs[q] as Scan with luts[q].
// The fast kernels load and split each code pair once for up to four
// queries (a list scanned for several queries of a batch).
using ScanManyFn = void (*)(const uint8_t* codes, size_t nblocks, size_t npairs,
                            const uint8_t* const* luts, size_t nq, uint16_t* const* outs);
void ScanManyScalar(const uint8_t* codes, size_t nblocks, size_t npairs, const uint8_t* const* luts,
                    size_t nq, uint16_t* const* outs);

// Blocked vector x row products (nearest-centroid search, centroid scores of
// a run of queries), GEMM-like: the rows (centroids) are packed in panels of
// kPanel rows, dimension-major within a panel:
//   packed[(p * dim + t) * kPanel + j] = rows[(p * kPanel + j) * dim + t]
// (the last panel padded with zero rows), so one vector load holds
// dimension t of 16 rows and a kernel scores a register block of vectors
// against several panels with broadcasts and fused multiply-adds, no
// horizontal sums. Every product x.row is one multiply-add chain over
// t = 0..dim-1 starting from 0: the AVX2 and AVX-512 kernels give the same
// bits, and a vector's products do not depend on the other vectors of the
// call or its position among them (the scalar kernel rounds each product
// before adding).
inline constexpr size_t kPanel = 16;
inline size_t PackedFloats(size_t nrows, size_t dim) {
  return (nrows + kPanel - 1) / kPanel * kPanel * dim;
}
void PackRows(const float* rows, size_t nrows, size_t dim, float* packed);

// out[i * ld + j] = x_i . row_j for nx row-major vectors x (dim floats each)
// and the nrows packed rows (ld >= nrows).
using DotBlockFn = void (*)(const float* x, size_t nx, const float* packed, size_t nrows,
                            size_t dim, float* out, size_t ld);
void DotBlockScalar(const float* x, size_t nx, const float* packed, size_t nrows, size_t dim,
                    float* out, size_t ld);

// best[i] = the row j minimising norms[j] - 2 x_i.row_j (the L2-nearest row
// when norms[j] = ||row_j||^2; the lowest j of equal values), for nx vectors.
using NearestBlockFn = void (*)(const float* x, size_t nx, const float* packed, const float* norms,
                                size_t nrows, size_t dim, uint32_t* best);
void NearestBlockScalar(const float* x, size_t nx, const float* packed, const float* norms,
                        size_t nrows, size_t dim, uint32_t* best);

// The 4-bit codes of a residual r (dim floats): codes[s] = the j < 16
// minimising ||r_s - w_sj||^2 (the lowest j of equal values) for subspace s
// (dims [s * ds, min(dim, s * ds + ds))), from the transposed codebooks
// cbt[(s * ds + t) * 16 + j] = dimension t of codeword j of subspace s.
using EncodeFn = void (*)(const float* r, size_t dim, size_t ds, const float* cbt, uint8_t* codes);
void EncodeScalar(const float* r, size_t dim, size_t ds, const float* cbt, uint8_t* codes);

// A query's lookup table in floats: with acc_sj = sum over the subspace's
// dims t of (-alpha q_t) * w_sjt (transposed codebooks as for Encode),
// lutf[s * 16 + j] = acc_sj - lo[s], lo[s] / hi[s] = min / max over j of
// acc_sj.
using LutFn = void (*)(const float* q, size_t dim, size_t ds, const float* cbt, float alpha,
                       float* lutf, float* lo, float* hi);
void LutScalar(const float* q, size_t dim, size_t ds, const float* cbt, float alpha, float* lutf,
               float* lo, float* hi);
// out[i] = min(255, lutf[i] * inv) truncated, for n (a multiple of 16)
// entries >= 0: the 8-bit table (entry j of subspace s at s * 16 + j, the
// pair layout of Scan).
using QuantizeFn = void (*)(const float* lutf, size_t n, float inv, uint8_t* out);
void QuantizeScalar(const float* lutf, size_t n, float inv, uint8_t* out);

// Bit i (i < 32) set when vals[i] <= limit: the candidates of one block
// that can beat a search's current threshold.
using BelowFn = uint32_t (*)(const uint16_t* vals, uint16_t limit);
uint32_t BelowScalar(const uint16_t* vals, uint16_t limit);

// out[k] = distance::Dot() (Dot4) or distance::L2Squared() (L2Squared4)
// of a and rows[k], k < 4, bit for bit: the re-rank scores four candidates
// per call, their vectors (cache misses) read as four streams at once.
// Null when the distance kernels' level has no four-row form (the caller
// then calls the distance kernel per row).
using Dist4Fn = void (*)(const float* a, const float* const* rows, size_t n, float* out);
Dist4Fn Dot4();
Dist4Fn L2Squared4();

struct ScanImpl {
  const char* name;
  ScanFn scan;
  BelowFn below;
  ScanManyFn scan_many;
  DotBlockFn dot_block;
  NearestBlockFn nearest_block;
  EncodeFn encode;
  LutFn lut;
  QuantizeFn quantize;
};
// Every implementation this CPU supports, scalar first, fastest last.
std::vector<ScanImpl> SupportedScans();
// The fastest, picked once.
ScanFn Scan();
BelowFn Below();
ScanManyFn ScanMany();
DotBlockFn DotBlock();
NearestBlockFn NearestBlock();
EncodeFn Encode();
LutFn Lut();
QuantizeFn Quantize();
const char* ScanName();

}  // namespace aidb::index::pq4
