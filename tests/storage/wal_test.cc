// WAL tests: LevelDB log_test's checklist adapted to AIDB's unfragmented
// record format, plus group commit, durability modes, truncation, the LSN
// sidecar, log events and I/O failure injection.
#include "storage/wal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "storage/crc32c.h"
#include "storage/file.h"
#include "storage/wal_codec.h"
#include "temp_dir.h"

namespace aidb::storage {
namespace {

constexpr uint64_t kMmapAlways = 1024;  // the tests' threshold: 1 KiB
constexpr uint64_t kMmapNever = ~uint64_t{0};

struct Rec {
  uint64_t lsn;
  int64_t ts;
  uint8_t op;
  std::string body;
  uint64_t offset;
  bool operator==(const Rec& o) const {
    return lsn == o.lsn && ts == o.ts && op == o.op && body == o.body && offset == o.offset;
  }
};

struct ReadResult {
  Status status;
  std::vector<Rec> recs;
  WalReadStats stats;
};

ReadResult ReadAll(const std::string& path, uint64_t threshold) {
  ReadResult r;
  r.status = ReadWal(
      path, threshold,
      [&](const WalRecord& w) {
        r.recs.push_back({w.lsn, w.timestamp_ns, w.op, std::string(w.body), w.offset});
        return Status::OK();
      },
      &r.stats);
  return r;
}

// Reads through both paths, checks they agree, returns the mmap one.
ReadResult ReadBoth(const std::string& path) {
  ReadResult a = ReadAll(path, kMmapAlways);
  ReadResult b = ReadAll(path, kMmapNever);
  EXPECT_EQ(a.status.code(), b.status.code());
  EXPECT_EQ(a.status.message(), b.status.message());
  EXPECT_TRUE(a.recs == b.recs);
  EXPECT_EQ(a.stats.records, b.stats.records);
  EXPECT_EQ(a.stats.valid_bytes, b.stats.valid_bytes);
  EXPECT_EQ(a.stats.torn_tail, b.stats.torn_tail);
  EXPECT_EQ(a.stats.torn_tail_bytes, b.stats.torn_tail_bytes);
  EXPECT_EQ(a.stats.zero_tail_bytes, b.stats.zero_tail_bytes);
  EXPECT_EQ(a.stats.last_lsn, b.stats.last_lsn);
  EXPECT_FALSE(b.stats.used_mmap);
  if (a.stats.file_bytes >= kMmapAlways) {
    EXPECT_TRUE(a.stats.used_mmap);
  }
  return a;
}

// An independent encoder of the documented format, for crafting files.
std::string Encode(uint64_t lsn, int64_t ts, uint8_t op, const std::string& body) {
  std::string r(kWalHeaderSize, '\0');
  uint32_t len = static_cast<uint32_t>(body.size());
  std::memcpy(&r[4], &len, 4);
  std::memcpy(&r[8], &lsn, 8);
  std::memcpy(&r[16], &ts, 8);
  r[24] = static_cast<char>(op);
  r += body;
  uint32_t crc = crc32c::Mask(crc32c::Value(r.data() + 4, r.size() - 4));
  std::memcpy(&r[0], &crc, 4);
  return r;
}

std::string Slurp(const std::string& path) {
  std::string s;
  Status st = ReadFile(path, &s);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return s;
}

void Spit(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, data.data(), data.size(), path).ok());
  close(fd);
}

uint64_t SizeOf(const std::string& path) {
  uint64_t n = 0;
  EXPECT_TRUE(FileSize(path, &n).ok());
  return n;
}

std::string Body(uint64_t i, size_t len) {
  std::string s(len, '\0');
  uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
  for (size_t k = 0; k < len; ++k) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[k] = static_cast<char>(x);
  }
  return s;
}

class WalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
    path_ = dir_ + "/wal.log";
  }

  WalOptions Opts(Durability d = Durability::kFsync) {
    WalOptions o;
    o.durability = d;
    o.mmap_threshold = kMmapAlways;
    o.collection = "test";
    return o;
  }
  std::unique_ptr<Wal> OpenWal(const WalOptions& o) {
    std::unique_ptr<Wal> w;
    Status s = Wal::Open(path_, o, &w);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return w;
  }
  std::unique_ptr<Wal> OpenWal() { return OpenWal(Opts()); }

  // Commits and returns the LSN the apply callback saw (0 if not applied).
  static uint64_t Put(Wal* w, const std::string& body, uint8_t op = 1) {
    uint64_t got = 0;
    Status s = w->Commit(op, body, [&](uint64_t lsn) { got = lsn; });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return got;
  }

  // Writes records 1..n with bodies Body(i, sizes[i-1]) and returns the file.
  // (No fsync: these tests are about the format; other tests cover the modes.)
  std::string WriteRecords(const std::vector<size_t>& sizes) {
    auto w = OpenWal(Opts(Durability::kNone));
    for (size_t i = 0; i < sizes.size(); ++i) EXPECT_EQ(Put(w.get(), Body(i + 1, sizes[i])), i + 1);
    w.reset();
    return Slurp(path_);
  }

  aidbtest::TempDir tmp_;
  std::string dir_;
  std::string path_;
};

TEST_F(WalTest, MissingAndEmptyFilesReadAsEmpty) {
  ReadResult r = ReadBoth(path_);
  EXPECT_TRUE(r.status.ok());
  EXPECT_TRUE(r.recs.empty());
  Spit(path_, "");
  r = ReadBoth(path_);
  EXPECT_TRUE(r.status.ok());
  EXPECT_TRUE(r.recs.empty());
  EXPECT_FALSE(r.stats.torn_tail);
  EXPECT_EQ(r.stats.file_bytes, 0u);

  auto w = OpenWal();
  EXPECT_EQ(w->Stats().size_bytes, 0u);
  EXPECT_EQ(w->last_lsn(), 0u);
  WalReadStats st;
  ASSERT_TRUE(w->Replay([](const WalRecord&) { return Status::OK(); }, &st).ok());
  EXPECT_EQ(st.records, 0u);
  EXPECT_EQ(Put(w.get(), "first"), 1u);
}

TEST_F(WalTest, OpenCreatesTheFile) {
  auto w = OpenWal();
  EXPECT_TRUE(FileExists(path_));
  EXPECT_EQ(SizeOf(path_), 0u);
  EXPECT_EQ(w->path(), path_);
}

TEST_F(WalTest, FormatIsAsDocumented) {
  auto w = OpenWal();
  int64_t before = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  ASSERT_EQ(Put(w.get(), "abc", 7), 1u);
  w.reset();
  std::string f = Slurp(path_);
  ASSERT_EQ(f.size(), kWalHeaderSize + 3);
  int64_t ts;
  std::memcpy(&ts, &f[16], 8);
  EXPECT_GE(ts, before);
  EXPECT_EQ(f, Encode(1, ts, 7, "abc"));
}

TEST_F(WalTest, ManyRecords) {
  std::vector<size_t> sizes;
  std::mt19937 rng(1);
  for (int i = 0; i < 3000; ++i) sizes.push_back(rng() % 700);
  std::string f = WriteRecords(sizes);
  ReadResult r = ReadBoth(path_);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_EQ(r.recs.size(), sizes.size());
  uint64_t off = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(r.recs[i].lsn, i + 1);
    EXPECT_EQ(r.recs[i].op, 1);
    EXPECT_EQ(r.recs[i].offset, off);
    ASSERT_EQ(r.recs[i].body, Body(i + 1, sizes[i]));
    if (i > 0) {
      EXPECT_GE(r.recs[i].ts, r.recs[i - 1].ts);  // timestamps never decrease
    }
    off += kWalHeaderSize + sizes[i];
  }
  EXPECT_EQ(r.stats.last_timestamp_ns, r.recs.back().ts);
  EXPECT_EQ(r.stats.valid_bytes, f.size());
  EXPECT_EQ(r.stats.file_bytes, f.size());
  EXPECT_EQ(r.stats.last_lsn, sizes.size());
  EXPECT_FALSE(r.stats.torn_tail);
}

