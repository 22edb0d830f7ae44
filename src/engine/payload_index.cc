#include "engine/payload_index.h"

#include <algorithm>

namespace aidb::engine {

const filter::EqualityHint* PayloadIndexes::BestHint(const filter::Filter& f,
                                                     const std::vector<PayloadSlot>& payloads,
                                                     int64_t* estimate) {
  std::lock_guard<std::mutex> lock(mu_);
  const filter::EqualityHint* best = nullptr;
  for (const filter::EqualityHint& h : f.equality_hints()) {
    auto it = keys_.find(h.key);
    if (it == keys_.end()) {
      if (keys_.size() >= kMaxKeys) continue;
      it = keys_.emplace(h.key, Build(h.key, payloads)).first;
    }
    int64_t n = 0;
    for (const std::string& v : h.values_json) {
      auto p = it->second.find(v);
      if (p != it->second.end()) n += static_cast<int64_t>(p->second.size());
    }
    if (best == nullptr || n < *estimate) {
      best = &h;
      *estimate = n;
    }
  }
  return best;
}

void PayloadIndexes::List(const filter::EqualityHint& h, std::vector<uint32_t>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  out->clear();
  auto it = keys_.find(h.key);
  if (it == keys_.end()) return;
  for (const std::string& v : h.values_json) {
    auto p = it->second.find(v);
    if (p != it->second.end()) out->insert(out->end(), p->second.begin(), p->second.end());
  }
  std::sort(out->begin(), out->end());
  out->erase(std::unique(out->begin(), out->end()), out->end());
}

PayloadIndexes::Postings PayloadIndexes::Build(const std::string& key,
                                               const std::vector<PayloadSlot>& payloads) {
  Postings p;
  std::vector<std::string> values;
  for (uint32_t slot = 0; slot < payloads.size(); ++slot) {
    if (payloads[slot].empty()) continue;
    filter::CollectKeyValues(payloads[slot], key, &values);
    for (std::string& v : values) p[std::move(v)].insert(slot);
  }
  return p;
}

void PayloadIndexes::Update(uint32_t slot, std::string_view payload, bool add) {
  if (payload.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> values;
  for (auto& [key, postings] : keys_) {
    filter::CollectKeyValues(payload, key, &values);
    for (std::string& v : values) {
      if (add) {
        postings[std::move(v)].insert(slot);
      } else if (auto it = postings.find(v); it != postings.end()) {
        it->second.erase(slot);
        if (it->second.empty()) postings.erase(it);
      }
    }
  }
}

}  // namespace aidb::engine
