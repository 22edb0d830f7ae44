// CRC32C (Castagnoli), hardware accelerated through Intel ISA-L.
#pragma once

#include <cstddef>
#include <cstdint>

namespace aidb::crc32c {

// CRC32C of data[0, n), continuing from `crc` (0 for a fresh checksum).
// Value("123456789") == 0xE3069283.
uint32_t Extend(uint32_t crc, const void* data, size_t n);
inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }

// LevelDB's mask: storing the CRC of data that embeds CRCs is problematic.
inline constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace aidb::crc32c