TEST_F(WalTest, LargeRecords) {
  std::vector<size_t> sizes = {5u << 20, 1, 9u << 20, 0, 3u << 20};
  WriteRecords(sizes);
  ReadResult r = ReadBoth(path_);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_EQ(r.recs.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) EXPECT_TRUE(r.recs[i].body == Body(i + 1, sizes[i]));
}

// Large groups in fsync mode (appended without preallocated zeros): a body
// given in parts of odd sizes, and groups of several writers, come back
// byte for byte.
TEST_F(WalTest, LargeGroupsInPartsReadBackExactly) {
  auto w = OpenWal(Opts(Durability::kFsync));
  std::vector<std::string> want;
  const std::string a = Body(1, (1u << 20) - 7), b = Body(2, (2u << 20) + 13), c = Body(3, 5);
  const std::string_view parts[] = {a, c, b, "", c, a};
  ASSERT_TRUE(w->Commit(
                   1, parts, [](uint64_t) {}, [](uint64_t) {}, [] {})
                  .ok());
  want.push_back(a + c + b + c + a);
  std::vector<std::thread> ts;
  std::mutex mu;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      const std::string body = Body(10 + t, (700u << 10) + 4097 * t);
      ASSERT_TRUE(w->Commit(1, body, [](uint64_t) {}).ok());
      std::lock_guard<std::mutex> l(mu);
      want.push_back(body);
    });
  }
  for (auto& th : ts) th.join();
  w.reset();
  ReadResult r = ReadBoth(path_);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_EQ(r.recs.size(), want.size());
  EXPECT_EQ(r.recs[0].body, want[0]);
  std::vector<std::string> got, rest(want.begin() + 1, want.end());
  for (size_t i = 1; i < r.recs.size(); ++i) got.push_back(r.recs[i].body);
  std::sort(got.begin(), got.end());
  std::sort(rest.begin(), rest.end());
  EXPECT_TRUE(got == rest);
}

TEST_F(WalTest, BadArgumentsAreRejected) {
  auto w = OpenWal();
  bool applied = false;
  EXPECT_TRUE(w->Commit(0, "x", [&](uint64_t) { applied = true; }).IsInvalidArgument());
  EXPECT_FALSE(applied);
  EXPECT_EQ(Put(w.get(), "y"), 1u);
}

TEST_F(WalTest, ReopenAndAppend) {
  WriteRecords({10, 20, 30});
  {
    auto w = OpenWal();
    EXPECT_EQ(w->Stats().size_bytes, SizeOf(path_));
    EXPECT_EQ(Put(w.get(), "four"), 4u);  // first Commit scans the file
    EXPECT_EQ(w->last_lsn(), 4u);
  }
  {
    auto w = OpenWal();
    std::vector<uint64_t> seen;
    WalReadStats st;
    ASSERT_TRUE(w->Replay(
                     [&](const WalRecord& r) {
                       seen.push_back(r.lsn);
                       return Status::OK();
                     },
                     &st)
                    .ok());
    EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2, 3, 4}));
    EXPECT_EQ(w->last_lsn(), 4u);
    EXPECT_EQ(Put(w.get(), "five"), 5u);
  }
  ReadResult r = ReadBoth(path_);
  ASSERT_EQ(r.recs.size(), 5u);
  EXPECT_EQ(r.recs[3].body, "four");
  EXPECT_EQ(r.recs[4].body, "five");
}

TEST_F(WalTest, ReplayCallbackErrorStopsReplay) {
  WriteRecords({1, 2, 3});
  auto w = OpenWal();
  int n = 0;
  Status s = w->Replay(
      [&](const WalRecord&) { return ++n == 2 ? Status::Internal("stop here") : Status::OK(); },
      nullptr);
  EXPECT_EQ(s.message(), "stop here");
  EXPECT_EQ(n, 2);
}

// Every cut inside the last record (header or body) is a torn tail: dropped,
// reported, cut off by Replay, and appends continue with the next LSN.
TEST_F(WalTest, TornTailAtEveryBytePositionOfTheLastRecord) {
  std::string full = WriteRecords({40, 90, 70});
  const size_t last_start = 2 * kWalHeaderSize + 40 + 90;
  for (size_t cut = last_start; cut < full.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    Spit(path_, full.substr(0, cut));
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    ASSERT_EQ(r.recs.size(), 2u);
    EXPECT_EQ(r.stats.valid_bytes, last_start);
    EXPECT_EQ(r.stats.torn_tail, cut > last_start);
    EXPECT_EQ(r.stats.torn_tail_bytes, cut - last_start);

    auto w = OpenWal();
    WalReadStats st;
    ASSERT_TRUE(w->Replay([](const WalRecord&) { return Status::OK(); }, &st).ok());
    EXPECT_EQ(st.records, 2u);
    EXPECT_EQ(SizeOf(path_), last_start);  // the tail is cut off
    EXPECT_EQ(w->Stats().size_bytes, last_start);
    EXPECT_EQ(Put(w.get(), "again"), 3u);
    w.reset();
    ReadResult after = ReadBoth(path_);
    ASSERT_TRUE(after.status.ok());
    ASSERT_EQ(after.recs.size(), 3u);
    EXPECT_EQ(after.recs[2].body, "again");
    EXPECT_FALSE(after.stats.torn_tail);
  }
}

// The first Commit on an unscanned file cuts a torn tail too.
TEST_F(WalTest, FirstCommitCutsTornTail) {
  std::string full = WriteRecords({100, 100});
  Spit(path_, full.substr(0, full.size() - 5));
  auto w = OpenWal();
  EXPECT_EQ(Put(w.get(), "x"), 2u);
  w.reset();
  ReadResult r = ReadBoth(path_);
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.recs.size(), 2u);
  EXPECT_EQ(r.recs[1].body, "x");
}

TEST_F(WalTest, CutInsideFirstRecordLeavesNoRecords) {
  std::string full = WriteRecords({50});
  for (size_t cut : {size_t{1}, size_t{27}, size_t{28}, full.size() - 1}) {
    Spit(path_, full.substr(0, cut));
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.ok());
    EXPECT_TRUE(r.recs.empty());
    EXPECT_TRUE(r.stats.torn_tail);
    EXPECT_EQ(r.stats.torn_tail_bytes, cut);
  }
}

