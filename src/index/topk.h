// A bounded "best k" collector: keeps the k highest-scoring hits in a min-heap.
#pragma once

#include <algorithm>
#include <vector>

#include "index/index.h"

namespace aidb::index {

class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k); }
  // The score a new hit must beat to enter (lowest kept score once full).
  bool Full() const { return heap_.size() >= k_; }
  float Threshold() const { return heap_.front().score; }
  // True if a hit with this score would be kept.
  bool WouldKeep(float score) const { return k_ > 0 && (!Full() || score > Threshold()); }
  void Push(float score, uint32_t slot) {
    if (k_ == 0) return;
    if (!Full()) {
      heap_.push_back({score, slot});
      std::push_heap(heap_.begin(), heap_.end(), Worse);
    } else if (score > heap_.front().score) {
      std::pop_heap(heap_.begin(), heap_.end(), Worse);
      heap_.back() = {score, slot};
      std::push_heap(heap_.begin(), heap_.end(), Worse);
    }
  }
  // Best first; ties broken by slot for determinism.
  void Take(std::vector<Hit>* out) {
    std::sort(heap_.begin(), heap_.end(), [](const Hit& a, const Hit& b) {
      return a.score != b.score ? a.score > b.score : a.slot < b.slot;
    });
    out->swap(heap_);
    heap_.clear();
  }

 private:
  // Min-heap on score: the front is the worst kept hit.
  static bool Worse(const Hit& a, const Hit& b) { return a.score > b.score; }
  size_t k_;
  std::vector<Hit> heap_;
};

}  // namespace aidb::index
