// Constants and helpers shared by the HNSW implementation files (hnsw.cc:
// the graph; hnsw_compact.cc; hnsw_snapshot.cc). Not part of the index API.
#pragma once

#include <cstdint>

namespace aidb::index::hnsw_internal {

inline constexpr uint32_t kNoSlot = 0xFFFFFFFFu;
inline constexpr int kMaxLevel = 31;
inline constexpr uint32_t kMaxM = 256;  // m0 = 2 * m must fit the uint16 count
// Level-0 lists hold 3-byte slot numbers up to this many slots.
inline constexpr uint32_t kNarrowSlots = 1u << 24;

// The entry point and top level packed in one 64-bit atomic.
inline uint64_t PackEntry(uint32_t slot, int level) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(level)) << 32) | slot;
}
inline uint32_t EntrySlot(uint64_t e) { return static_cast<uint32_t>(e); }
inline int EntryLevel(uint64_t e) { return static_cast<int>(static_cast<uint32_t>(e >> 32)); }

}  // namespace aidb::index::hnsw_internal