// Zeros from a record boundary to the end: preallocated space (or appends
// of which only the new size reached the disk): a clean end, not torn.
TEST_F(WalTest, ZeroFilledTailIsACleanEnd) {
  std::string full = WriteRecords({30, 30, 30});
  for (size_t zeros : {size_t{28}, size_t{29}, size_t{100}, size_t{5000}, size_t{70000},
                       4096 - full.size() % 4096}) {
    SCOPED_TRACE(zeros);
    Spit(path_, full + std::string(zeros, '\0'));
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.recs.size(), 3u);
    EXPECT_FALSE(r.stats.torn_tail);
    EXPECT_EQ(r.stats.torn_tail_bytes, 0u);
    EXPECT_EQ(r.stats.zero_tail_bytes, zeros);
    EXPECT_EQ(r.stats.valid_bytes, full.size());
  }
  // Fewer zeros than a header, not at a 4 KiB end of file: could be a
  // record cut short whose first bytes happen to be zero, so torn.
  for (size_t zeros : {1, 7, 8, 27}) {
    SCOPED_TRACE(zeros);
    Spit(path_, full + std::string(zeros, '\0'));
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.recs.size(), 3u);
    EXPECT_TRUE(r.stats.torn_tail);
    EXPECT_EQ(r.stats.torn_tail_bytes, zeros);
    EXPECT_EQ(r.stats.zero_tail_bytes, 0u);
  }
  // Zeros over the whole last record and beyond: the record never reached
  // the disk (it was never acknowledged in fsync mode).
  std::string z = full;
  const size_t last_start = 2 * (kWalHeaderSize + 30);
  std::fill(z.begin() + last_start, z.end(), '\0');
  Spit(path_, z + std::string(4096, '\0'));
  ReadResult r = ReadBoth(path_);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.recs.size(), 2u);
  EXPECT_FALSE(r.stats.torn_tail);
  EXPECT_EQ(r.stats.zero_tail_bytes, z.size() + 4096 - last_start);
  // A file of zeros only holds no record.
  Spit(path_, std::string(10000, '\0'));
  r = ReadBoth(path_);
  ASSERT_TRUE(r.status.ok());
  EXPECT_TRUE(r.recs.empty());
  EXPECT_EQ(r.stats.zero_tail_bytes, 10000u);
}

// Replay keeps a zero tail (the next commits overwrite it) and cuts a torn
// record in front of zeros; damage in front of valid records stays corruption.
TEST_F(WalTest, ZeroTailTornTailAndCorruptionAreToldApart) {
  const std::string full = WriteRecords({30, 40, 50});
  const size_t rec3 = 2 * kWalHeaderSize + 30 + 40;
  const std::string zeros(8192, '\0');
  {
    SCOPED_TRACE("zero tail");
    Spit(path_, full + zeros);
    auto w = OpenWal();
    WalReadStats st;
    ASSERT_TRUE(w->Replay([](const WalRecord&) { return Status::OK(); }, &st).ok());
    EXPECT_EQ(st.records, 3u);
    EXPECT_FALSE(st.torn_tail);
    EXPECT_EQ(st.zero_tail_bytes, zeros.size());
    EXPECT_EQ(SizeOf(path_), full.size() + zeros.size());  // kept for the next writes
    EXPECT_EQ(w->Stats().size_bytes, full.size());
    EXPECT_EQ(Put(w.get(), "four"), 4u);
    EXPECT_EQ(w->Stats().size_bytes, full.size() + kWalHeaderSize + 4);
    w.reset();
    EXPECT_EQ(SizeOf(path_), full.size() + kWalHeaderSize + 4);  // close cuts the zeros
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.ok());
    ASSERT_EQ(r.recs.size(), 4u);
    EXPECT_EQ(r.recs[3].body, "four");
    EXPECT_EQ(r.stats.zero_tail_bytes, 0u);
  }
  {
    SCOPED_TRACE("torn record in preallocated space");
    std::string torn = full.substr(0, rec3 + 30);  // the last record cut short
    Spit(path_, torn + zeros);
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.recs.size(), 2u);
    EXPECT_TRUE(r.stats.torn_tail);
    EXPECT_EQ(r.stats.torn_tail_bytes, 30 + zeros.size());
    EXPECT_EQ(r.stats.zero_tail_bytes, 0u);
    auto w = OpenWal();
    WalReadStats st;
    ASSERT_TRUE(w->Replay([](const WalRecord&) { return Status::OK(); }, &st).ok());
    EXPECT_TRUE(st.torn_tail);
    EXPECT_EQ(SizeOf(path_), rec3);  // cut back to the last whole record
    EXPECT_EQ(Put(w.get(), "three"), 3u);
  }
  {
    SCOPED_TRACE("the last record's checksum fails, zeros follow");
    std::string bad = full;
    bad[rec3 + kWalHeaderSize + 10] ^= 1;
    Spit(path_, bad + zeros);
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.recs.size(), 2u);
    EXPECT_TRUE(r.stats.torn_tail);
  }
  {
    SCOPED_TRACE("damage before valid records, zeros after them");
    std::string bad = full;
    bad[kWalHeaderSize + 5] ^= 1;
    Spit(path_, bad + zeros);
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.IsCorruption()) << r.status.ToString();
    EXPECT_NE(r.status.message().find("at offset 0"), std::string::npos) << r.status.message();
    EXPECT_EQ(r.recs.size(), 0u);
  }
}

// In fsync mode the writer keeps zeros ahead of its last record; the file
// size is never what wal_size_bytes reports, except after close and right
// after a truncation (0 bytes on disk, preallocated again on the next write).
TEST_F(WalTest, PreallocationIsInvisibleToStatsAndGoesAwayOnClose) {
  WalOptions o = Opts();
  o.prealloc_bytes = 64 << 10;
  uint64_t logical = 0;
  {
    auto w = OpenWal(o);
    for (int i = 0; i < 50; ++i) Put(w.get(), Body(i, 300));
    logical = 50 * (kWalHeaderSize + 300);
    EXPECT_EQ(w->Stats().size_bytes, logical);
    EXPECT_GT(SizeOf(path_), logical);  // zeros ahead of the records
    EXPECT_EQ(SizeOf(path_) % 4096, 0u);
    EXPECT_LE(SizeOf(path_), logical + (64 << 10) + 4096);
    // What a crash would leave: records, then zeros, read as a clean end.
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(r.recs.size(), 50u);
    EXPECT_FALSE(r.stats.torn_tail);
    EXPECT_EQ(r.stats.valid_bytes, logical);
    EXPECT_EQ(r.stats.zero_tail_bytes, SizeOf(path_) - logical);
    // The change feed reads records only.
    uint64_t n = 0;
    ASSERT_TRUE(w->Read([&](const WalRecord&) { return ++n, Status::OK(); }, nullptr).ok());
    EXPECT_EQ(n, 50u);

    ASSERT_TRUE(w->Exclusive([&] { return w->Truncate(); }).ok());
    EXPECT_EQ(SizeOf(path_), 0u);  // no preallocation right after the truncation
    EXPECT_EQ(w->Stats().size_bytes, 0u);
    EXPECT_EQ(Put(w.get(), "next"), 51u);
    EXPECT_EQ(w->Stats().size_bytes, kWalHeaderSize + 4u);
    EXPECT_GT(SizeOf(path_), kWalHeaderSize + 4u);  // lazily, with the first write
    logical = kWalHeaderSize + 4;
  }
  EXPECT_EQ(SizeOf(path_), logical);  // close cuts the file back to its records
  // A group larger than half the preallocation is appended without zeros.
  {
    auto w = OpenWal(o);
    Put(w.get(), Body(1, 40 << 10));
    logical += kWalHeaderSize + (40 << 10);
    EXPECT_EQ(SizeOf(path_), logical);
    EXPECT_EQ(w->Stats().size_bytes, logical);
  }
  // Small groups get zeros for 16 like them, at least 256 KiB, at most
  // prealloc_bytes.
  {
    WalOptions big = Opts();
    big.prealloc_bytes = 4 << 20;
    auto w = OpenWal(big);
    Put(w.get(), "x");
    logical += kWalHeaderSize + 1;
    EXPECT_GE(SizeOf(path_), logical + (256 << 10));
    EXPECT_LE(SizeOf(path_), logical + (256 << 10) + 4096);
    // Two fit in the zeros; the third goes past them: 16 x its size more.
    for (int i = 0; i < 3; ++i) Put(w.get(), Body(2, 100 << 10));
    logical += 3 * (kWalHeaderSize + (100 << 10));
    EXPECT_GE(SizeOf(path_), logical + 16 * (kWalHeaderSize + (100 << 10)));
    EXPECT_LE(SizeOf(path_), logical + 16 * (kWalHeaderSize + (100 << 10)) + 4096);
  }
  EXPECT_EQ(SizeOf(path_), logical);
  // Other modes and prealloc_bytes = 0 never preallocate.
  for (Durability d : {Durability::kBatch, Durability::kNone, Durability::kFsync}) {
    WalOptions p = Opts(d);
    if (d == Durability::kFsync) p.prealloc_bytes = 0;
    auto w = OpenWal(p);
    Put(w.get(), "x");
    logical += kWalHeaderSize + 1;
    EXPECT_EQ(SizeOf(path_), logical);
  }
}

