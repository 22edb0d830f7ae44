// The operations guide (docs/operations.md: checkpoints, restore, WAL
// monitoring), step by step, through the C API.
#include <gtest/gtest.h>

#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

using namespace aidbtest;

namespace {

constexpr uint32_t kDim = 8;

// The bytes of the records in a WAL file: in fsync mode zeros preallocated
// ahead of the last record follow them until the collection is closed.
uint64_t WalRecordBytes(const std::string& wal) {
  uint64_t valid = 0;
  EXPECT_EQ(aidb_wal_verify(wal.c_str(), nullptr, &valid, nullptr), AIDB_OK);
  return valid;
}

TEST(Runbook, SnapshotTruncatesWalToZeroBytesOnDisk) {
  TempDir dir;
  const std::string wal = dir / "wal.log";
  aidb_collection* c = OpenCollection("docs", kDim, wal);
  ASSERT_NE(c, nullptr);
  for (uint32_t i = 0; i < 10; ++i) ASSERT_EQ(Upsert(c, i, kDim, "{\"n\":1}"), AIDB_OK);
  ASSERT_GT(FileSize(wal), 0u);
  aidb_wal_info before = WalInfo(c);
  EXPECT_EQ(before.has_last_truncate, 0);  // null until a snapshot runs in this process
  EXPECT_EQ(before.size_bytes, WalRecordBytes(wal));
  EXPECT_GE(FileSize(wal), before.size_bytes);
  EXPECT_EQ(before.last_lsn, 10u);

  AIDB_ASSERT_OK(aidb_collection_snapshot_to(c, (dir / "snap.aidbsnap").c_str(), &_m));
  EXPECT_EQ(FileSize(wal), 0u);
  aidb_wal_info after = WalInfo(c);
  EXPECT_EQ(after.size_bytes, 0u);
  EXPECT_EQ(after.bytes_since_truncate, 0u);
  EXPECT_EQ(after.has_last_truncate, 1);
  EXPECT_GT(after.last_truncate_unix_ns, 0);
  EXPECT_EQ(after.last_lsn, 10u);

  // Subsequent mutations append to a fresh WAL, with LSNs that keep growing.
  ASSERT_EQ(Upsert(c, 100, kDim), AIDB_OK);
  aidb_wal_info next = WalInfo(c);
  EXPECT_EQ(next.last_lsn, 11u);
  EXPECT_EQ(next.size_bytes, WalRecordBytes(wal));
  EXPECT_EQ(next.bytes_since_truncate, next.size_bytes);
  aidb_collection_close(c);
  EXPECT_EQ(FileSize(wal), next.size_bytes);  // close cuts the preallocated zeros
}

TEST(Runbook, RestoreWorkflowSeesPointsFromBeforeAndAfterCheckpoint) {
  TempDir dir;
  const std::string wal = dir / "wal.log";
  const std::string snap = dir / "checkpoint.aidbsnap";
  {
    aidb_collection* c = OpenCollection("docs", kDim, wal);
    ASSERT_NE(c, nullptr);
    for (uint32_t i = 0; i < 20; ++i)
      ASSERT_EQ(Upsert(c, i, kDim, "{\"phase\":\"before\"}"), AIDB_OK);
    AIDB_ASSERT_OK(aidb_collection_snapshot_to(c, snap.c_str(), &_m));
    for (uint32_t i = 20; i < 30; ++i)
      ASSERT_EQ(Upsert(c, i, kDim, "{\"phase\":\"after\"}"), AIDB_OK);
    AIDB_ASSERT_OK(aidb_collection_delete(c, Id(3).c_str(), &_m));
    aidb_collection_close(c);
  }
  // 1. A fresh collection pointing at the same WAL path.
  aidb_collection* c = OpenCollection("docs", kDim, wal);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(Count(c), 0u);
  // 2. load_snapshot with the saved file.
  AIDB_ASSERT_OK(aidb_collection_load_snapshot(c, snap.c_str(), &_m));
  EXPECT_EQ(Count(c), 20u);
  EXPECT_TRUE(Has(c, 3));
  EXPECT_FALSE(Has(c, 25));
  // 3. recover replays only what came after the checkpoint.
  aidb_recover_stats st;
  aidb_recover_stats_init(&st);
  AIDB_ASSERT_OK(aidb_recover(c, nullptr, &st, &_m));
  EXPECT_EQ(st.records_applied, 11u);
  EXPECT_EQ(st.records_skipped, 0u);
  EXPECT_EQ(st.torn_tail, 0);
  EXPECT_EQ(Count(c), 29u);
  EXPECT_FALSE(Has(c, 3));
  EXPECT_TRUE(Has(c, 0));
  EXPECT_TRUE(Has(c, 29));
  char* payload = nullptr;
  std::vector<float> v(kDim);
  AIDB_ASSERT_OK(aidb_collection_get(c, Id(25).c_str(), v.data(), kDim, &payload, &_m));
  ASSERT_NE(payload, nullptr);
  EXPECT_STREQ(payload, "{\"phase\":\"after\"}");
  aidb_free(payload);
  // 4. snapshot_to seals the restored state as the new baseline.
  const std::string snap2 = dir / "baseline.aidbsnap";
  AIDB_ASSERT_OK(aidb_collection_snapshot_to(c, snap2.c_str(), &_m));
  EXPECT_EQ(FileSize(wal), 0u);
  aidb_collection_close(c);

  aidb_collection* c2 = OpenCollection("docs", kDim, wal);
  ASSERT_NE(c2, nullptr);
  AIDB_ASSERT_OK(aidb_collection_load_snapshot(c2, snap2.c_str(), &_m));
  AIDB_ASSERT_OK(aidb_recover(c2, nullptr, nullptr, &_m));
  EXPECT_EQ(Count(c2), 29u);
  aidb_collection_close(c2);
}

TEST(Runbook, LoadSnapshotAloneLeavesWalIntact) {
  TempDir dir;
  const std::string wal = dir / "wal.log";
  const std::string snap = dir / "s.aidbsnap";
  aidb_collection* c = OpenCollection("docs", kDim, wal);
  ASSERT_NE(c, nullptr);
  for (uint32_t i = 0; i < 5; ++i) ASSERT_EQ(Upsert(c, i, kDim), AIDB_OK);
  AIDB_ASSERT_OK(aidb_collection_snapshot_to(c, snap.c_str(), &_m));
  for (uint32_t i = 5; i < 9; ++i) ASSERT_EQ(Upsert(c, i, kDim), AIDB_OK);
  const std::string wal_bytes = ReadAll(wal);
  ASSERT_FALSE(wal_bytes.empty());

  AIDB_ASSERT_OK(aidb_collection_load_snapshot(c, snap.c_str(), &_m));
  EXPECT_EQ(Count(c), 5u);             // in-memory state replaced by the snapshot
  EXPECT_EQ(ReadAll(wal), wal_bytes);  // the WAL is left exactly as it was
  EXPECT_EQ(WalInfo(c).size_bytes, WalRecordBytes(wal));
  // ... so the newer operations can still be replayed.
  AIDB_ASSERT_OK(aidb_recover(c, nullptr, nullptr, &_m));
  EXPECT_EQ(Count(c), 9u);
  aidb_collection_close(c);
}

TEST(Runbook, SnapshotRightAfterLoadDiscardsNewerOps) {
  TempDir dir;
  const std::string wal = dir / "wal.log";
  const std::string snap = dir / "s.aidbsnap";
  const std::string snap2 = dir / "s2.aidbsnap";
  aidb_collection* c = OpenCollection("docs", kDim, wal);
  ASSERT_NE(c, nullptr);
  for (uint32_t i = 0; i < 5; ++i) ASSERT_EQ(Upsert(c, i, kDim), AIDB_OK);
  AIDB_ASSERT_OK(aidb_collection_snapshot_to(c, snap.c_str(), &_m));
  for (uint32_t i = 5; i < 9; ++i) ASSERT_EQ(Upsert(c, i, kDim), AIDB_OK);
  const uint64_t lsn_before = WalInfo(c).last_lsn;
  aidb_collection_close(c);

  c = OpenCollection("docs", kDim, wal);
  ASSERT_NE(c, nullptr);
  AIDB_ASSERT_OK(aidb_collection_load_snapshot(c, snap.c_str(), &_m));
  AIDB_ASSERT_OK(aidb_collection_snapshot_to(c, snap2.c_str(), &_m));
  EXPECT_EQ(FileSize(wal), 0u);
  AIDB_ASSERT_OK(aidb_recover(c, nullptr, nullptr, &_m));
  EXPECT_EQ(Count(c), 5u);
  // LSNs are never reused, even for the discarded operations.
  ASSERT_EQ(Upsert(c, 50, kDim), AIDB_OK);
  EXPECT_GT(WalInfo(c).last_lsn, lsn_before);
  aidb_collection_close(c);

  c = OpenCollection("docs", kDim, wal);
  ASSERT_NE(c, nullptr);
  AIDB_ASSERT_OK(aidb_collection_load_snapshot(c, snap2.c_str(), &_m));
  AIDB_ASSERT_OK(aidb_recover(c, nullptr, nullptr, &_m));
  EXPECT_EQ(Count(c), 6u);
  EXPECT_TRUE(Has(c, 50));
  EXPECT_FALSE(Has(c, 7));
  aidb_collection_close(c);
}

TEST(Runbook, CrashBetweenSnapshotAndTruncateReplaysNothingTwice) {
  TempDir dir;
  const std::string wal = dir / "wal.log";
  const std::string snap = dir / "s.aidbsnap";
  aidb_collection* c = OpenCollection("docs", kDim, wal);
  ASSERT_NE(c, nullptr);
  for (uint32_t i = 0; i < 6; ++i) ASSERT_EQ(Upsert(c, i, kDim), AIDB_OK);
  const std::string wal_bytes = ReadAll(wal);
  AIDB_ASSERT_OK(aidb_collection_snapshot_to(c, snap.c_str(), &_m));
  aidb_collection_close(c);
  // As if the process died after the rename but before the truncation.
  WriteAllBytes(wal, wal_bytes);

  c = OpenCollection("docs", kDim, wal);
  ASSERT_NE(c, nullptr);
  AIDB_ASSERT_OK(aidb_collection_load_snapshot(c, snap.c_str(), &_m));
  aidb_recover_stats st;
  aidb_recover_stats_init(&st);
  AIDB_ASSERT_OK(aidb_recover(c, nullptr, &st, &_m));
  EXPECT_EQ(st.records_applied, 0u);
  EXPECT_EQ(st.records_skipped, 6u);
  EXPECT_EQ(Count(c), 6u);
  aidb_collection_close(c);
}

struct LogSink {
  std::mutex mu;
  std::vector<std::string> lines;
  static void Fn(void* user, int level, const char* target, const char* event, const char* fields) {
    auto* self = static_cast<LogSink*>(user);
    std::lock_guard<std::mutex> lock(self->mu);
    self->lines.push_back(std::string(target) + " " + event + " " + fields);
  }
};

TEST(Runbook, WalTruncatedEventIsLogged) {
  TempDir dir;
  LogSink sink;
  aidb_set_log_callback(&LogSink::Fn, &sink, AIDB_LOG_INFO);
  aidb_collection* c = OpenCollection("events", kDim, dir / "wal.log");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(Upsert(c, 1, kDim), AIDB_OK);
  AIDB_ASSERT_OK(aidb_collection_snapshot_to(c, (dir / "s").c_str(), &_m));
  aidb_collection_close(c);
  aidb_set_log_callback(nullptr, nullptr, AIDB_LOG_INFO);
  bool found = false;
  for (const auto& l : sink.lines) {
    if (l.rfind("aidb::storage wal_truncated ", 0) == 0 &&
        l.find("collection=events") != std::string::npos) {
      found = true;
    }
  }
  EXPECT_TRUE(found) << "no wal_truncated event among " << sink.lines.size() << " lines";
}

}  // namespace

