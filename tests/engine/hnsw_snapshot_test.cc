// An HNSW index saved into a snapshot file by storage and loaded back: the
// index's image (core/snapshot_image.h) through storage's format.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "index/hnsw.h"
#include "storage/snapshot.h"
#include "temp_dir.h"
#include "test_data.h"

namespace aidb::index {
namespace {

using testing::Clustered;
using testing::Hnsw;

// The index alone through a snapshot file (no points: every slot free as far
// as the point chunks go; the graph keeps its own liveness).
Status SaveToFile(const HnswIndex& idx, const std::string& path) {
  SnapshotMeta meta;
  meta.config.name = "hnsw";
  meta.config.index = idx.config();
  meta.slot_limit = idx.SlotLimit();
  meta.count = idx.Size();
  storage::SnapshotWriter w;
  AIDB_RETURN_IF_ERROR(w.SetCollection(meta, {}, {}));
  AIDB_RETURN_IF_ERROR(idx.Save([&](const IndexImage& image) { return w.SetIndex(image); }));
  return w.WriteFile(path);
}

class HnswSnapshotRoundTrip : public ::testing::TestWithParam<uint32_t> {};

// dim 40: float walk; dim 72: 8-bit walk (the quantiser is saved with the graph).
INSTANTIATE_TEST_SUITE_P(FloatAndSq8, HnswSnapshotRoundTrip, ::testing::Values(40u, 72u));

TEST_P(HnswSnapshotRoundTrip, GivesIdenticalResults) {
  const uint32_t dim = GetParam();
  const size_t n = 7000, nq = 200;
  auto all = Clustered(n + nq, dim, 25, 21, 0.5f);
  IndexConfig cfg = Hnsw(dim, Metric::kCosine, 10, 80);
  HnswIndex idx(cfg);
  std::vector<uint32_t> slots(n);
  ASSERT_TRUE(idx.AddBatch(all.data(), n, slots.data(), 2).ok());
  for (uint32_t s = 0; s < n; s += 11) idx.Remove(s);
  ASSERT_TRUE(idx.Compact().ok());                     // free slots
  for (uint32_t s = 1; s < n; s += 13) idx.Remove(s);  // and tombstones
  aidbtest::TempDir tmp;
  const std::string path = tmp / "hnsw_roundtrip.snap";
  ASSERT_TRUE(SaveToFile(idx, path).ok());

  std::unique_ptr<storage::SnapshotFile> file;
  ASSERT_TRUE(storage::SnapshotFile::Open(path, &file).ok());
  HnswIndex loaded(cfg);
  ASSERT_TRUE(loaded.Load(file->image(), file->keepalive()).ok());
  // An index whose 3-byte level-0 lists cannot hold that many slots loads
  // the graph into 4-byte lists: the same results.
  HnswTuning wide_tuning;
  wide_tuning.narrow_link_slots = 1000;
  HnswIndex wide(cfg, wide_tuning);
  ASSERT_TRUE(wide.Load(file->image(), file->keepalive()).ok());
  EXPECT_EQ(loaded.Size(), idx.Size());
  EXPECT_EQ(loaded.Quantized(), dim >= 64);
  EXPECT_EQ(idx.Quantized(), dim >= 64);
  EXPECT_EQ(loaded.SlotLimit(), idx.SlotLimit());
  EXPECT_EQ(loaded.MaxLevel(), idx.MaxLevel());
  for (uint32_t s = 0; s < n; ++s) {
    ASSERT_EQ(loaded.IsLive(s), idx.IsLive(s)) << s;
    ASSERT_EQ(loaded.Degree0(s), idx.Degree0(s)) << s;
    ASSERT_EQ(wide.Degree0(s), idx.Degree0(s)) << s;
  }
  std::vector<Hit> a, b;
  for (size_t i = 0; i < nq; ++i) {
    for (uint32_t ef : {0u, 10u, 100u}) {
      SearchParams p;
      p.k = 10;
      p.ef = ef;
      ASSERT_TRUE(idx.Search(all.data() + (n + i) * dim, p, &a).ok());
      for (const HnswIndex* other : {&loaded, &wide}) {
        ASSERT_TRUE(other->Search(all.data() + (n + i) * dim, p, &b).ok());
        ASSERT_EQ(a.size(), b.size());
        for (size_t j = 0; j < a.size(); ++j) {
          ASSERT_EQ(a[j].slot, b[j].slot);
          ASSERT_EQ(a[j].score, b[j].score);
        }
      }
    }
  }
  // The loaded index keeps working: adds reuse free slots, compaction runs.
  uint32_t s;
  ASSERT_TRUE(loaded.Add(all.data() + n * dim, &s).ok());
  EXPECT_EQ(s, 0u);
  ASSERT_TRUE(loaded.Compact().ok());
  EXPECT_EQ(loaded.Size(), idx.Size() + 1);
}

TEST(HnswSnapshot, EmptyIndexAndMismatchedM) {
  IndexConfig cfg = Hnsw(8, Metric::kEuclidean, 16);
  HnswIndex empty(cfg);
  aidbtest::TempDir tmp;
  const std::string path = tmp / "hnsw_empty.snap";
  ASSERT_TRUE(SaveToFile(empty, path).ok());
  std::unique_ptr<storage::SnapshotFile> file;
  ASSERT_TRUE(storage::SnapshotFile::Open(path, &file).ok());
  HnswIndex loaded(cfg);
  ASSERT_TRUE(loaded.Load(file->image(), file->keepalive()).ok());
  // An index whose 3-byte level-0 lists cannot hold that many slots loads
  // the graph into 4-byte lists: the same results.
  HnswTuning wide_tuning;
  wide_tuning.narrow_link_slots = 1000;
  HnswIndex wide(cfg, wide_tuning);
  ASSERT_TRUE(wide.Load(file->image(), file->keepalive()).ok());
  EXPECT_EQ(loaded.Size(), 0u);
  HnswIndex other(Hnsw(8, Metric::kEuclidean, 8));
  EXPECT_TRUE(other.Load(file->image(), file->keepalive()).IsCorruption());
}

}  // namespace
}  // namespace aidb::index