// A power cut can keep a file's size but not all of its last pages: the tail
// then reads as zeros from a sector boundary on, possibly from inside a record
// whose length field survived (found by the powerfs loops in
// tests/reliability, batch mode, variant "zero"). Torn, never corruption.
TEST_F(WalTest, ZerosFromInsideARecordToTheEndAreATornTail) {
  std::string full = WriteRecords({30, 200, 30, 30});
  const size_t second = kWalHeaderSize + 30;
  for (size_t extra : {size_t{0}, size_t{4096}}) {
    for (size_t z = second + 1; z < full.size(); ++z) {
      SCOPED_TRACE("zeros from " + std::to_string(z) + ", " + std::to_string(extra) + " more");
      std::string bad = full;
      std::fill(bad.begin() + static_cast<std::ptrdiff_t>(z), bad.end(), '\0');
      Spit(path_, bad + std::string(extra, '\0'));
      ReadResult r = ReadBoth(path_);
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      // The records that end at or before z survive, nothing else.
      size_t end = 0, n = 0;
      for (size_t len : {size_t{30}, size_t{200}, size_t{30}, size_t{30}}) {
        if (end + kWalHeaderSize + len > z) break;
        end += kWalHeaderSize + len;
        ++n;
      }
      EXPECT_EQ(r.recs.size(), n);
      EXPECT_EQ(r.stats.valid_bytes, end);
      // From a record boundary on, zeros are a clean end (the lost record
      // was never synced); from inside a record, a torn tail. The bytes of
      // the record that survive may all be zero (the CRC's first byte, over
      // a timestamp, is zero in 1 run of 256): that is the same file as
      // zeros from the boundary on.
      const bool clean = std::all_of(bad.begin() + static_cast<std::ptrdiff_t>(end),
                                     bad.begin() + static_cast<std::ptrdiff_t>(z),
                                     [](char c) { return c == '\0'; });
      EXPECT_TRUE(!clean || z - end <= 4);  // only CRC bytes: a length is never 0
      EXPECT_EQ(r.stats.torn_tail, !clean);
      EXPECT_EQ(r.stats.zero_tail_bytes, clean ? full.size() + extra - end : 0u);
    }
  }
}

// A checksum failure followed by more bytes is corruption naming the offset.
TEST_F(WalTest, ChecksumFlipInMiddleRecordIsCorruptionWithOffset) {
  std::string full = WriteRecords({60, 60, 60, 60, 60});
  const size_t rec = kWalHeaderSize + 60;
  for (size_t pos : {2 * rec + 0, 2 * rec + 5, 2 * rec + 9, 2 * rec + 20, 2 * rec + 24,
                     2 * rec + 40, 3 * rec - 1}) {
    SCOPED_TRACE("flip at " + std::to_string(pos));
    std::string bad = full;
    bad[pos] ^= 0x10;
    Spit(path_, bad);
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.IsCorruption()) << r.status.ToString();
    EXPECT_NE(r.status.message().find(path_), std::string::npos) << r.status.message();
    EXPECT_NE(r.status.message().find("at offset " + std::to_string(2 * rec)), std::string::npos)
        << r.status.message();
    if (pos >= 2 * rec + 8) {  // the length field is intact
      EXPECT_NE(r.status.message().find("checksum mismatch"), std::string::npos);
      EXPECT_NE(r.status.message().find(std::to_string(2 * rec) + " bytes after it"),
                std::string::npos)
          << r.status.message();
    }
    EXPECT_EQ(r.recs.size(), 2u);  // records before it were delivered
    EXPECT_EQ(r.stats.records, 2u);
    EXPECT_EQ(r.stats.valid_bytes, 2 * rec);

    // Replay reports it too and leaves the file alone; Commit refuses to append.
    auto w = OpenWal();
    EXPECT_TRUE(w->Replay([](const WalRecord&) { return Status::OK(); }, nullptr).IsCorruption());
    EXPECT_EQ(SizeOf(path_), full.size());
    bool applied = false;
    EXPECT_TRUE(w->Commit(1, "x", [&](uint64_t) { applied = true; }).IsCorruption());
    EXPECT_FALSE(applied);
    EXPECT_EQ(SizeOf(path_), full.size());
  }
}

// The caller may choose to keep the records before the damage.
TEST_F(WalTest, CutTailAfterCorruptionRecoversThePrefix) {
  std::string full = WriteRecords({60, 60, 60, 60});
  const size_t rec = kWalHeaderSize + 60;
  full[rec + 40] ^= 1;
  Spit(path_, full);
  auto w = OpenWal();
  WalReadStats st;
  ASSERT_TRUE(w->Replay([](const WalRecord&) { return Status::OK(); }, &st).IsCorruption());
  EXPECT_EQ(st.valid_bytes, rec);
  EXPECT_TRUE(w->CutTail(full.size() + 1).IsInvalidArgument());
  ASSERT_TRUE(w->Exclusive([&] { return w->CutTail(st.valid_bytes); }).ok());
  EXPECT_EQ(SizeOf(path_), rec);
  EXPECT_EQ(w->Stats().size_bytes, rec);
  EXPECT_EQ(Put(w.get(), "next"), 2u);  // rescans: LSN follows the kept record
  w.reset();
  ReadResult r = ReadBoth(path_);
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.recs.size(), 2u);
  EXPECT_EQ(r.recs[1].body, "next");
}

TEST_F(WalTest, ExactCorruptionMessage) {
  std::string full = WriteRecords({100, 100, 100});
  full[kWalHeaderSize + 100 + 50] ^= 1;
  Spit(path_, full);
  ReadResult r = ReadAll(path_, kMmapAlways);
  EXPECT_EQ(
      r.status.message(),
      "WAL " + path_ + ": checksum mismatch in record at offset 128 (lsn 2); 128 bytes after it");
}

TEST_F(WalTest, ChecksumFlipInLastRecordIsTornTail) {
  std::string full = WriteRecords({60, 60, 60});
  const size_t last_start = 2 * (kWalHeaderSize + 60);
  for (size_t pos = last_start; pos < full.size(); pos += 7) {
    if (pos >= last_start + 4 && pos < last_start + 8) continue;  // length field: see below
    std::string bad = full;
    bad[pos] ^= 0x01;
    Spit(path_, bad);
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.ok()) << pos << ": " << r.status.ToString();
    EXPECT_EQ(r.recs.size(), 2u);
    EXPECT_TRUE(r.stats.torn_tail);
    EXPECT_EQ(r.stats.torn_tail_bytes, 60 + kWalHeaderSize);
  }
}

