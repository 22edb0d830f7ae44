// FlatIndex storage: vectors stored while the populate thread faults in the
// pages ahead of them read back exactly (see PopulateAheadLocked).
#include "index/flat.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace aidb::index {
namespace {

TEST(FlatIndexTest, VectorsStoredAheadOfThePopulateThreadReadBack) {
  IndexConfig c;
  c.dim = 128;
  c.metric = Metric::kEuclidean;
  c.kind = IndexKind::kFlat;
  FlatIndex idx(c);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  // 40,000 x 512 bytes: past the chunk's growth by copies into its full
  // size, batches of several sizes and single adds between them.
  const size_t n = 40000;
  std::vector<float> v(n * c.dim);
  for (float& x : v) x = u(rng);
  std::vector<uint32_t> slots(n);
  size_t at = 0;
  for (size_t batch : {1, 7, 1000, 1, 64, 5000, 1, 12000, 300}) {
    for (size_t reps = 0; reps < 3 && at + batch <= n; ++reps) {
      if (batch == 1) {
        ASSERT_TRUE(idx.Add(v.data() + at * c.dim, &slots[at]).ok());
      } else {
        ASSERT_TRUE(idx.AddBatch(v.data() + at * c.dim, batch, &slots[at], 1).ok());
      }
      at += batch;
    }
  }
  while (at < n) {
    const size_t batch = std::min<size_t>(2000, n - at);
    ASSERT_TRUE(idx.AddBatch(v.data() + at * c.dim, batch, &slots[at], 1).ok());
    at += batch;
  }
  ASSERT_EQ(idx.Size(), n);
  std::vector<float> out(c.dim);
  for (size_t i = 0; i < n; ++i) {
    idx.GetVector(slots[i], out.data());
    ASSERT_EQ(std::memcmp(out.data(), v.data() + i * c.dim, c.dim * sizeof(float)), 0) << i;
  }
}

}  // namespace
}  // namespace aidb::index