namespace {

std::vector<std::string> Top(aidb_collection* c, const std::vector<float>& q, uint32_t k,
                             uint32_t ef = 0) {
  aidb_search_options so;
  aidb_search_options_init(&so);
  so.top_k = k;
  so.ef_search = ef;
  aidb_search_result* r = nullptr;
  EXPECT_EQ(aidb_collection_search(c, q.data(), q.size(), &so, &r, nullptr), AIDB_OK);
  const aidb_hit* hits = nullptr;
  size_t n = 0;
  aidb_search_result_hits_v2(r, 0, &hits, &n, nullptr);
  std::vector<std::string> ids;
  for (size_t i = 0; i < n; ++i)
    ids.push_back(std::string(hits[i].id) + "/" + std::to_string(hits[i].score));
  aidb_search_result_free(r);
  return ids;
}

// The checkpoint and restore workflow of docs/operations.md on an HNSW
// collection: the graph comes back from the snapshot as it was (identical
// results), and the WAL adds the newer points.
TEST(Runbook, HnswCheckpointAndRestoreKeepTheGraph) {
  TempDir dir;
  const std::string wal = dir / "wal.log";
  const std::string snap = dir / "hnsw.aidbsnap";
  constexpr uint32_t kD = 32, kN = 1500;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  auto make = [&](uint32_t n) {
    std::vector<float> v(static_cast<size_t>(n) * kD);
    for (float& x : v) x = nd(rng);
    return v;
  };
  std::vector<float> base = make(kN), extra = make(100), queries = make(20);
  auto open = [&] {
    aidb_collection_options o;
    aidb_collection_options_init(&o);
    o.name = "h";
    o.dim = kD;
    o.index_kind = AIDB_INDEX_HNSW;
    o.wal_path = wal.c_str();
    aidb_collection* c = nullptr;
    EXPECT_EQ(aidb_collection_open(&o, &c, nullptr), AIDB_OK);
    return c;
  };
  auto upsert = [&](aidb_collection* c, const std::vector<float>& v, uint32_t first) {
    const uint32_t n = static_cast<uint32_t>(v.size() / kD);
    std::vector<std::string> ids(n);
    std::vector<const char*> idp(n);
    for (uint32_t i = 0; i < n; ++i) {
      ids[i] = Id(first + i);
      idp[i] = ids[i].c_str();
    }
    EXPECT_EQ(aidb_collection_upsert_batch(c, n, idp.data(), v.data(), kD, nullptr, nullptr),
              AIDB_OK);
  };
  std::vector<std::vector<std::string>> before;
  {
    aidb_collection* c = open();
    upsert(c, base, 0);
    for (uint32_t q = 0; q < 20; ++q) {
      before.push_back(Top(c, {queries.begin() + q * kD, queries.begin() + (q + 1) * kD}, 10));
    }
    AIDB_ASSERT_OK(aidb_collection_snapshot_to(c, snap.c_str(), &_m));
    upsert(c, extra, kN);
    aidb_collection_close(c);
  }
  aidb_collection* c = open();
  AIDB_ASSERT_OK(aidb_collection_load_snapshot(c, snap.c_str(), &_m));
  aidb_collection_info info;
  aidb_collection_info_init(&info);
  AIDB_ASSERT_OK(aidb_collection_get_info(c, &info, &_m));
  EXPECT_EQ(info.index_kind, AIDB_INDEX_HNSW);
  for (uint32_t q = 0; q < 20; ++q) {
    EXPECT_EQ(Top(c, {queries.begin() + q * kD, queries.begin() + (q + 1) * kD}, 10), before[q]);
  }
  AIDB_ASSERT_OK(aidb_recover(c, nullptr, nullptr, &_m));
  EXPECT_EQ(Count(c), kN + 100u);
  // The points recovered from the WAL are in the graph: found by their own
  // vectors with a breadth that makes the walk exhaustive at this size. The
  // index keeps every node reachable (tests/index/hnsw_reachability_test.cc):
  // no miss allowed.
  int found = 0;
  for (uint32_t i = 0; i < 100; ++i) {
    EXPECT_TRUE(Has(c, kN + i));
    std::vector<std::string> top =
        Top(c, {extra.begin() + i * kD, extra.begin() + (i + 1) * kD}, 1, kN + 100);
    ASSERT_EQ(top.size(), 1u);
    if (top[0].substr(0, 36) == Id(kN + i)) ++found;
  }
  EXPECT_EQ(found, 100);
  aidb_collection_close(c);
}

}  // namespace
