// Payload indexes: for a payload key, the slots holding each scalar value
// (canonical JSON text, see filter::CollectKeyValues). An index on a key is
// built the first time a filter constrains that key to equal something, then
// kept exact by every upsert and delete. Guarded by its own mutex so that
// searches (which hold the collection lock shared) can build one lazily.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/filter.h"
#include "core/payload_slot.h"

namespace aidb::engine {

class PayloadIndexes {
 public:
  static constexpr size_t kMaxKeys = 32;

  // The hint with the fewest candidate slots, building missing indexes;
  // nullptr if the filter has no usable hint. *estimate = its candidates.
  const filter::EqualityHint* BestHint(const filter::Filter& f,
                                       const std::vector<PayloadSlot>& payloads, int64_t* estimate);
  // The slots whose payload matches the hint, sorted, without duplicates.
  void List(const filter::EqualityHint& h, std::vector<uint32_t>* out);

  void Add(uint32_t slot, std::string_view payload) { Update(slot, payload, true); }
  void Remove(uint32_t slot, std::string_view payload) { Update(slot, payload, false); }

 private:
  using Postings = std::unordered_map<std::string, std::unordered_set<uint32_t>>;

  static Postings Build(const std::string& key, const std::vector<PayloadSlot>& payloads);
  void Update(uint32_t slot, std::string_view payload, bool add);

  std::mutex mu_;
  std::unordered_map<std::string, Postings> keys_;
};

}  // namespace aidb::engine
