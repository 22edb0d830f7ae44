// Recovery: torn tails, corruption, point-in-time targets, SIGKILLed writers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

using namespace aidbtest;

namespace {

constexpr uint32_t kDim = 16;

std::string MakeWal(const TempDir& dir, uint32_t records) {
  const std::string wal = dir / "wal.log";
  aidb_collection* c = OpenCollection("r", kDim, wal);
  EXPECT_NE(c, nullptr);
  for (uint32_t i = 0; i < records; ++i) EXPECT_EQ(Upsert(c, i, kDim, "{\"k\":\"v\"}"), AIDB_OK);
  aidb_collection_close(c);
  return wal;
}

TEST(Recovery, ReplaysEveryRecordThroughBothReadPaths) {
  for (uint64_t threshold : {uint64_t{1024}, uint64_t{1} << 40}) {
    TempDir dir;
    const std::string wal = MakeWal(dir, 50);
    aidb_collection* c =
        OpenCollection("r", kDim, wal, AIDB_METRIC_COSINE, AIDB_DURABILITY_FSYNC, threshold);
    aidb_recover_stats st;
    aidb_recover_stats_init(&st);
    AIDB_ASSERT_OK(aidb_recover(c, nullptr, &st, &_m));
    EXPECT_EQ(st.records_applied, 50u);
    EXPECT_EQ(st.bytes_read, FileSize(wal));
    EXPECT_EQ(st.used_mmap, threshold == 1024 ? 1 : 0);
    EXPECT_EQ(st.last_lsn, 50u);
    EXPECT_EQ(Count(c), 50u);
    std::vector<float> v(kDim);
    AIDB_ASSERT_OK(aidb_collection_get(c, Id(17).c_str(), v.data(), kDim, nullptr, &_m));
    std::vector<float> expect = Vec(17, kDim);
    // Cosine collections store the normalised vector.
    float norm = 0;
    for (float x : expect) norm += x * x;
    norm = std::sqrt(norm);
    for (uint32_t d = 0; d < kDim; ++d) EXPECT_NEAR(v[d], expect[d] / norm, 1e-6);
    aidb_collection_close(c);
  }
}

TEST(Recovery, TornTailIsDroppedAndReported) {
  TempDir dir;
  const std::string wal = MakeWal(dir, 10);
  const std::string bytes = ReadAll(wal);
  const uint64_t record = bytes.size() / 10;
  // Cut the last record at several points, including inside its header.
  for (uint64_t cut : {uint64_t{1}, uint64_t{5}, record / 2, record - 1}) {
    WriteAllBytes(wal, bytes.substr(0, bytes.size() - cut));
    aidb_collection* c = OpenCollection("r", kDim, wal);
    aidb_recover_stats st;
    aidb_recover_stats_init(&st);
    AIDB_ASSERT_OK(aidb_recover(c, nullptr, &st, &_m));
    EXPECT_EQ(Count(c), 9u) << "cut " << cut;
    EXPECT_EQ(st.torn_tail, 1);
    EXPECT_EQ(st.torn_tail_bytes, record - cut);
    // The file is cut back to its last whole record, and appends continue.
    EXPECT_EQ(FileSize(wal), record * 9);
    ASSERT_EQ(Upsert(c, 99, kDim), AIDB_OK);
    aidb_collection_close(c);
    c = OpenCollection("r", kDim, wal);
    AIDB_ASSERT_OK(aidb_recover(c, nullptr, nullptr, &_m));
    EXPECT_EQ(Count(c), 10u);
    EXPECT_TRUE(Has(c, 99));
    aidb_collection_close(c);
  }
}

TEST(Recovery, FlippedByteBeforeTheTailIsCorruptionNamingTheOffset) {
  TempDir dir;
  const std::string wal = MakeWal(dir, 10);
  std::string bytes = ReadAll(wal);
  const uint64_t record = bytes.size() / 10;
  const uint64_t pos = record * 4 + 40;  // inside the 5th record's body
  bytes[pos] ^= 0x20;
  WriteAllBytes(wal, bytes);
  aidb_collection* c = OpenCollection("r", kDim, wal);
  Err err;
  int rc = aidb_recover(c, nullptr, nullptr, err.ptr());
  EXPECT_EQ(rc, AIDB_CORRUPTION);
  EXPECT_NE(err.str().find("offset " + std::to_string(record * 4)), std::string::npos) << err.str();
  // Nothing was applied: no silent partial recovery.
  EXPECT_EQ(Count(c), 0u);
  aidb_collection_close(c);
  uint64_t records = 0;
  EXPECT_EQ(aidb_wal_verify(wal.c_str(), &records, nullptr, err.ptr()), AIDB_CORRUPTION);
  EXPECT_EQ(ReadAll(wal), bytes);  // the damaged file is left for inspection
}

TEST(Recovery, RecoverToLsnAndToTime) {
  TempDir dir;
  const std::string wal = dir / "wal.log";
  aidb_collection* c = OpenCollection("r", kDim, wal);
  for (uint32_t i = 0; i < 5; ++i) ASSERT_EQ(Upsert(c, i, kDim), AIDB_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  const int64_t cut_ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (uint32_t i = 5; i < 10; ++i) ASSERT_EQ(Upsert(c, i, kDim), AIDB_OK);
  aidb_collection_close(c);

  c = OpenCollection("r", kDim, wal);
  aidb_recover_options o;
  aidb_recover_options_init(&o);
  o.target = AIDB_RECOVER_TO_LSN;
  o.lsn = 3;
  aidb_recover_stats st;
  aidb_recover_stats_init(&st);
  AIDB_ASSERT_OK(aidb_recover(c, &o, &st, &_m));
  EXPECT_EQ(Count(c), 3u);
  EXPECT_EQ(st.last_lsn, 3u);
  EXPECT_EQ(st.records_skipped, 7u);
  aidb_collection_close(c);

  c = OpenCollection("r", kDim, wal);
  aidb_recover_options_init(&o);
  o.target = AIDB_RECOVER_TO_TIME;
  o.timestamp_ns = cut_ns;
  AIDB_ASSERT_OK(aidb_recover(c, &o, nullptr, &_m));
  EXPECT_EQ(Count(c), 5u);
  EXPECT_TRUE(Has(c, 4));
  EXPECT_FALSE(Has(c, 5));
  aidb_collection_close(c);
}

TEST(Recovery, BadSnapshotFilesAreRejectedAndChangeNothing) {
  TempDir dir;
  const std::string wal = dir / "wal.log";
  const std::string snap = dir / "good.aidbsnap";
  aidb_collection* c = OpenCollection("r", kDim, wal);
  for (uint32_t i = 0; i < 30; ++i) ASSERT_EQ(Upsert(c, i, kDim, "{\"a\":1}"), AIDB_OK);
  AIDB_ASSERT_OK(aidb_collection_snapshot_to(c, snap.c_str(), &_m));
  ASSERT_EQ(Upsert(c, 100, kDim), AIDB_OK);
  const std::string good = ReadAll(snap);

  Err err;
  EXPECT_EQ(aidb_collection_load_snapshot(c, (dir / "missing").c_str(), err.ptr()), AIDB_NOT_FOUND);
  const std::string truncated = dir / "truncated";
  WriteAllBytes(truncated, good.substr(0, good.size() / 2));
  EXPECT_EQ(aidb_collection_load_snapshot(c, truncated.c_str(), err.ptr()), AIDB_CORRUPTION);
  EXPECT_NE(err.str().find("truncated"), std::string::npos) << err.str();
  const std::string foreign = dir / "foreign";
  WriteAllBytes(foreign, "this is not a snapshot file, just some text of decent length....");
  EXPECT_EQ(aidb_collection_load_snapshot(c, foreign.c_str(), err.ptr()), AIDB_CORRUPTION);
  const std::string empty = dir / "empty";
  WriteAllBytes(empty, "");
  EXPECT_EQ(aidb_collection_load_snapshot(c, empty.c_str(), err.ptr()), AIDB_CORRUPTION);
  for (size_t pos : {size_t{3}, size_t{20}, size_t{100}, good.size() / 2, good.size() - 1}) {
    std::string flipped = good;
    flipped[pos] ^= 0x01;
    const std::string f = dir / ("flipped" + std::to_string(pos));
    WriteAllBytes(f, flipped);
    EXPECT_EQ(aidb_collection_load_snapshot(c, f.c_str(), err.ptr()), AIDB_CORRUPTION) << pos;
    EXPECT_EQ(aidb_snapshot_verify(f.c_str(), nullptr, err.ptr()), AIDB_CORRUPTION) << pos;
  }
  // A snapshot of another dimension.
  aidb_collection* other = OpenCollection("o", kDim + 1, "");
  EXPECT_EQ(aidb_collection_load_snapshot(other, snap.c_str(), err.ptr()), AIDB_DIMENSION_MISMATCH);
  aidb_collection_close(other);

  EXPECT_EQ(Count(c), 31u);  // state unchanged by every failed load
  EXPECT_TRUE(Has(c, 100));
  aidb_snapshot_info info;
  AIDB_ASSERT_OK(aidb_snapshot_verify(snap.c_str(), &info, &_m));
  EXPECT_EQ(info.count, 30u);
  EXPECT_EQ(info.lsn, 30u);
  aidb_collection_close(c);
}

// A child upserts with fsync durability and prints each acknowledged id; it is
// SIGKILLed at a random moment. Recovery must find every acknowledged point,
// with its exact vector, and nothing that was never written.
TEST(Recovery, SigkilledWriterLosesNoAcknowledgedWrite) {
  TempDir dir;
  const std::string wal = dir / "wal.log";
  const int kRounds =
      std::getenv("AIDB_CRASH_ROUNDS") ? std::atoi(std::getenv("AIDB_CRASH_ROUNDS")) : 12;
  std::mt19937 rng(12345);
  std::set<uint32_t> acked;
  uint32_t next_id = 0;
  for (int round = 0; round < kRounds; ++round) {
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    const std::string start = std::to_string(next_id);
    const std::string snap_every = std::to_string(round % 3 == 2 ? 7 : 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      dup2(out[1], 1);
      close(out[0]);
      execl(AIDB_CRASH_WRITER, AIDB_CRASH_WRITER, wal.c_str(), start.c_str(), snap_every.c_str(),
            (dir / "snaps").c_str(), (char*)nullptr);
      _exit(127);
    }
    close(out[1]);
    std::string data;
    char buf[4096];
    ssize_t n;
    if (round % 2 == 0) {
      // Every other writer dies only after its first acknowledged write,
      // however slow the machine (under ASan on a loaded machine 20-140 ms
      // was not always enough for any writer to get that far); the others
      // may die anywhere, also while opening and recovering.
      while (data.find("ack ") == std::string::npos && (n = read(out[0], buf, sizeof(buf))) > 0) {
        data.append(buf, static_cast<size_t>(n));
      }
    }
    const int delay_ms = 20 + static_cast<int>(rng() % 120);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    while ((n = read(out[0], buf, sizeof(buf))) > 0) data.append(buf, static_cast<size_t>(n));
    close(out[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited early: " << data;
    size_t pos = 0;
    while (true) {
      size_t nl = data.find('\n', pos);
      if (nl == std::string::npos) break;
      std::string line = data.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.rfind("ack ", 0) == 0) {
        uint32_t id = static_cast<uint32_t>(std::stoul(line.substr(4)));
        acked.insert(id);
        next_id = std::max(next_id, id + 1);
      }
    }
    next_id += 1000;  // ids of unacknowledged writes are never reused

    // Recover the way docs/operations.md says: latest snapshot (if any) + WAL.
    aidb_collection* c = OpenCollection("crash", kDim, wal, AIDB_METRIC_EUCLIDEAN);
    ASSERT_NE(c, nullptr);
    const std::string latest = dir / "snaps/latest.aidbsnap";
    if (FileSize(latest) != UINT64_MAX) {
      AIDB_ASSERT_OK(aidb_collection_load_snapshot(c, latest.c_str(), &_m));
    }
    AIDB_ASSERT_OK(aidb_recover(c, nullptr, nullptr, &_m));
    uint64_t count = Count(c);
    EXPECT_GE(count, acked.size());
    std::vector<float> v(kDim);
    for (uint32_t id : acked) {
      char* payload = nullptr;
      int rc = aidb_collection_get(c, Id(id).c_str(), v.data(), kDim, &payload, nullptr);
      ASSERT_EQ(rc, AIDB_OK) << "acknowledged point " << id << " lost in round " << round;
      EXPECT_EQ(std::string(payload ? payload : ""), "{\"i\":" + std::to_string(id) + "}");
      aidb_free(payload);
      std::vector<float> expect = Vec(id, kDim);
      for (uint32_t d = 0; d < kDim; ++d) ASSERT_FLOAT_EQ(v[d], expect[d]);
    }
    aidb_collection_close(c);
  }
  EXPECT_GT(acked.size(), 0u);
}

}  // namespace

namespace {

// Snapshots split vectors (< 64 MiB per chunk) and points (64Ki slots per
// chunk) so that Cap'n Proto's list limits never bind, whatever the size.
TEST(Recovery, SnapshotsOfMultiChunkCollectionsRoundTrip) {
  TempDir dir;
  struct Case {
    uint32_t dim, n;
  } cases[] = {{65536, 300}, {2, 70000}};
  for (const Case& k : cases) {
    aidb_collection* c = OpenCollection("chunks", k.dim, "", AIDB_METRIC_EUCLIDEAN);
    std::vector<std::string> ids(k.n), payloads(k.n);
    std::vector<const char*> idp(k.n), pp(k.n);
    std::vector<float> vecs(static_cast<size_t>(k.n) * k.dim);
    for (uint32_t i = 0; i < k.n; ++i) {
      ids[i] = Id(i);
      idp[i] = ids[i].c_str();
      payloads[i] = "{\"i\":" + std::to_string(i) + "}";
      pp[i] = payloads[i].c_str();
      for (uint32_t d = 0; d < k.dim; ++d)
        vecs[static_cast<size_t>(i) * k.dim + d] = static_cast<float>(i + d % 3);
    }
    AIDB_ASSERT_OK(
        aidb_collection_upsert_batch(c, k.n, idp.data(), vecs.data(), k.dim, pp.data(), &_m));
    const std::string snap = dir / ("chunks-" + std::to_string(k.dim));
    AIDB_ASSERT_OK(aidb_collection_snapshot_to(c, snap.c_str(), &_m));
    aidb_collection_close(c);

    c = OpenCollection("chunks", k.dim, "", AIDB_METRIC_EUCLIDEAN);
    AIDB_ASSERT_OK(aidb_collection_load_snapshot(c, snap.c_str(), &_m));
    EXPECT_EQ(Count(c), k.n);
    std::vector<float> v(k.dim);
    for (uint32_t i : {0u, k.n / 2, k.n - 1}) {
      char* payload = nullptr;
      AIDB_ASSERT_OK(aidb_collection_get(c, Id(i).c_str(), v.data(), k.dim, &payload, &_m));
      EXPECT_EQ(std::string(payload), payloads[i]);
      aidb_free(payload);
      for (uint32_t d = 0; d < k.dim; d += 977) ASSERT_EQ(v[d], static_cast<float>(i + d % 3));
    }
    // Points added after a load land in new or copied chunks.
    std::vector<float> extra(k.dim, 7.f);
    AIDB_ASSERT_OK(
        aidb_collection_upsert(c, Id(k.n).c_str(), extra.data(), k.dim, nullptr, 0, &_m));
    AIDB_ASSERT_OK(aidb_collection_get(c, Id(k.n).c_str(), v.data(), k.dim, nullptr, &_m));
    EXPECT_EQ(v[k.dim - 1], 7.f);
    aidb_collection_close(c);
  }
}

}  // namespace