TEST_F(WalTest, ImpossibleLengthIsCorruption) {
  std::string full = WriteRecords({20, 20, 20});
  const size_t second = kWalHeaderSize + 20;
  std::string bad = full;
  uint32_t len = kMaxRecordBody + 1;
  std::memcpy(&bad[second + 4], &len, 4);
  Spit(path_, bad);
  ReadResult r = ReadBoth(path_);
  ASSERT_TRUE(r.status.IsCorruption()) << r.status.ToString();
  EXPECT_NE(r.status.message().find("impossible length"), std::string::npos);
  EXPECT_NE(r.status.message().find("offset " + std::to_string(second)), std::string::npos);
  EXPECT_EQ(r.recs.size(), 1u);

  // The same in the last record: still impossible, never a torn tail.
  bad = full;
  std::memcpy(&bad[2 * second + 4], &len, 4);
  Spit(path_, bad);
  r = ReadBoth(path_);
  EXPECT_TRUE(r.status.IsCorruption()) << r.status.ToString();

  // A wrong but possible length in a middle record: its checksum fails.
  bad = full;
  len = 21;
  std::memcpy(&bad[second + 4], &len, 4);
  Spit(path_, bad);
  r = ReadBoth(path_);
  EXPECT_TRUE(r.status.IsCorruption()) << r.status.ToString();
  EXPECT_NE(
      r.status.message().find("checksum mismatch in record at offset " + std::to_string(second)),
      std::string::npos);

  // A length running past end of file in the last record: torn tail.
  bad = full;
  len = 1000;
  std::memcpy(&bad[2 * second + 4], &len, 4);
  Spit(path_, bad);
  r = ReadBoth(path_);
  EXPECT_TRUE(r.status.ok());
  EXPECT_TRUE(r.stats.torn_tail);
  EXPECT_EQ(r.recs.size(), 2u);
}

TEST_F(WalTest, ZeroOpAndNonIncreasingLsnAreCorruption) {
  Spit(path_, Encode(1, 5, 1, "a") + Encode(2, 5, 0, "b") + Encode(3, 5, 1, "c"));
  ReadResult r = ReadBoth(path_);
  EXPECT_TRUE(r.status.IsCorruption());
  EXPECT_NE(r.status.message().find("zero op"), std::string::npos);
  EXPECT_NE(r.status.message().find("offset 29"), std::string::npos);

  Spit(path_,
       Encode(1, 5, 1, "a") + Encode(5, 5, 1, "b") + Encode(5, 5, 1, "c") + Encode(6, 5, 1, "d"));
  r = ReadBoth(path_);
  EXPECT_TRUE(r.status.IsCorruption());
  EXPECT_NE(r.status.message().find("non-increasing lsn 5 after 5"), std::string::npos);
  EXPECT_NE(r.status.message().find("offset 58"), std::string::npos);
  EXPECT_EQ(r.recs.size(), 2u);

  // Gaps are fine (failed groups never reuse their LSNs).
  Spit(path_, Encode(1, 5, 1, "a") + Encode(7, 5, 1, "b"));
  r = ReadBoth(path_);
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.stats.last_lsn, 7u);
}

TEST_F(WalTest, LsnSidecarAcrossTruncateAndReopen) {
  {
    auto w = OpenWal();
    for (int i = 1; i <= 10; ++i) EXPECT_EQ(Put(w.get(), "r"), uint64_t(i));
    ASSERT_TRUE(w->Exclusive([&] { return w->Truncate(); }).ok());
    EXPECT_EQ(SizeOf(path_), 0u);
    EXPECT_TRUE(FileExists(path_ + ".lsn"));
    EXPECT_EQ(w->last_lsn(), 10u);
    EXPECT_EQ(Put(w.get(), "r"), 11u);
  }
  {
    auto w = OpenWal();  // file holds lsn 11, sidecar says 10
    EXPECT_EQ(Put(w.get(), "r"), 12u);
    ASSERT_TRUE(w->Exclusive([&] { return w->Truncate(); }).ok());
  }
  {
    auto w = OpenWal();  // empty file, sidecar says 12
    EXPECT_EQ(w->last_lsn(), 12u);
    EXPECT_EQ(Put(w.get(), "r"), 13u);
  }
  // Truncate right after Open (file never scanned) still covers the file's LSNs.
  {
    auto w = OpenWal();
    ASSERT_TRUE(w->Exclusive([&] { return w->Truncate(); }).ok());
  }
  {
    auto w = OpenWal();
    EXPECT_EQ(Put(w.get(), "r"), 14u);
  }
}

TEST_F(WalTest, DamagedSidecarFailsOpen) {
  {
    auto w = OpenWal();
    Put(w.get(), "r");
    ASSERT_TRUE(w->Exclusive([&] { return w->Truncate(); }).ok());
  }
  std::string side = Slurp(path_ + ".lsn");
  ASSERT_EQ(side.size(), 12u);
  side[0] ^= 1;
  Spit(path_ + ".lsn", side);
  std::unique_ptr<Wal> w;
  EXPECT_TRUE(Wal::Open(path_, Opts(), &w).IsCorruption());
  Spit(path_ + ".lsn", "short");
  EXPECT_TRUE(Wal::Open(path_, Opts(), &w).IsCorruption());
}

TEST_F(WalTest, AdvanceLsn) {
  auto w = OpenWal();
  w->AdvanceLsn(100);
  EXPECT_EQ(Put(w.get(), "r"), 101u);
  w->AdvanceLsn(50);  // never goes back
  EXPECT_EQ(Put(w.get(), "r"), 102u);
}

