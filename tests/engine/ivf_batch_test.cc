// Collection::SearchBatch on an IVF collection (the index's batch search,
// runs of queries split over the worker threads) answers what Search
// answers query by query: ids, scores and payloads, with and without a
// payload filter, after deletes, with the floats in RAM and on disk.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/filter.h"
#include "engine/collection.h"
#include "temp_dir.h"
#include "test_data.h"

namespace aidb::engine {
namespace {

using index::testing::Clustered;

std::string Id(int i) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "00000000-0000-4000-8000-%012d", i);
  return buf;
}

class IvfCollectionBatch : public ::testing::TestWithParam<std::tuple<Metric, bool>> {};
INSTANTIATE_TEST_SUITE_P(MetricsAndStorage, IvfCollectionBatch,
                         ::testing::Combine(::testing::Values(Metric::kCosine, Metric::kEuclidean),
                                            ::testing::Bool()));

TEST_P(IvfCollectionBatch, BatchEqualsOneByOne) {
  const auto [metric, on_disk] = GetParam();
  const uint32_t dim = 20;
  const int n = 6000, nq = 150;
  auto data = Clustered(n + nq, dim, 30, 41, 0.5f);
  aidbtest::TempDir tmp;
  CollectionOptions o;
  o.config.name = "b";
  o.config.index.dim = dim;
  o.config.index.metric = metric;
  o.config.index.kind = IndexKind::kIvf;
  o.config.index.vectors_on_disk = on_disk;
  if (on_disk) {
    o.wal_path = tmp / "b.wal";
    o.wal.durability = Durability::kNone;
  }
  std::shared_ptr<Collection> c;
  ASSERT_TRUE(Collection::Open(o, &c).ok());
  std::vector<std::string> ids, payloads;
  std::vector<const char*> id_ptrs;
  std::vector<std::string_view> payload_views;
  for (int i = 0; i < n; ++i) {
    ids.push_back(Id(i));
    payloads.push_back(i % 3 == 0 ? R"({"t":true})" : R"({"t":false})");
  }
  for (int i = 0; i < n; ++i) {
    id_ptrs.push_back(ids[i].c_str());
    payload_views.push_back(payloads[i]);
  }
  ASSERT_TRUE(c->Upsert(n, id_ptrs.data(), data.data(), dim, payload_views.data()).ok());
  for (int i = 1; i < n; i += 10) ASSERT_TRUE(c->Delete(Id(i)).ok());
  std::unique_ptr<filter::Filter> only_t;
  ASSERT_TRUE(filter::Filter::Parse(R"({"t":true})", &only_t).ok());
  const float* queries = data.data() + static_cast<size_t>(n) * dim;
  for (int variant = 0; variant < 4; ++variant) {
    SCOPED_TRACE(variant);
    SearchRequest req;
    req.top_k = 10;
    req.ef_search = variant == 1 ? 2 : 0;
    req.ivf_rerank = variant == 1 ? 20 : 0;
    req.filter = variant >= 2 ? only_t.get() : nullptr;
    req.with_payload = variant != 3;
    for (uint32_t threads : {1u, 2u}) {
      std::vector<std::vector<SearchHit>> batch;
      ASSERT_TRUE(c->SearchBatch(queries, nq, dim, req, threads, &batch).ok());
      ASSERT_EQ(batch.size(), static_cast<size_t>(nq));
      for (int q = 0; q < nq; ++q) {
        std::vector<SearchHit> one;
        ASSERT_TRUE(c->Search(queries + static_cast<size_t>(q) * dim, dim, req, &one).ok());
        ASSERT_EQ(one.size(), 10u);
        ASSERT_EQ(batch[q].size(), one.size()) << q;
        for (size_t j = 0; j < one.size(); ++j) {
          EXPECT_EQ(batch[q][j].id, one[j].id) << q << " " << j;
          EXPECT_EQ(batch[q][j].score, one[j].score) << q << " " << j;
          EXPECT_EQ(batch[q][j].payload, one[j].payload) << q << " " << j;
        }
      }
    }
  }
}

}  // namespace
}  // namespace aidb::engine
