#include "core/id_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/payload_slot.h"

namespace aidb {
namespace {

// The engine's way of using the map: slot_ids holds each mapped slot's id
// (nil = free), freed slots are reused, and ids are looked up, inserted if
// absent, remapped to a new slot and erased. Every operation is mirrored in
// a std::unordered_map, and the two must agree.
template <class Hash>
class Harness {
 public:
  Harness() : map_(&keys_) {}

  // Maps id to a fresh slot (a freed one first), as an upsert does: if id
  // was mapped, its old slot is freed.
  void Upsert(const Uuid& id) {
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = static_cast<uint32_t>(keys_.size());
      keys_.emplace_back();
    }
    auto [mapped, inserted] = map_.TryEmplace(id, slot);
    auto it = oracle_.find(id);
    ASSERT_EQ(inserted, it == oracle_.end());
    if (!inserted) {
      const uint32_t old = *mapped;
      ASSERT_EQ(old, it->second);
      keys_[old] = Uuid{};
      free_.push_back(old);
      *mapped = slot;
    }
    keys_[slot] = id;
    oracle_[id] = slot;
  }

  void Erase(const Uuid& id) {
    const uint32_t slot = map_.Erase(id);
    auto it = oracle_.find(id);
    if (it == oracle_.end()) {
      ASSERT_EQ(slot, IdMap::kNone);
      return;
    }
    ASSERT_EQ(slot, it->second);
    oracle_.erase(it);
    keys_[slot] = Uuid{};
    free_.push_back(slot);
  }

  // Every oracle entry is found with its slot, every free slot's old ids
  // are not, and the sizes agree.
  void Check(const std::vector<Uuid>& probes) const {
    ASSERT_EQ(map_.size(), oracle_.size());
    for (const auto& [id, slot] : oracle_) ASSERT_EQ(map_.Find(id), slot);
    for (const Uuid& id : probes) {
      auto it = oracle_.find(id);
      ASSERT_EQ(map_.Find(id), it == oracle_.end() ? IdMap::kNone : it->second);
      ASSERT_EQ(map_.Contains(id), it != oracle_.end());
    }
  }

  BasicIdMap<Hash>& map() { return map_; }
  size_t size() const { return oracle_.size(); }

 private:
  std::vector<Uuid> keys_;
  BasicIdMap<Hash> map_;
  std::unordered_map<Uuid, uint32_t, UuidHash> oracle_;
  std::vector<uint32_t> free_;
};

Uuid Sequential(uint64_t i) {
  // UUIDv7-like: a big-endian counter in the high bytes, the rest fixed.
  Uuid u;
  for (int b = 0; b < 8; ++b) u.bytes[7 - b] = static_cast<uint8_t>(i >> (8 * b));
  u.bytes[8] = 0x80;
  return u;
}

Uuid LowByteSequential(uint64_t i) {
  // Counting up in the last bytes only (test ids like ...-000000000001).
  Uuid u;
  for (int b = 0; b < 8; ++b) u.bytes[15 - b] = static_cast<uint8_t>(i >> (8 * b));
  return u;
}

Uuid RandomId(std::mt19937_64& rng) {
  Uuid u;
  uint64_t a = rng(), b = rng();
  std::memcpy(u.bytes.data(), &a, 8);
  std::memcpy(u.bytes.data() + 8, &b, 8);
  return u;
}

// Hashes that put every id into a handful of buckets: all ids collide into
// one long cluster (so erase shifts whole runs), at the start of the table
// or wrapping around its end.
struct ClusterAtStart {
  uint64_t operator()(const Uuid& u) const { return u.bytes[15] % 3; }
};
struct ClusterAtEnd {
  uint64_t operator()(const Uuid& u) const { return ~uint64_t{0} - u.bytes[15] % 3; }
};
struct ConstantHash {
  uint64_t operator()(const Uuid&) const { return 7; }
};

template <class Hash>
void Churn(int ops, uint64_t seed, bool sequential) {
  Harness<Hash> h;
  std::mt19937_64 rng(seed);
  std::vector<Uuid> pool;
  for (int i = 0; i < ops / 4 + 8; ++i) {
    pool.push_back(sequential ? Sequential(static_cast<uint64_t>(i)) : RandomId(rng));
  }
  for (int op = 0; op < ops; ++op) {
    const Uuid& id = pool[rng() % pool.size()];
    if (rng() % 3 == 0) {
      h.Erase(id);
    } else {
      h.Upsert(id);
    }
    if (::testing::Test::HasFatalFailure()) return;
    if (op % 257 == 0) h.Check({id, pool[rng() % pool.size()]});
  }
  h.Check(pool);
  // Erase every key; the map ends empty and every id is gone.
  for (const Uuid& id : pool) h.Erase(id);
  ASSERT_EQ(h.map().size(), 0u);
  h.Check(pool);
}

TEST(IdMapTest, EmptyMapFindsNothing) {
  std::vector<Uuid> keys;
  IdMap m(&keys);
  EXPECT_EQ(m.Find(Sequential(1)), IdMap::kNone);
  EXPECT_EQ(m.Erase(Sequential(1)), IdMap::kNone);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.MemoryBytes(), 0u);
}