// Many threads: every record lands once, applies run one at a time in LSN
// order, each caller sees its own LSN, and each thread's records keep its order.
// Commits with a prepare step: prepare runs before apply for the same LSN,
// never at the same time as another prepare or apply, and only when the
// pipeline is otherwise idle; the record is in the file (written) when it
// runs; every prepared commit is applied (nothing fails here).
TEST_F(WalTest, PrepareRunsBeforeApplyAndNeverOverlapsOtherCallbacks) {
  for (Durability d : {Durability::kFsync, Durability::kBatch, Durability::kNone}) {
    SCOPED_TRACE(static_cast<int>(d));
    RemoveAll(path_).ok();
    auto w = OpenWal(Opts(d));
    constexpr int kThreads = 6, kPer = 200;
    std::atomic<int> in_cb{0};
    std::atomic<bool> overlap{false};
    std::atomic<int> prepared{0}, aborted{0}, bad_order{0}, failures{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t) {
      ts.emplace_back([&] {
        for (int i = 0; i < kPer; ++i) {
          uint64_t prep_lsn = 0, apply_lsn = 0;
          const std::function<void(uint64_t)> apply = [&](uint64_t lsn) {
            if (in_cb.fetch_add(1) != 0) overlap = true;
            apply_lsn = lsn;
            in_cb.fetch_sub(1);
          };
          const std::string body = Body(i, 100);
          const std::string_view parts[] = {body};
          Status s = w->Commit(
              1, parts, apply,
              [&](uint64_t lsn) {
                if (in_cb.fetch_add(1) != 0) overlap = true;
                prep_lsn = lsn;
                if (apply_lsn != 0) bad_order++;
                prepared++;
                in_cb.fetch_sub(1);
              },
              [&] { aborted++; });
          if (!s.ok() || apply_lsn == 0) failures++;
          if (prep_lsn != 0 && prep_lsn != apply_lsn) bad_order++;
        }
      });
    }
    for (auto& th : ts) th.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(bad_order.load(), 0);
    EXPECT_EQ(aborted.load(), 0);
    EXPECT_FALSE(overlap.load());
    EXPECT_GT(prepared.load(), 0);
  }
  // One writer: its commits are always alone in the pipeline, so always
  // prepared. Bodies in parts (empty ones too) are logged concatenated.
  RemoveAll(path_).ok();
  auto w = OpenWal();
  int prepared = 0;
  std::vector<std::string> want;
  for (int i = 0; i < 20; ++i) {
    bool applied = false;
    const std::string a = Body(i, i), b = Body(i + 100, 3 * i);
    const std::string_view parts[] = {a, "", b, std::string_view(a).substr(0, i / 2)};
    want.push_back(a + b + a.substr(0, i / 2));
    ASSERT_TRUE(w->Commit(
                     1, parts, [&](uint64_t) { applied = true; },
                     [&](uint64_t lsn) {
                       EXPECT_FALSE(applied);
                       EXPECT_EQ(lsn, static_cast<uint64_t>(i + 1));
                       prepared++;
                     },
                     [] { ADD_FAILURE() << "aborted"; })
                    .ok());
    EXPECT_TRUE(applied);
  }
  EXPECT_EQ(prepared, 20);
  w.reset();
  ReadResult r = ReadBoth(path_);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_EQ(r.recs.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(r.recs[i].body, want[i]) << i;
}

// The upsert body in parts (what Collection::Upsert logs, the vectors
// straight from the caller) is the same bytes as the body in one piece.
TEST(WalCodec, UpsertPartsConcatenateToTheBody) {
  for (uint32_t n : {0u, 1u, 3u, 10u}) {
    SCOPED_TRACE(n);
    std::vector<Uuid> ids(n);
    std::vector<std::string> payloads(n);
    std::vector<float> vecs(n * 5);
    for (uint32_t i = 0; i < n; ++i) {
      ids[i].bytes[0] = static_cast<uint8_t>(i + 1);
      payloads[i] = i % 2 ? "" : std::string(i + 1, 'p');
      for (int d = 0; d < 5; ++d) vecs[i * 5 + d] = float(i) * 0.5f + float(d);
    }
    std::string body, head, tail;
    std::string_view mid;
    EncodeUpsert(ids, vecs.data(), 5, payloads, &body);
    EncodeUpsertParts(ids, vecs.data(), 5, payloads, &head, &mid, &tail);
    EXPECT_EQ(head + std::string(mid) + tail, body);
    EXPECT_EQ(mid.data(), reinterpret_cast<const char*>(vecs.data()));
    EXPECT_EQ(body.size() % 4, 0u);
  }
}

TEST_F(WalTest, GroupCommitFromManyThreads) {
  for (Durability d : {Durability::kFsync, Durability::kBatch, Durability::kNone}) {
    SCOPED_TRACE(static_cast<int>(d));
    RemoveAll(path_).ok();
    auto w = OpenWal(Opts(d));
    constexpr int kThreads = 8, kPer = 300;
    std::vector<uint64_t> applied;
    std::atomic<int> in_apply{0};
    std::atomic<bool> overlap{false};
    std::vector<std::vector<uint64_t>> mine(kThreads);
    std::atomic<int> failures{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < kPer; ++i) {
          std::string body = std::to_string(t) + ":" + std::to_string(i) + ":" +
                             std::string((t * 37 + i) % 300, 'p');
          uint64_t got = 0;
          Status s = w->Commit(static_cast<uint8_t>(t + 1), body, [&](uint64_t lsn) {
            if (in_apply.fetch_add(1) != 0) overlap = true;
            applied.push_back(lsn);  // safe only because applies never overlap
            got = lsn;
            in_apply.fetch_sub(1);
          });
          if (!s.ok() || got == 0) failures++;
          mine[t].push_back(got);
        }
      });
    }
    for (auto& th : ts) th.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_FALSE(overlap.load());
    ASSERT_EQ(applied.size(), size_t(kThreads * kPer));
    for (size_t i = 0; i < applied.size(); ++i) ASSERT_EQ(applied[i], i + 1);
    ASSERT_TRUE(w->Sync().ok());
    w.reset();
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.ok());
    ASSERT_EQ(r.recs.size(), size_t(kThreads * kPer));
    std::map<uint64_t, const Rec*> by_lsn;
    for (const Rec& rec : r.recs) by_lsn[rec.lsn] = &rec;
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kPer; ++i) {
        const Rec* rec = by_lsn.at(mine[t][i]);
        EXPECT_EQ(rec->op, t + 1);
        EXPECT_EQ(rec->body.substr(0, rec->body.find(':', rec->body.find(':') + 1)),
                  std::to_string(t) + ":" + std::to_string(i));
        if (i > 0) {
          EXPECT_LT(mine[t][i - 1], mine[t][i]);
        }
      }
    }
  }
}

TEST_F(WalTest, MmapAndReadPathsGiveTheSameRecords) {
  WriteRecords({10, 2000, 0, 5000, 17});
  ReadResult a = ReadAll(path_, kMmapAlways);
  ReadResult b = ReadAll(path_, kMmapNever);
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  EXPECT_TRUE(a.stats.used_mmap);
  EXPECT_FALSE(b.stats.used_mmap);
  EXPECT_TRUE(a.recs == b.recs);
  ASSERT_EQ(a.recs.size(), 5u);
  // A file below the threshold uses read(2) even with the default options.
  RemoveAll(path_).ok();
  WriteRecords({10});
  ReadResult c = ReadAll(path_, kMmapAlways);
  EXPECT_FALSE(c.stats.used_mmap);
  EXPECT_EQ(c.recs.size(), 1u);
}

TEST_F(WalTest, DurabilityModesAllPersistAndApply) {
  for (Durability d : {Durability::kFsync, Durability::kBatch, Durability::kNone}) {
    RemoveAll(path_).ok();
    WalOptions o = Opts(d);
    o.batch_interval_ms = 2;
    {
      auto w = OpenWal(o);
      for (int i = 1; i <= 50; ++i) EXPECT_EQ(Put(w.get(), Body(i, 100)), uint64_t(i));
      // Written records are visible to readers at once in every mode.
      EXPECT_EQ(ReadAll(path_, kMmapAlways).recs.size(), 50u);
      if (d == Durability::kBatch) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      EXPECT_TRUE(w->Sync().ok());
      EXPECT_TRUE(w->Sync().ok());  // nothing pending
    }
    ReadResult r = ReadBoth(path_);
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(r.recs.size(), 50u);
  }
}

TEST_F(WalTest, TruncateLeavesEmptyFileAndResetsStats) {
  auto w = OpenWal();
  WalStats s0 = w->Stats();
  EXPECT_FALSE(s0.last_truncate_ns.has_value());
  for (int i = 0; i < 20; ++i) Put(w.get(), Body(i, 500));
  WalStats s1 = w->Stats();
  EXPECT_EQ(s1.size_bytes, 20 * (500 + kWalHeaderSize));
  // The records' bytes in the file (preallocated zeros follow them).
  EXPECT_EQ(s1.size_bytes, ReadBoth(path_).stats.valid_bytes);
  EXPECT_GE(SizeOf(path_), s1.size_bytes);
  EXPECT_EQ(s1.bytes_since_truncate, s1.size_bytes);
  EXPECT_EQ(s1.last_lsn, 20u);
  EXPECT_FALSE(s1.last_truncate_ns.has_value());

  ASSERT_TRUE(w->Exclusive([&] { return w->Truncate(); }).ok());
  EXPECT_EQ(SizeOf(path_), 0u);
  WalStats s2 = w->Stats();
  EXPECT_EQ(s2.size_bytes, 0u);
  EXPECT_EQ(s2.bytes_since_truncate, 0u);
  EXPECT_EQ(s2.last_lsn, 20u);
  ASSERT_TRUE(s2.last_truncate_ns.has_value());
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  EXPECT_LE(*s2.last_truncate_ns, now);
  EXPECT_GT(*s2.last_truncate_ns, now - int64_t{60} * 1000000000);

  Put(w.get(), "abc");
  WalStats s3 = w->Stats();
  EXPECT_EQ(s3.bytes_since_truncate, kWalHeaderSize + 3);
  EXPECT_EQ(s3.size_bytes, kWalHeaderSize + 3);
  EXPECT_EQ(s3.last_lsn, 21u);
  w.reset();
  // bytes_since_truncate counts from Open in a new process.
  w = OpenWal();
  EXPECT_EQ(w->Stats().bytes_since_truncate, 0u);
  EXPECT_EQ(w->Stats().size_bytes, kWalHeaderSize + 3);
  EXPECT_FALSE(w->Stats().last_truncate_ns.has_value());
}

