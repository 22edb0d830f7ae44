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

// out[j] = q . rows[j] for nrows rows of dim floats (row-major): the query
// against every centroid, four rows per pass over the query.
using DotManyFn = void (*)(const float* q, const float* rows, size_t nrows, size_t dim, float* out);
void DotManyScalar(const float* q, const float* rows, size_t nrows, size_t dim, float* out);

// Bit i (i < 32) set when vals[i] <= limit: the candidates of one block
// that can beat a search's current threshold.
using BelowFn = uint32_t (*)(const uint16_t* vals, uint16_t limit);
uint32_t BelowScalar(const uint16_t* vals, uint16_t limit);

struct ScanImpl {
  const char* name;
  ScanFn scan;
  DotManyFn dot_many;
  BelowFn below;
  ScanManyFn scan_many;
};
// Every implementation this CPU supports, scalar first, fastest last.
std::vector<ScanImpl> SupportedScans();
// The fastest, picked once.
ScanFn Scan();
DotManyFn DotMany();
BelowFn Below();
ScanManyFn ScanMany();
const char* ScanName();

}  // namespace aidb::index::pq4
