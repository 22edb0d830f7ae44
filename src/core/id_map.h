// The point id -> slot map of a collection: open addressing whose buckets
// hold only 4-byte slot numbers. The key of a bucket is not stored in it: it
// is keys[slot], the collection's own slot -> id array (the map is given a
// pointer to it), so a mapped point costs 4 bytes / load factor (5-10 bytes)
// instead of a node allocation and a bucket pointer (56-64 bytes in a
// std::unordered_map).
//
// Linear probing; erase shifts the following entries of the cluster back (no
// tombstones, so lookups never slow down with churn). The table doubles when
// an insert would take it past a load of 4/5. Why 4/5: a lookup of an absent
// id (every insert of a new point) compares against each occupied bucket it
// passes, and each comparison reads keys[slot], a cache miss at scale; with
// linear probing that is about (1 + 1/(1-a)^2)/2 buckets at load a: ~13 at
// 4/5 but ~33 at 7/8, for 0.6 byte per point saved at the top of a doubling
// cycle. Between doublings the load stays in (2/5, 4/5].
//
// Contract with the keys array: every mapped slot s has keys[s] equal to its
// id whenever the map is called, except the slot being inserted by
// TryEmplace (it is hashed from the id argument). A caller that maps an id
// to a new slot (TryEmplace returning an existing entry, then *slot = new)
// sets keys[new] before the next call. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "core/uuid.h"

namespace aidb {

template <class Hash = UuidHash>
class BasicIdMap {
 public:
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();  // never a slot

  // `keys` must outlive the map (and stay the same object; it may grow).
  explicit BasicIdMap(const std::vector<Uuid>* keys) : keys_(keys) {}
  BasicIdMap(const BasicIdMap&) = delete;
  BasicIdMap& operator=(const BasicIdMap&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t bucket_count() const { return buckets_.size(); }
  // Heap bytes held.
  size_t MemoryBytes() const { return buckets_.capacity() * sizeof(uint32_t); }

  // The slot of id, kNone if it is not mapped.
  uint32_t Find(const Uuid& id) const {
    if (size_ == 0) return kNone;
    const Uuid* keys = keys_->data();
    const size_t mask = buckets_.size() - 1;
    for (size_t b = Hash{}(id)&mask;; b = (b + 1) & mask) {
      const uint32_t s = buckets_[b];
      if (s == kNone || keys[s] == id) return s;
    }
  }
  bool Contains(const Uuid& id) const { return Find(id) != kNone; }

  // Maps id to slot unless id is mapped already. Returns where id's slot is
  // stored (valid until the next insert or erase) and whether it was
  // inserted; the caller may store another slot there (see the contract).
  std::pair<uint32_t*, bool> TryEmplace(const Uuid& id, uint32_t slot) {
    if (buckets_.empty()) Rehash(kMinBuckets);
    const uint64_t h = Hash{}(id);
    size_t b = Probe(id, h);
    if (buckets_[b] != kNone) return {&buckets_[b], false};
    if (size_ + 1 > MaxLoad(buckets_.size())) {
      Rehash(buckets_.size() * 2);
      b = Probe(id, h);  // an empty bucket now: id was not mapped
    }
    buckets_[b] = slot;
    ++size_;
    return {&buckets_[b], true};
  }

  // Unmaps id. Returns the slot it had, kNone if it was not mapped.
  uint32_t Erase(const Uuid& id) {
    if (size_ == 0) return kNone;
    const size_t mask = buckets_.size() - 1;
    size_t i = Probe(id, Hash{}(id));
    const uint32_t slot = buckets_[i];
    if (slot == kNone) return kNone;
    // Backward shift: walk the rest of the cluster; an entry whose probe
    // path passes through the hole (its home bucket is not in (i, j]) moves
    // into it, and its old bucket becomes the hole.
    const Uuid* keys = keys_->data();
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
      const uint32_t s = buckets_[j];
      if (s == kNone) break;
      const size_t home = Hash{}(keys[s]) & mask;
      if (((j - home) & mask) >= ((j - i) & mask)) {
        buckets_[i] = s;
        i = j;
      }
    }
    buckets_[i] = kNone;
    --size_;
    return slot;
  }

  // Sizes the table for n ids without growing on the way.
  void Reserve(size_t n) {
    size_t cap = kMinBuckets;
    while (MaxLoad(cap) < n) cap *= 2;
    if (cap > buckets_.size()) Rehash(cap);
  }

  void Clear() {
    std::vector<uint32_t>().swap(buckets_);
    size_ = 0;
  }

 private:
  static constexpr size_t kMinBuckets = 16;
  static size_t MaxLoad(size_t buckets) { return buckets / 5 * 4 + buckets % 5 * 4 / 5; }

  // The bucket holding id, or the empty bucket ending its probe path.
  size_t Probe(const Uuid& id, uint64_t h) const {
    const Uuid* keys = keys_->data();
    const size_t mask = buckets_.size() - 1;
    for (size_t b = h & mask;; b = (b + 1) & mask) {
      const uint32_t s = buckets_[b];
      if (s == kNone || keys[s] == id) return b;
    }
  }

  void Rehash(size_t buckets) {
    std::vector<uint32_t> old(buckets, kNone);
    old.swap(buckets_);
    const Uuid* keys = keys_->data();
    const size_t mask = buckets - 1;
    for (uint32_t s : old) {
      if (s == kNone) continue;
      size_t b = Hash{}(keys[s]) & mask;
      while (buckets_[b] != kNone) b = (b + 1) & mask;
      buckets_[b] = s;
    }
  }

  const std::vector<Uuid>* keys_;
  std::vector<uint32_t> buckets_;  // a power of two of them, or none
  size_t size_ = 0;
};

using IdMap = BasicIdMap<>;

}  // namespace aidb
