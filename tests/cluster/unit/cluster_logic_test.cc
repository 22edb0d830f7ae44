// The cluster mode's pure logic: partitioner, write tokens, shard-local
// names, offset-named snapshot files, the top-k merge of shard answers.
#include <aidb.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "cluster/logic.h"

namespace aidbd::cluster {
namespace {

std::string NewId() {
  char out[37];
  aidb_uuid_generate(out);
  return std::string(out, 36);
}

TEST(Partitioner, IsStableAndInRange) {
  const std::string id = "123e4567-e89b-12d3-a456-426614174000";
  int p = PartitionFor(id, 6);
  EXPECT_GE(p, 0);
  EXPECT_LT(p, 6);
  EXPECT_EQ(p, PartitionFor(id, 6));
  EXPECT_EQ(PartitionFor(id, 1), 0);
}

TEST(Partitioner, IsFnv1aOfTheSixteenIdBytes) {
  // FNV-1a 32 of 16 zero bytes, computed by hand from the definition.
  uint32_t h = 2166136261u;
  for (int i = 0; i < 16; ++i) h = (h ^ 0u) * 16777619u;
  EXPECT_EQ(PartitionFor("00000000-0000-0000-0000-000000000000", 1000), static_cast<int>(h % 1000));
  // Upper- and lower-case hex digits are the same bytes.
  EXPECT_EQ(PartitionFor("ABCDEF00-0000-0000-0000-000000000001", 97),
            PartitionFor("abcdef00-0000-0000-0000-000000000001", 97));
}

TEST(Partitioner, RejectsNonCanonicalIds) {
  EXPECT_EQ(PartitionFor("not-a-uuid", 4), -1);
  EXPECT_EQ(PartitionFor("123e4567e89b12d3a456426614174000", 4), -1);
  EXPECT_EQ(PartitionFor("123e4567-e89b-12d3-a456-42661417400g", 4), -1);
  EXPECT_EQ(PartitionFor("123e4567-e89b-12d3-a456-426614174000", 0), -1);
}

TEST(Partitioner, SpreadsRandomIdsOverEveryShard) {
  std::vector<int> counts(8, 0);
  for (int i = 0; i < 8000; ++i) counts[PartitionFor(NewId(), 8)]++;
  for (int c : counts) {
    EXPECT_GT(c, 700);
    EXPECT_LT(c, 1300);
  }
}

TEST(WriteTokens, FormatAndParseRoundTrip) {
  WriteToken t{"docs", {{0, 17}, {5, 3}}};
  std::string text = FormatToken(t);
  EXPECT_EQ(text, "docs:0=17,5=3");
  WriteToken back;
  std::string error;
  ASSERT_TRUE(ParseToken(text, &back, &error)) << error;
  EXPECT_EQ(back.collection, "docs");
  EXPECT_EQ(back.offsets, t.offsets);
}

TEST(WriteTokens, RepeatedPartitionKeepsTheLargestOffset) {
  WriteToken t;
  std::string error;
  ASSERT_TRUE(ParseToken("a-b_c:1=9,1=4,2=0", &t, &error)) << error;
  EXPECT_EQ(t.collection, "a-b_c");
  EXPECT_EQ(t.offsets.at(1), 9);
  EXPECT_EQ(t.offsets.at(2), 0);
}

TEST(WriteTokens, MalformedTokensAreRejected) {
  for (const char* bad : {"garbage", "c:", ":0=1", "c:x=1", "c:0=-1", "c:0=", "c:=1", "c:0=1,",
                          "c:0=1,,1=2", "c:0:1", "c:99999999999=1", "c:0=1x"}) {
    WriteToken t;
    std::string error;
    EXPECT_FALSE(ParseToken(bad, &t, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(LocalNames, AreValidCollectionNamesAndDistinct) {
  std::set<std::string> seen;
  for (const std::string& c : std::vector<std::string>{
           "a", "a-1", "a-10", "a-1-0", std::string(64, 'x'), std::string(63, 'x')}) {
    for (int p : {0, 1, 10, 1023}) {
      std::string n = LocalShardName(c, p);
      EXPECT_LE(n.size(), 64u) << n;
      EXPECT_TRUE(ValidNodeId(n)) << n;  // same alphabet as collection names
      EXPECT_TRUE(seen.insert(n).second) << "duplicate " << n;
    }
  }
  EXPECT_EQ(LocalShardName("docs", 3), "docs-3");
}

TEST(SnapshotNames, RecordTheOffsetTheyCover) {
  EXPECT_EQ(SnapshotFileName(1234), "snap-1234.aidb");
  EXPECT_EQ(ParseSnapshotFileName("snap-1234.aidb"), 1234);
  EXPECT_EQ(ParseSnapshotFileName(SnapshotFileName(0)), 0);
  // An empty shard's snapshot covers no record.
  EXPECT_EQ(SnapshotFileName(-1), "snap--1.aidb");
  EXPECT_EQ(ParseSnapshotFileName("snap--1.aidb"), -1);
  for (const char* bad : {"snap-.aidb", "snap-12.aidb.tmp", "snap--2.aidb", "snap-1x.aidb",
                          "snap-1.aidbsnap", "download.tmp", "shard.json"}) {
    EXPECT_FALSE(ParseSnapshotFileName(bad).has_value()) << bad;
  }
}

TEST(TopKMerge, KeepsTheLowestKDistancesAscending) {
  // Scores are distances: lower is better, and each shard's list ascends.
  std::vector<Hit> hits = {
      {0.5, 0, 0, "a"}, {0.9, 0, 1, "b"}, {0.1, 1, 0, "c"}, {0.3, 1, 1, "d"}, {0.2, 2, 0, "e"}};
  auto top = MergeTopK(hits, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].json, "c");
  EXPECT_EQ(top[1].json, "e");
  EXPECT_EQ(top[2].json, "d");
  auto all = MergeTopK(hits, 10);
  ASSERT_EQ(all.size(), 5u);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LE(all[i - 1].score, all[i].score) << i;
  EXPECT_EQ(all.back().json, "b");
  EXPECT_TRUE(MergeTopK(hits, 0).empty());
}

TEST(TopKMerge, NegativeDistancesOfDotRankFirst) {
  // dot: the negated dot product, so the most similar hit is the most negative.
  std::vector<Hit> hits = {
      {-1.0, 0, 0, "x"}, {2.0, 1, 0, "z"}, {-3.5, 1, 1, "w"}, {0.0, 0, 1, "y"}};
  auto top = MergeTopK(hits, 4);
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(top[0].json, "w");
  EXPECT_EQ(top[1].json, "x");
  EXPECT_EQ(top[2].json, "y");
  EXPECT_EQ(top[3].json, "z");
}

TEST(TopKMerge, EqualScoresKeepShardThenRankOrder) {
  std::vector<Hit> hits = {{1.0, 2, 0, "z"}, {1.0, 0, 1, "y"}, {1.0, 0, 0, "x"}, {0.5, 2, 1, "w"}};
  auto top = MergeTopK(hits, 4);
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(top[0].json, "w");
  EXPECT_EQ(top[1].json, "x");
  EXPECT_EQ(top[2].json, "y");
  EXPECT_EQ(top[3].json, "z");
  // Cut in the middle of a tie: the lower shard wins.
  auto two = MergeTopK(hits, 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].json, "x");
}

TEST(NodeIds, FollowTheCollectionNameAlphabet) {
  EXPECT_TRUE(ValidNodeId("node-1_A"));
  EXPECT_FALSE(ValidNodeId(""));
  EXPECT_FALSE(ValidNodeId("a.b"));
  EXPECT_FALSE(ValidNodeId(std::string(65, 'a')));
}

}  // namespace
}  // namespace aidbd::cluster