TEST(IdMapTest, InsertIfAbsentKeepsTheFirstSlot) {
  std::vector<Uuid> keys(2);
  IdMap m(&keys);
  const Uuid id = Sequential(42);
  auto [p, inserted] = m.TryEmplace(id, 0);
  EXPECT_TRUE(inserted);
  keys[0] = id;
  auto [q, again] = m.TryEmplace(id, 1);
  EXPECT_FALSE(again);
  EXPECT_EQ(*q, 0u);
  EXPECT_EQ(m.Find(id), 0u);
  EXPECT_EQ(m.size(), 1u);
}

TEST(IdMapTest, RandomChurnMatchesUnorderedMap) { Churn<UuidHash>(200000, 1, false); }

TEST(IdMapTest, SequentialChurnMatchesUnorderedMap) { Churn<UuidHash>(200000, 2, true); }

TEST(IdMapTest, ClusteredHashesChurnMatchesUnorderedMap) {
  Churn<ClusterAtStart>(6000, 3, false);
  Churn<ClusterAtEnd>(6000, 4, false);
  Churn<ConstantHash>(3000, 5, true);
}

TEST(IdMapTest, GrowsAcrossManyDoublingsAndKeepsTheLoadBounded) {
  Harness<UuidHash> h;
  std::vector<Uuid> ids;
  size_t last_buckets = 0, doublings = 0;
  for (uint64_t i = 0; i < 300000; ++i) {
    ids.push_back(LowByteSequential(i));
    h.Upsert(ids.back());
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    const size_t b = h.map().bucket_count();
    if (b != last_buckets) {
      if (last_buckets != 0) {
        EXPECT_EQ(b, last_buckets * 2);
        ++doublings;
      }
      last_buckets = b;
    }
    ASSERT_LE(h.map().size() * 5, b * 4);  // load <= 4/5
  }
  EXPECT_GE(doublings, 14u);
  EXPECT_GT(h.map().size() * 5, h.map().bucket_count() * 2);  // load > 2/5
  h.Check(ids);
  for (const Uuid& id : ids) h.Erase(id);
  h.Check(ids);
}

TEST(IdMapTest, ReserveSizesOnceForTheCount) {
  std::vector<Uuid> keys;
  IdMap m(&keys);
  m.Reserve(100000);
  const size_t buckets = m.bucket_count();
  EXPECT_GE(buckets * 4, 100000u * 5);
  for (uint32_t i = 0; i < 100000; ++i) {
    keys.push_back(Sequential(i));
    ASSERT_TRUE(m.TryEmplace(keys.back(), i).second);
  }
  EXPECT_EQ(m.bucket_count(), buckets);
  for (uint32_t i = 0; i < 100000; ++i) ASSERT_EQ(m.Find(Sequential(i)), i);
  m.Reserve(10);  // never shrinks
  EXPECT_EQ(m.bucket_count(), buckets);
}

TEST(IdMapTest, HashSpreadsSequentialIds) {
  // Ids counting up in either end land in distinct buckets about as often
  // as random ones would (a hash of the low bytes only, or of the high
  // bytes only, would put one of the sequences into a few buckets).
  for (auto make : {Sequential, LowByteSequential}) {
    std::vector<int> counts(1 << 12);
    for (uint64_t i = 0; i < counts.size(); ++i)
      ++counts[UuidHash{}(make(i)) & (counts.size() - 1)];
    const auto used = std::count_if(counts.begin(), counts.end(), [](int c) { return c > 0; });
    // Random: 1 - 1/e of the buckets (~63%) are used.
    EXPECT_GT(used, static_cast<long>(counts.size() * 55 / 100));
  }
}

TEST(PayloadSlotTest, HoldsBytesOrNothing) {
  PayloadSlot none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.size(), 0u);
  EXPECT_EQ(none.view(), "");
  PayloadSlot empty_text{std::string_view()};
  EXPECT_TRUE(empty_text.empty());
  const std::string json = R"({"label":9,"name":"boot"})";
  PayloadSlot p(json);
  EXPECT_FALSE(p.empty());
  EXPECT_EQ(p.size(), json.size());
  EXPECT_EQ(std::string_view(p), json);
  PayloadSlot moved(std::move(p));
  EXPECT_TRUE(p.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(moved.view(), json);
  moved.Assign("{}");
  EXPECT_EQ(moved.view(), "{}");
  std::vector<PayloadSlot> v(3);
  v[1].Assign(json);
  v.resize(1000);  // moves the blocks
  EXPECT_EQ(v[1].view(), json);
  v[1].reset();
  EXPECT_TRUE(v[1].empty());
  EXPECT_EQ(sizeof(PayloadSlot), 8u);
}

}  // namespace
}  // namespace aidb