struct Captured {
  std::mutex mu;
  std::vector<std::tuple<int, std::string, std::string, std::string>> events;
  static void Cb(void* user, int level, const char* target, const char* event, const char* fields) {
    auto* c = static_cast<Captured*>(user);
    std::lock_guard<std::mutex> l(c->mu);
    c->events.emplace_back(level, target, event, fields);
  }
  int Count(const std::string& ev) {
    std::lock_guard<std::mutex> l(mu);
    int n = 0;
    for (auto& e : events) n += std::get<2>(e) == ev;
    return n;
  }
};

TEST_F(WalTest, LogsGrowthAndTruncation) {
  Captured cap;
  log::SetCallback(&Captured::Cb, &cap, log::Level::kDebug);
  WalOptions o = Opts();
  o.growth_step = 4096;
  o.collection = "docs";
  {
    auto w = OpenWal(o);
    for (int i = 0; i < 40; ++i) Put(w.get(), std::string(1000 - kWalHeaderSize, 'g'));
    // 40000 bytes: steps at 4096, 8192, ..., 36864 -> 9 events. Record
    // bytes only: the file also holds at least 256 KiB of preallocated zeros.
    EXPECT_EQ(cap.Count("wal_growth"), 9);
    EXPECT_GE(SizeOf(path_), 256u << 10);
    ASSERT_TRUE(w->Exclusive([&] { return w->Truncate(); }).ok());
    EXPECT_EQ(cap.Count("wal_truncated"), 1);
    for (int i = 0; i < 5; ++i) Put(w.get(), std::string(1000 - kWalHeaderSize, 'g'));
    EXPECT_EQ(cap.Count("wal_growth"), 10);  // counting restarts after truncation
  }
  log::SetCallback(nullptr, nullptr, log::Level::kInfo);
  for (auto& [level, target, event, fields] : cap.events) {
    EXPECT_EQ(target, "aidb::storage");
    EXPECT_NE(fields.find("collection=docs"), std::string::npos) << fields;
    if (event == "wal_truncated") {
      EXPECT_NE(fields.find("size_before=40000"), std::string::npos) << fields;
      EXPECT_NE(fields.find("last_lsn=40"), std::string::npos) << fields;
    }
  }
  bool saw_first = false;
  for (auto& e : cap.events) {
    if (std::get<2>(e) == "wal_growth" &&
        std::get<3>(e).find("size_bytes=5000") != std::string::npos)
      saw_first = true;
  }
  EXPECT_TRUE(saw_first);
}

TEST_F(WalTest, DefaultGrowthStepIs64MiB) {
  EXPECT_EQ(WalOptions().growth_step, 64ull << 20);
  EXPECT_EQ(WalOptions().mmap_threshold, 1ull << 20);
  EXPECT_EQ(WalOptions().durability, Durability::kFsync);
}

TEST_F(WalTest, ExclusiveHoldsOffCommits) {
  auto w = OpenWal();
  Put(w.get(), "a");
  std::atomic<bool> inside{false}, entered{false};
  std::atomic<bool> applied_inside{false};
  std::thread writer;
  Status s = w->Exclusive([&] {
    inside = true;
    writer = std::thread([&] {
      entered = true;
      Status c = w->Commit(1, "b", [&](uint64_t) { applied_inside = inside.load(); });
      EXPECT_TRUE(c.ok());
    });
    while (!entered) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    inside = false;
    return Status::OK();
  });
  writer.join();
  EXPECT_TRUE(s.ok());
  EXPECT_FALSE(applied_inside.load());
  EXPECT_EQ(w->last_lsn(), 2u);
  // Exclusive returns fn's status.
  EXPECT_TRUE(w->Exclusive([] { return Status::Internal("x"); }).code() == Status::Code::kInternal);
}

// Read (the change feed) runs beside writers and sees a clean prefix.
TEST_F(WalTest, ReadWhileCommitting) {
  auto w = OpenWal(Opts(Durability::kNone));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 3000; ++i) Put(w.get(), Body(i, i % 500));
    stop = true;
  });
  int reads = 0;
  while (!stop || reads < 2) {
    uint64_t prev = 0;
    WalReadStats st;
    Status s = w->Read(
        [&](const WalRecord& r) {
          EXPECT_EQ(r.lsn, prev + 1);
          prev = r.lsn;
          return Status::OK();
        },
        &st);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_FALSE(st.torn_tail);
    reads++;
  }
  writer.join();
  WalReadStats st;
  ASSERT_TRUE(w->Read([](const WalRecord&) { return Status::OK(); }, &st).ok());
  EXPECT_EQ(st.records, 3000u);
}

TEST_F(WalTest, ApplyExceptionBecomesAnError) {
  auto w = OpenWal();
  Status s = w->Commit(1, "x", [](uint64_t) { throw std::runtime_error("boom"); });
  EXPECT_EQ(s.code(), Status::Code::kInternal);
  EXPECT_NE(s.message().find("boom"), std::string::npos);
  EXPECT_EQ(Put(w.get(), "y"), 2u);
}

// Under concurrency a group's apply callbacks may run on another writer's
// thread (the one that finished the sync or the previous apply applies every
// ready group in order). Each caller still gets its own callback's outcome,
// after its callback ran, and never another writer's.
TEST_F(WalTest, EachCallerGetsItsOwnApplyOutcome) {
  for (Durability d : {Durability::kFsync, Durability::kNone}) {
    SCOPED_TRACE(static_cast<int>(d));
    RemoveAll(path_).ok();
    auto w = OpenWal(Opts(d));
    constexpr int kThreads = 8, kPer = 150;
    std::atomic<int> wrong{0}, foreign{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < kPer; ++i) {
          const bool throws = (t + i) % 3 == 0;
          bool ran = false;
          const std::thread::id caller = std::this_thread::get_id();
          Status s = w->Commit(1, Body(t * 1000 + i, 20), [&](uint64_t) {
            ran = true;
            if (std::this_thread::get_id() != caller) foreign++;
            if (throws) throw std::runtime_error("apply " + std::to_string(t));
          });
          if (!ran || s.ok() == throws) wrong++;
          if (throws && s.message().find("apply " + std::to_string(t)) == std::string::npos) {
            wrong++;
          }
        }
      });
    }
    for (auto& th : ts) th.join();
    EXPECT_EQ(wrong.load(), 0);
    // foreign > 0 is likely but timing-dependent; it is only reported.
    std::printf("applies on another writer's thread: %d of %d\n", foreign.load(), kThreads * kPer);
  }
}

// After a burst of concurrent writers, a sync gathers for writers that no
// longer come (it gives up after a share of a sync and lowers its estimate):
// a writer left alone keeps committing, in order, and every record is there.
TEST_F(WalTest, LoneWriterAfterABurstKeepsCommitting) {
  auto w = OpenWal(Opts(Durability::kFsync));
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        if (!w->Commit(1, Body(t * 100 + i, 50), [](uint64_t) {}).ok()) failures++;
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(failures.load(), 0);
  uint64_t last = w->last_lsn();
  for (int i = 0; i < 30; ++i) {
    uint64_t got = 0;
    ASSERT_TRUE(w->Commit(2, Body(5000 + i, 30), [&](uint64_t lsn) { got = lsn; }).ok());
    EXPECT_EQ(got, last + 1);
    last = got;
  }
  w.reset();
  ReadResult r = ReadBoth(path_);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_EQ(r.recs.size(), 8u * 40 + 30);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(r.recs[8 * 40 + i].body, Body(5000 + i, 30));
  }
}

