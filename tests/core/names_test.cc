// core/names.h: one table of names for metrics, index kinds and durability.
#include "core/names.h"

#include <gtest/gtest.h>

namespace aidb {
namespace {

TEST(NamesTest, CanonicalNamesRoundTrip) {
  for (Metric m : {Metric::kCosine, Metric::kEuclidean, Metric::kDot}) {
    Metric got = Metric::kCosine;
    ASSERT_TRUE(ParseMetric(MetricName(m), &got));
    EXPECT_EQ(got, m);
  }
  for (IndexKind k : {IndexKind::kFlat, IndexKind::kHnsw, IndexKind::kIvf}) {
    IndexKind got = IndexKind::kFlat;
    ASSERT_TRUE(ParseIndexKind(IndexKindName(k), &got));
    EXPECT_EQ(got, k);
  }
  for (Durability d : {Durability::kFsync, Durability::kBatch, Durability::kNone}) {
    Durability got = Durability::kFsync;
    ASSERT_TRUE(ParseDurability(DurabilityName(d), &got));
    EXPECT_EQ(got, d);
  }
  EXPECT_STREQ(MetricName(Metric::kEuclidean), "euclidean");
  EXPECT_STREQ(IndexKindName(IndexKind::kHnsw), "hnsw");
  EXPECT_STREQ(IndexKindName(IndexKind::kIvf), "ivf");
  EXPECT_STREQ(DurabilityName(Durability::kBatch), "batch");
}

TEST(NamesTest, MetricAliasesAndCaseAreAccepted) {
  Metric m = Metric::kCosine;
  ASSERT_TRUE(ParseMetric("L2", &m));
  EXPECT_EQ(m, Metric::kEuclidean);
  ASSERT_TRUE(ParseMetric("euclid", &m));
  EXPECT_EQ(m, Metric::kEuclidean);
  ASSERT_TRUE(ParseMetric("Inner_Product", &m));
  EXPECT_EQ(m, Metric::kDot);
  ASSERT_TRUE(ParseMetric("ip", &m));
  EXPECT_EQ(m, Metric::kDot);
  ASSERT_TRUE(ParseMetric("COSINE", &m));
  EXPECT_EQ(m, Metric::kCosine);
}

TEST(NamesTest, UnknownNamesAreRejectedAndLeaveTheOutputAlone) {
  Metric m = Metric::kDot;
  EXPECT_FALSE(ParseMetric("manhattan", &m));
  EXPECT_FALSE(ParseMetric("", &m));
  EXPECT_FALSE(ParseMetric("cosinex", &m));
  EXPECT_EQ(m, Metric::kDot);
  IndexKind k = IndexKind::kHnsw;
  EXPECT_FALSE(ParseIndexKind("lsh", &k));
  EXPECT_EQ(k, IndexKind::kHnsw);
  Durability d = Durability::kNone;
  EXPECT_FALSE(ParseDurability("sometimes", &d));
  EXPECT_EQ(d, Durability::kNone);
  EXPECT_STREQ(MetricName(static_cast<Metric>(7)), "unknown");
}

}  // namespace
}  // namespace aidb
