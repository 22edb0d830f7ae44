// The in-memory state of a collection (collection.h): internal to the
// engine's collection_*.cc files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/id_map.h"
#include "core/payload_slot.h"
#include "core/uuid.h"
#include "engine/collection.h"
#include "engine/payload_index.h"
#include "index/index.h"

namespace aidb::engine {

// True when a point maps to the slot: its id is not nil, or it is the nil
// UUID's slot. Searches skip the other slots (freed, or added to the index
// and not mapped yet).
inline bool SlotMapped(const std::vector<Uuid>& slot_ids, uint32_t nil_slot, uint32_t slot) {
  return slot < slot_ids.size() && (!slot_ids[slot].IsNil() || slot == nil_slot);
}

struct Collection::State {
  CollectionConfig config;
  std::unique_ptr<index::VectorIndex> index;
  std::vector<Uuid> slot_ids;         // nil: slot not mapped to a point (but nil_slot)
  IdMap id_to_slot{&slot_ids};        // keyed through slot_ids (core/id_map.h)
  std::vector<PayloadSlot> payloads;  // per slot; empty: none
  uint64_t applied_lsn = 0;
  PayloadIndexes payload_index;
  // The slot of the point whose id is the nil UUID (a valid id), which
  // slot_ids cannot tell from a free slot; IdMap::kNone: no such point.
  uint32_t nil_slot = IdMap::kNone;

  void EnsureSlot(uint32_t slot) {
    if (slot >= slot_ids.size()) {
      size_t n = std::max<size_t>(slot + 1, slot_ids.size() * 3 / 2);
      slot_ids.resize(n);
      payloads.resize(n);
    }
  }
};

}  // namespace aidb::engine