// A writer process SIGKILLed at random moments, many times: every
// acknowledged record (fsync mode) is found afterwards, each writer's records
// form a gapless prefix, and the file never reads as corrupt.
TEST_F(WalTest, SigkillDuringGroupCommitLosesNoAcknowledgedRecord) {
  std::mt19937 rng(42);
  std::map<uint64_t, uint64_t> acked;  // writer id -> highest acknowledged seq + 1
  int torn = 0;
  uint64_t records = 0;
  for (int round = 0; round < 20; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      std::unique_ptr<Wal> w;
      if (!Wal::Open(path_, Opts(), &w).ok()) _exit(2);
      if (!w->Replay([](const WalRecord&) { return Status::OK(); }, nullptr).ok()) _exit(3);
      std::vector<std::thread> ts;
      for (int t = 0; t < 4; ++t) {
        ts.emplace_back([&, t] {
          uint64_t id = uint64_t(round) * 16 + t;
          for (uint64_t seq = 0;; ++seq) {
            // Mostly small records, some of 4 MiB so kills land inside writes.
            size_t len = seq % 4 == 3 ? (4u << 20) : 16 + (seq * 977 + t * 131) % 20000;
            std::string body(len, 'k');
            std::memcpy(&body[0], &id, 8);
            std::memcpy(&body[8], &seq, 8);
            if (!w->Commit(1, body, [](uint64_t) {}).ok()) _exit(4);
            uint64_t msg[2] = {id, seq};
            if (write(fds[1], msg, sizeof msg) != sizeof msg) _exit(5);
          }
        });
      }
      for (auto& th : ts) th.join();
      _exit(0);
    }
    close(fds[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 40));
    kill(pid, SIGKILL);
    int wst = 0;
    waitpid(pid, &wst, 0);
    ASSERT_TRUE(WIFSIGNALED(wst)) << "child exited early with " << WEXITSTATUS(wst);
    uint64_t msg[2];
    while (read(fds[0], msg, sizeof msg) == sizeof msg)
      acked[msg[0]] = std::max(acked[msg[0]], msg[1] + 1);
    close(fds[0]);

    std::map<uint64_t, uint64_t> found;  // writer id -> next expected seq
    uint64_t prev_lsn = 0;
    WalReadStats st;
    Status s = ReadWal(
        path_, kMmapAlways,
        [&](const WalRecord& r) {
          uint64_t id, seq;
          std::memcpy(&id, r.body.data(), 8);
          std::memcpy(&seq, r.body.data() + 8, 8);
          EXPECT_EQ(seq, found[id]) << "gap in writer " << id;
          found[id] = seq + 1;
          EXPECT_GT(r.lsn, prev_lsn);
          prev_lsn = r.lsn;
          return Status::OK();
        },
        &st);
    ASSERT_TRUE(s.ok()) << "round " << round << ": " << s.ToString();
    torn += st.torn_tail;
    records = st.records;
    for (auto& [id, n] : acked) EXPECT_GE(found[id], n) << "writer " << id << " lost records";
  }
  EXPECT_GT(acked.size(), 0u);
  RecordProperty("torn_tails", torn);
  RecordProperty("records", static_cast<int>(records));
}

// A small tmpfs that fills up: the failing Commit returns IOError, its apply
// never runs, its bytes are cut off, and the WAL keeps working afterwards.
class WalFullDiskTest : public WalTest {
 protected:
  void SetUp() override {
    WalTest::SetUp();
    mnt_ = dir_ + "/mnt";
    ASSERT_TRUE(CreateDirs(mnt_).ok());
    if (mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=1m") != 0) {
      mnt_.clear();
      GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << strerror(errno);
    }
    path_ = mnt_ + "/wal.log";
  }
  void TearDown() override {
    if (!mnt_.empty()) umount(mnt_.c_str());
    WalTest::TearDown();
  }
  std::string mnt_;
};

TEST_F(WalFullDiskTest, WriteFailureReturnsIOErrorAndWalStaysUsable) {
  // A filler takes most of the space so the WAL hits ENOSPC quickly.
  Spit(mnt_ + "/filler", std::string(600 << 10, 'f'));
  auto w = OpenWal();
  const std::string body(100 << 10, 'w');
  uint64_t ok_count = 0;
  Status s;
  uint64_t failed_apply = 0;
  for (int i = 0; i < 20; ++i) {
    uint64_t size_before = w->Stats().size_bytes;
    s = w->Commit(1, body, [&](uint64_t lsn) { failed_apply = lsn; });
    if (!s.ok()) {
      EXPECT_EQ(w->Stats().size_bytes, size_before);
      EXPECT_EQ(SizeOf(path_), size_before);  // the partial write was cut off
      break;
    }
    ok_count++;
    failed_apply = 0;
  }
  ASSERT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.message().find("No space"), std::string::npos) << s.message();
  EXPECT_EQ(failed_apply, 0u);
  EXPECT_GT(ok_count, 0u);
  EXPECT_EQ(w->last_lsn(), ok_count);

  ASSERT_EQ(unlink((mnt_ + "/filler").c_str()), 0);
  uint64_t lsn = Put(w.get(), "after");
  EXPECT_EQ(lsn, ok_count + 2);  // the failed record's LSN is not reused
  w.reset();
  ReadResult r = ReadBoth(path_);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_FALSE(r.stats.torn_tail);
  ASSERT_EQ(r.recs.size(), ok_count + 1);
  EXPECT_EQ(r.recs.back().body, "after");
  EXPECT_EQ(r.recs.back().lsn, ok_count + 2);
}

TEST_F(WalFullDiskTest, ConcurrentGroupFailureFailsEveryCallerCleanly) {
  Spit(mnt_ + "/filler", std::string(300 << 10, 'f'));
  auto w = OpenWal();
  std::mutex mu;
  std::vector<uint64_t> applied;
  std::atomic<int> ok{0}, io{0}, other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        std::string body(60 << 10, 'c');
        bool applied_here = false;
        Status s = w->Commit(1, body, [&](uint64_t lsn) {
          std::lock_guard<std::mutex> l(mu);
          applied.push_back(lsn);
          applied_here = true;
        });
        if (s.ok()) {
          ok++;
          EXPECT_TRUE(applied_here);
        } else if (s.IsIOError()) {
          io++;
          EXPECT_FALSE(applied_here);
        } else {
          other++;
        }
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_GT(io.load(), 0);
  EXPECT_EQ(other.load(), 0);
  ASSERT_EQ(applied.size(), size_t(ok.load()));
  for (size_t i = 1; i < applied.size(); ++i) EXPECT_LT(applied[i - 1], applied[i]);
  EXPECT_EQ(SizeOf(path_), w->Stats().size_bytes);
  ASSERT_EQ(unlink((mnt_ + "/filler").c_str()), 0);
  Put(w.get(), "tail");
  w.reset();
  ReadResult r = ReadBoth(path_);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_FALSE(r.stats.torn_tail);
  ASSERT_EQ(r.recs.size(), applied.size() + 1);
  for (size_t i = 0; i < applied.size(); ++i) EXPECT_EQ(r.recs[i].lsn, applied[i]);
}

}  // namespace
}  // namespace aidb::storage
