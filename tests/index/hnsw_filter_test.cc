// Filtered search: whatever the selectivity, a filtered top-10 returns
// min(10, matches) results with recall@10 >= 0.95 against the exact filtered
// scan, whether the filter gives an estimate, a list, or nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "index/hnsw.h"
#include "test_data.h"

namespace aidb::index {
namespace {

using testing::Clustered;
using testing::Recall;

// Allows slots whose hash falls under `per_million` (a random subset,
// uncorrelated with the vectors), or exactly one slot.
class HashFilter : public SlotFilter {
 public:
  enum Mode { kEstimate, kList, kNothing };
  HashFilter(uint32_t limit, uint32_t per_million, Mode mode, int64_t single = -1)
      : per_million_(per_million), mode_(mode), single_(single) {
    for (uint32_t s = 0; s < limit; ++s)
      if (Allowed(s)) matches_.push_back(s);
  }
  bool Allowed(uint32_t slot) const override {
    ++calls_;
    if (single_ >= 0) return slot == single_;
    uint32_t h = slot * 2654435761u;
    h ^= h >> 15;
    return (h % 1000000u) < per_million_;
  }
  int64_t EstimatedMatches() const override {
    return mode_ == kNothing ? -1 : static_cast<int64_t>(matches_.size());
  }
  bool ListMatches(std::vector<uint32_t>* out) const override {
    if (mode_ != kList) return false;
    *out = matches_;
    return true;
  }
  size_t matches() const { return matches_.size(); }

 private:
  uint32_t per_million_;
  Mode mode_;
  int64_t single_;
  std::vector<uint32_t> matches_;
  mutable size_t calls_ = 0;
};

class HnswFilter : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const uint32_t dim = 96;
    all_ = new std::vector<float>(Clustered(kN + kQ, dim, 40, 31, 0.4f));
    IndexConfig c;
    c.dim = dim;
    c.metric = Metric::kCosine;
    c.kind = IndexKind::kHnsw;
    idx_ = new HnswIndex(c);
    std::vector<uint32_t> slots(kN);
    ASSERT_TRUE(idx_->AddBatch(all_->data(), kN, slots.data(), 0).ok());
  }
  static void TearDownTestSuite() {
    delete idx_;
    delete all_;
  }
  const float* Query(size_t i) const { return all_->data() + (kN + i) * idx_->config().dim; }

  void CheckFilter(const HashFilter& f, const char* what) {
    double sum = 0;
    std::vector<Hit> got, truth;
    for (size_t i = 0; i < kQ; ++i) {
      SearchParams p;
      p.k = 10;
      p.filter = &f;
      ASSERT_TRUE(idx_->Search(Query(i), p, &got).ok());
      p.exact = true;
      ASSERT_TRUE(idx_->Search(Query(i), p, &truth).ok());
      ASSERT_EQ(truth.size(), std::min<size_t>(10, f.matches())) << what;
      ASSERT_EQ(got.size(), truth.size()) << what;
      for (const Hit& h : got) ASSERT_TRUE(f.Allowed(h.slot)) << what;
      sum += Recall(got, truth);
    }
    EXPECT_GE(sum / kQ, 0.95) << what << " matches=" << f.matches();
  }

  static constexpr size_t kN = 20000, kQ = 60;
  static std::vector<float>* all_;
  static HnswIndex* idx_;
};
std::vector<float>* HnswFilter::all_ = nullptr;
HnswIndex* HnswFilter::idx_ = nullptr;

TEST_F(HnswFilter, EverySelectivityWithEveryKindOfFilter) {
  for (auto mode : {HashFilter::kEstimate, HashFilter::kList, HashFilter::kNothing}) {
    for (uint32_t ppm : {1000000u, 500000u, 100000u, 50000u, 10000u, 5000u, 1000u, 300u}) {
      HashFilter f(kN, ppm, mode);
      std::string what = "mode " + std::to_string(mode) + " ppm " + std::to_string(ppm);
      CheckFilter(f, what.c_str());
    }
    HashFilter one(kN, 0, mode, 12345);
    CheckFilter(one, "single point");
    HashFilter none(kN, 0, mode);
    ASSERT_EQ(none.matches(), 0u);
    std::vector<Hit> got;
    SearchParams p;
    p.filter = &none;
    ASSERT_TRUE(idx_->Search(Query(0), p, &got).ok());
    EXPECT_TRUE(got.empty());
  }
}

TEST_F(HnswFilter, FilterIsAppliedDuringTraversalNotAfter) {
  // A filter whose estimate says "half": the walk must not first collect
  // the unfiltered top-ef and then drop non-matching ones (that would return
  // fewer than 10 hits for a 10% filter with a small ef).
  HashFilter f(kN, 100000, HashFilter::kNothing);
  std::vector<Hit> got;
  SearchParams p;
  p.k = 10;
  p.ef = 10;
  p.filter = &f;
  for (size_t i = 0; i < kQ; ++i) {
    ASSERT_TRUE(idx_->Search(Query(i), p, &got).ok());
    ASSERT_EQ(got.size(), 10u);
  }
}

TEST_F(HnswFilter, RemovedSlotsAreFilteredToo) {
  HashFilter f(kN, 1000, HashFilter::kList);  // ~20 matches
  std::vector<Hit> got;
  SearchParams p;
  p.k = 10;
  p.filter = &f;
  ASSERT_TRUE(idx_->Search(Query(0), p, &got).ok());
  ASSERT_FALSE(got.empty());
  uint32_t victim = got[0].slot;
  idx_->Remove(victim);
  ASSERT_TRUE(idx_->Search(Query(0), p, &got).ok());
  for (const Hit& h : got) EXPECT_NE(h.slot, victim);
  EXPECT_EQ(got.size(), std::min<size_t>(10, f.matches() - 1));
}

}  // namespace
}  // namespace aidb::index
