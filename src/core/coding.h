// Fixed-width little-endian coding (LevelDB's coding.h): the one place that
// turns integers into bytes of the on-disk formats and back. The host is
// little-endian (x86-64, aarch64), so these are plain unaligned copies.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace aidb {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "AIDB's formats assume a little-endian host");

inline void EncodeFixed32(void* dst, uint32_t v) { std::memcpy(dst, &v, sizeof(v)); }
inline void EncodeFixed64(void* dst, uint64_t v) { std::memcpy(dst, &v, sizeof(v)); }

inline uint32_t DecodeFixed32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline uint64_t DecodeFixed64(const void* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Appends to a string.
inline void PutFixed32(std::string* dst, uint32_t v) {
  dst->append(reinterpret_cast<const char*>(&v), sizeof(v));
}
inline void PutFixed64(std::string* dst, uint64_t v) {
  dst->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

}  // namespace aidb
