// engine::Collection on its own: the write path through the WAL, recovery,
// snapshots through storage, the change-feed iterator, batch search.
#include "engine/collection.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "core/coding.h"
#include "storage/crc32c.h"
#include "storage/file.h"
#include "storage/snapshot.h"
#include "temp_dir.h"

namespace aidb::engine {
namespace {

std::string Id(int i) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "00000000-0000-4000-8000-%012d", i);
  return buf;
}

std::vector<float> Vec(int i, uint32_t dim) {
  std::vector<float> v(dim);
  for (uint32_t j = 0; j < dim; ++j) v[j] = static_cast<float>((i * 7 + j * 13) % 31) - 15.f;
  return v;
}

CollectionOptions Options(IndexKind kind, uint32_t dim, const std::string& wal_path) {
  CollectionOptions o;
  o.config.name = "c";
  o.config.index.dim = dim;
  o.config.index.metric = Metric::kEuclidean;
  o.config.index.kind = kind;
  o.wal_path = wal_path;
  return o;
}

std::shared_ptr<Collection> Open(const CollectionOptions& o) {
  std::shared_ptr<Collection> c;
  Status s = Collection::Open(o, &c);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return c;
}

Status Put(Collection& c, int i, uint32_t dim, const char* payload = nullptr) {
  const std::string id = Id(i);
  const char* ids[] = {id.c_str()};
  std::vector<float> v = Vec(i, dim);
  std::string_view p = payload ? std::string_view(payload) : std::string_view();
  return c.Upsert(1, ids, v.data(), dim, payload ? &p : nullptr);
}

std::vector<std::string> TopIds(const Collection& c, int query, uint32_t dim, uint32_t k) {
  SearchRequest req;
  req.top_k = k;
  std::vector<SearchHit> hits;
  std::vector<float> q = Vec(query, dim);
  EXPECT_TRUE(c.Search(q.data(), dim, req, &hits).ok());
  std::vector<std::string> ids;
  for (const SearchHit& h : hits) ids.push_back(h.id.ToString() + " " + h.payload);
  return ids;
}

// The distance a search must answer for `metric` (lower is better): 1 - cosine
// similarity, the L2 distance, the negated dot product.
double WantDistance(Metric metric, const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0, d2 = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += double(a[i]) * b[i];
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
    d2 += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  }
  switch (metric) {
    case Metric::kCosine: return 1 - dot / std::sqrt(na * nb);
    case Metric::kEuclidean: return std::sqrt(d2);
    case Metric::kDot: break;
  }
  return -dot;
}

// Upsert checks every component of a batch for NaN and +-Inf in one pass,
// and on failure names the first offending point and component; finite
// extremes (-0, denormals, FLT_MAX) pass.
TEST(CollectionTest, UpsertBatchRejectsNonFiniteComponentsAndNamesThem) {
  aidbtest::TempDir tmp;
  constexpr uint32_t dim = 37;  // not a multiple of any vector width
  auto c = Open(Options(IndexKind::kFlat, dim, tmp / "wal.log"));
  constexpr int n = 9;
  std::vector<std::string> ids;
  std::vector<const char*> id_ptrs;
  std::vector<float> vecs;
  for (int i = 0; i < n; ++i) {
    ids.push_back(Id(i));
    std::vector<float> v = Vec(i, dim);
    vecs.insert(vecs.end(), v.begin(), v.end());
  }
  for (const std::string& s : ids) id_ptrs.push_back(s.c_str());
  const float bads[] = {
      std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
      -std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::signaling_NaN()};
  for (float bad : bads) {
    for (auto [point, comp] : {std::pair{0, 0}, std::pair{4, 17}, std::pair{8, 36}}) {
      std::vector<float> v = vecs;
      v[point * dim + comp] = bad;
      if (point > 0) v[(point + 1 < n ? point + 1 : 0) * dim + 3] = bad;  // a later one too
      Status s = c->Upsert(n, id_ptrs.data(), v.data(), dim, nullptr);
      ASSERT_TRUE(s.IsInvalidArgument()) << s.ToString();
      const int first_point = point > 0 && point + 1 >= n ? 0 : point;
      const int first_comp = first_point == point ? comp : 3;
      EXPECT_NE(s.message().find("component " + std::to_string(first_comp) + " is not finite"),
                std::string::npos)
          << s.message();
      EXPECT_NE(s.message().find("(point " + std::to_string(first_point) + ")"), std::string::npos)
          << s.message();
    }
  }
  EXPECT_EQ(c->Count(), 0u);
  std::vector<float> v = vecs;
  v[0] = -0.0f;
  v[1] = std::numeric_limits<float>::denorm_min();
  v[2] = std::numeric_limits<float>::max();
  v[3] = -std::numeric_limits<float>::max();
  ASSERT_TRUE(c->Upsert(n, id_ptrs.data(), v.data(), dim, nullptr).ok());
  EXPECT_EQ(c->Count(), static_cast<uint64_t>(n));
  // One point: the message has no "(point i)".
  v[dim - 1] = bads[0];
  Status s = c->Upsert(1, id_ptrs.data(), v.data(), dim, nullptr);
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("component 36 is not finite"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("(point"), std::string::npos) << s.message();
}

TEST(CollectionTest, WalReplayRebuildsTheState) {
  aidbtest::TempDir tmp;
  const auto opts = Options(IndexKind::kFlat, 4, tmp / "wal.log");
  {
    auto c = Open(opts);
    ASSERT_TRUE(Put(*c, 1, 4, R"({"a":1})").ok());
    ASSERT_TRUE(Put(*c, 2, 4).ok());
    ASSERT_TRUE(Put(*c, 3, 4).ok());
    ASSERT_TRUE(c->Delete(Id(2)).ok());
    EXPECT_EQ(c->WalStats().last_lsn, 4u);
  }
  auto c = Open(opts);
  EXPECT_EQ(c->Count(), 0u);  // nothing until recovery
  RecoverStats stats;
  ASSERT_TRUE(c->Recover(RecoverOptions{}, &stats).ok());
  EXPECT_EQ(stats.records_applied, 4u);
  EXPECT_EQ(stats.last_lsn, 4u);
  EXPECT_FALSE(stats.torn_tail);
  EXPECT_EQ(c->Count(), 2u);
  std::vector<float> v(4);
  std::string payload;
  bool has = false;
  ASSERT_TRUE(c->Get(Id(1), v.data(), 4, &payload, &has).ok());
  EXPECT_EQ(v, Vec(1, 4));
  EXPECT_TRUE(has);
  EXPECT_EQ(payload, R"({"a":1})");
  EXPECT_TRUE(c->Get(Id(2), v.data(), 4, &payload, &has).IsNotFound());
  // Writes continue after the replayed LSNs.
  ASSERT_TRUE(Put(*c, 4, 4).ok());
  EXPECT_EQ(c->WalStats().last_lsn, 5u);
}

// Upsert's payloads are canonicalised once, logged, and then moved (not
// copied) into the state: each point keeps its own payload, live and after
// replay, on both apply paths (with a WAL the index insert runs before the
// apply; without one a single apply does both), with a repeated id in a
// batch (the later one wins) and without a payload.
TEST(CollectionTest, BatchPayloadsReachTheStateAndTheLogIntact) {
  aidbtest::TempDir tmp;
  constexpr uint32_t kDim = 8;
  const std::vector<std::string> ids = {Id(1), Id(2), Id(3), Id(2), Id(4)};
  const std::vector<std::string> raw = {R"( { "a" : 1 } )", R"({"b":[1, 2]})", "", R"({"c":"x"})",
                                        R"({"d":{"e":null}})"};
  const std::vector<std::string> want = {R"({"a":1})", "", R"({"c":"x"})", R"({"d":{"e":null}})"};
  auto upsert = [&](Collection& c) {
    std::vector<const char*> id_ptrs;
    std::vector<std::string_view> payloads;
    std::vector<float> vecs;
    for (size_t i = 0; i < ids.size(); ++i) {
      id_ptrs.push_back(ids[i].c_str());
      // Point 2 (index 2) has no payload: a view without data.
      payloads.push_back(raw[i].empty() ? std::string_view() : std::string_view(raw[i]));
      std::vector<float> v = Vec(static_cast<int>(i), kDim);
      vecs.insert(vecs.end(), v.begin(), v.end());
    }
    return c.Upsert(ids.size(), id_ptrs.data(), vecs.data(), kDim, payloads.data());
  };
  auto check = [&](const Collection& c) {
    EXPECT_EQ(c.Count(), 4u);
    std::string payload;
    bool has = false;
    ASSERT_TRUE(c.Get(Id(1), nullptr, 0, &payload, &has).ok());
    EXPECT_EQ(payload, want[0]);
    ASSERT_TRUE(c.Get(Id(2), nullptr, 0, &payload, &has).ok());
    EXPECT_EQ(payload, R"({"c":"x"})");  // the later of the two in the batch
    std::vector<float> v(kDim);
    ASSERT_TRUE(c.Get(Id(2), v.data(), kDim, &payload, &has).ok());
    EXPECT_EQ(v, Vec(3, kDim));
    ASSERT_TRUE(c.Get(Id(3), nullptr, 0, &payload, &has).ok());
    EXPECT_FALSE(has);
    EXPECT_EQ(payload, "");
    ASSERT_TRUE(c.Get(Id(4), nullptr, 0, &payload, &has).ok());
    EXPECT_EQ(payload, want[3]);
  };
  for (storage::Durability d : {storage::Durability::kFsync, storage::Durability::kNone}) {
    SCOPED_TRACE(d == storage::Durability::kFsync ? "fsync" : "none");
    auto opts = Options(IndexKind::kFlat, kDim,
                        tmp / (d == storage::Durability::kFsync ? "fsync.log" : "none.log"));
    opts.wal.durability = d;
    {
      auto c = Open(opts);
      ASSERT_TRUE(upsert(*c).ok());
      check(*c);
    }
    auto c = Open(opts);
    ASSERT_TRUE(c->Recover(RecoverOptions{}, nullptr).ok());
    check(*c);
  }
  // No WAL: the apply runs at once.
  auto c = Open(Options(IndexKind::kFlat, kDim, ""));
  ASSERT_TRUE(upsert(*c).ok());
  check(*c);
}

// The id map (core/id_map.h) is keyed through the slot -> id array and
// slots are freed and reused: a long mix of batch upserts (repeated ids in
// a batch, with and without payloads), replacements and deletes must leave
// exactly the points and payloads of a plain map, live, after replaying the
// log, and after a snapshot round trip.
TEST(CollectionTest, UpsertDeleteChurnMatchesAPlainMap) {
  aidbtest::TempDir tmp;
  constexpr uint32_t kDim = 4;
  constexpr int kIds = 1500;
  std::map<int, std::pair<int, std::string>> want;  // id -> (vector seed, payload)
  uint64_t rng = 12345;
  auto next = [&rng](uint64_t n) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<int>((rng >> 33) % n);
  };
  auto check = [&](const Collection& c) {
    ASSERT_EQ(c.Count(), want.size());
    std::vector<float> v(kDim);
    for (int i = 0; i < kIds; ++i) {
      std::string payload;
      bool has = false;
      Status s = c.Get(Id(i), v.data(), kDim, &payload, &has);
      auto it = want.find(i);
      if (it == want.end()) {
        ASSERT_TRUE(s.IsNotFound()) << i;
        continue;
      }
      ASSERT_TRUE(s.ok()) << i << ": " << s.ToString();
      ASSERT_EQ(v, Vec(it->second.first, kDim)) << i;
      ASSERT_EQ(payload, it->second.second) << i;
      ASSERT_EQ(has, !it->second.second.empty()) << i;
    }
  };
  auto opts = Options(IndexKind::kFlat, kDim, tmp / "wal.log");
  opts.wal.durability = storage::Durability::kNone;
  {
    auto c = Open(opts);
    for (int round = 0; round < 400; ++round) {
      if (next(4) == 0) {
        const int id = next(kIds);
        Status s = c->Delete(Id(id));
        ASSERT_EQ(s.ok(), want.count(id) == 1) << s.ToString();
        want.erase(id);
        continue;
      }
      const int n = 1 + next(40);
      std::vector<std::string> ids, payloads;
      std::vector<std::string_view> views;
      std::vector<float> vecs;
      for (int j = 0; j < n; ++j) {
        const int id = next(kIds), seed = next(1000);
        ids.push_back(Id(id));
        payloads.push_back(next(3) == 0 ? "" : "{\"r\":" + std::to_string(round) + "}");
        const std::vector<float> v = Vec(seed, kDim);
        vecs.insert(vecs.end(), v.begin(), v.end());
        want[id] = {seed, payloads.back()};  // a later repeat in the batch wins
      }
      std::vector<const char*> id_ptrs;
      for (int j = 0; j < n; ++j) {
        id_ptrs.push_back(ids[j].c_str());
        views.push_back(payloads[j].empty() ? std::string_view() : std::string_view(payloads[j]));
      }
      ASSERT_TRUE(c->Upsert(n, id_ptrs.data(), vecs.data(), kDim, views.data()).ok());
    }
    ASSERT_GT(want.size(), 500u);
    check(*c);
    ASSERT_TRUE(c->SnapshotTo(tmp / "s").ok());
    auto loaded = Open(Options(IndexKind::kFlat, kDim, ""));
    ASSERT_TRUE(loaded->LoadSnapshot(tmp / "s").ok());
    check(*loaded);
    // Deletes after the snapshot go to the (truncated) log.
    for (int i = 0; i < kIds; i += 3) {
      if (want.erase(i) == 1) ASSERT_TRUE(c->Delete(Id(i)).ok());
    }
    check(*c);
  }
  auto c = Open(opts);
  ASSERT_TRUE(c->LoadSnapshot(tmp / "s").ok());
  ASSERT_TRUE(c->Recover(RecoverOptions{}, nullptr).ok());
  check(*c);
}

TEST(CollectionTest, RecoverToLsnStopsThere) {
  aidbtest::TempDir tmp;
  const auto opts = Options(IndexKind::kFlat, 4, tmp / "wal.log");
  {
    auto c = Open(opts);
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(Put(*c, i, 4).ok());
  }
  auto c = Open(opts);
  RecoverOptions ro;
  ro.target = RecoverTarget::kToLsn;
  ro.lsn = 3;
  RecoverStats stats;
  ASSERT_TRUE(c->Recover(ro, &stats).ok());
  EXPECT_EQ(stats.records_applied, 3u);
  EXPECT_EQ(stats.records_skipped, 2u);
  EXPECT_EQ(c->Count(), 3u);
}

class CollectionSnapshotTest : public ::testing::TestWithParam<IndexKind> {};
INSTANTIATE_TEST_SUITE_P(IndexKinds, CollectionSnapshotTest,
                         ::testing::Values(IndexKind::kFlat, IndexKind::kHnsw, IndexKind::kIvf));

TEST_P(CollectionSnapshotTest, SnapshotThenLoadGivesTheSameCollection) {
  aidbtest::TempDir tmp;
  const uint32_t dim = 8;
  auto c = Open(Options(GetParam(), dim, tmp / "wal.log"));
  for (int i = 1; i <= 300; ++i) {
    const std::string p = "{\"i\":" + std::to_string(i) + "}";
    ASSERT_TRUE(Put(*c, i, dim, i % 3 ? p.c_str() : nullptr).ok());
  }
  for (int i = 1; i <= 300; i += 7) ASSERT_TRUE(c->Delete(Id(i)).ok());
  const std::string snap = tmp / "c.aidbsnap";
  ASSERT_TRUE(c->SnapshotTo(snap).ok());
  EXPECT_EQ(c->WalStats().size_bytes, 0u);  // the snapshot covers the log

  SnapshotInfo info;
  ASSERT_TRUE(ReadSnapshotInfo(snap, &info).ok());
  EXPECT_EQ(info.count, c->Count());
  EXPECT_EQ(info.lsn, c->WalStats().last_lsn);
  EXPECT_EQ(info.config.index.kind, GetParam());
  EXPECT_EQ(info.config.index.dim, dim);

  auto loaded = Open(Options(GetParam(), dim, ""));
  ASSERT_TRUE(loaded->LoadSnapshot(snap).ok());
  EXPECT_EQ(loaded->Count(), c->Count());
  for (int q = 0; q < 20; ++q) EXPECT_EQ(TopIds(*loaded, q, dim, 5), TopIds(*c, q, dim, 5)) << q;
  std::string payload;
  bool has = false;
  std::vector<float> v(dim);
  ASSERT_TRUE(loaded->Get(Id(2), v.data(), dim, &payload, &has).ok());
  EXPECT_EQ(payload, "{\"i\":2}");
  EXPECT_EQ(v, Vec(2, dim));
  ASSERT_TRUE(loaded->Get(Id(3), v.data(), dim, &payload, &has).ok());
  EXPECT_FALSE(has);
  EXPECT_TRUE(loaded->Get(Id(8), v.data(), dim, &payload, &has).IsNotFound());
  // The loaded collection takes writes (slots freed by deletes are reused).
  ASSERT_TRUE(Put(*loaded, 1000, dim).ok());
  EXPECT_EQ(loaded->Count(), c->Count() + 1);
}

// The nil UUID is a valid point id. Inside, a nil id also marks a free slot
// (slot_ids, the snapshot's id lists), so the point stored under it must
// still be searchable, survive a snapshot (which once failed to load:
// "point count mismatch") and WAL replay, and go away when deleted.
TEST_P(CollectionSnapshotTest, NilUuidIsAPointLikeAnyOther) {
  aidbtest::TempDir tmp;
  const uint32_t dim = 8;
  const std::string nil = "00000000-0000-0000-0000-000000000000";
  const CollectionOptions opts = Options(GetParam(), dim, tmp / "wal.log");
  const std::vector<float> nv = Vec(5, dim);
  auto nearest = [&](const Collection& c) {
    SearchRequest req;
    req.top_k = 3;
    std::vector<SearchHit> hits;
    EXPECT_TRUE(c.Search(nv.data(), dim, req, &hits).ok());
    return hits.empty() ? std::string() : hits[0].id.ToString();
  };
  auto check = [&](const Collection& c, size_t count) {
    EXPECT_EQ(c.Count(), count);
    EXPECT_EQ(nearest(c), nil);
    std::vector<float> v(dim);
    std::string payload;
    bool has = false;
    ASSERT_TRUE(c.Get(nil, v.data(), dim, &payload, &has).ok());
    EXPECT_EQ(v, nv);
    EXPECT_EQ(payload, R"({"nil":true})");
  };
  {
    auto c = Open(opts);
    for (int i = 1; i <= 200; ++i) {
      if (i % 31 != 5) ASSERT_TRUE(Put(*c, i, dim).ok());  // no other copy of nv
    }
    const char* ids[] = {nil.c_str()};
    const std::string_view p = R"({"nil":true})";
    ASSERT_TRUE(c->Upsert(1, ids, nv.data(), dim, &p).ok());
    check(*c, 194);
    // Replaced: still one point, found at its new slot.
    ASSERT_TRUE(c->Upsert(1, ids, nv.data(), dim, &p).ok());
    check(*c, 194);
  }
  {
    auto c = Open(opts);  // WAL replay
    RecoverStats stats;
    ASSERT_TRUE(c->Recover(RecoverOptions(), &stats).ok());
    check(*c, 194);
    ASSERT_TRUE(c->SnapshotTo(tmp / "s1").ok());
  }
  auto loaded = Open(Options(GetParam(), dim, ""));
  ASSERT_TRUE(loaded->LoadSnapshot(tmp / "s1").ok());
  check(*loaded, 194);
  ASSERT_TRUE(loaded->Delete(nil).ok());
  EXPECT_EQ(loaded->Count(), 193u);
  EXPECT_NE(nearest(*loaded), nil);
  ASSERT_TRUE(loaded->SnapshotTo(tmp / "s2").ok());
  auto again = Open(Options(GetParam(), dim, ""));
  ASSERT_TRUE(again->LoadSnapshot(tmp / "s2").ok());
  EXPECT_EQ(again->Count(), 193u);
  EXPECT_NE(nearest(*again), nil);
}

// Writes snapshot `src` again as AIDB 0.2.0 and earlier wrote it: without
// nilIdSlot. The capnp tool reads the field's value; in the root struct's
// data section (a Cap'n Proto message: segment table, then segment 0 whose
// first word points at the root) the field is stored XORed with its
// default, 0xffffffff, and becomes 0 there, the default ("none"). Then the
// CRC32Cs of the framing (storage/snapshot.h) are made again.
void WriteWithoutNilIdSlot(const std::string& src, const std::string& dst) {
  std::string bytes;
  ASSERT_TRUE(storage::ReadFile(src, &bytes).ok());
  constexpr size_t kHead = storage::kSnapshotHeaderSize;
  ASSERT_GT(bytes.size(), kHead + 16);
  ASSERT_TRUE(storage::AtomicWriteFile(dst + ".msg", bytes.substr(kHead)).ok());
  const std::string decode = std::string(AIDB_CAPNP_TOOL) + " decode " + AIDB_SNAPSHOT_SCHEMA +
                             " Snapshot <" + dst + ".msg >" + dst + ".txt";
  ASSERT_EQ(std::system(decode.c_str()), 0) << decode;
  std::string text;
  ASSERT_TRUE(storage::ReadFile(dst + ".txt", &text).ok());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text, m, std::regex("nilIdSlot = ([0-9]+)")));
  const uint32_t stored = ~static_cast<uint32_t>(std::stoul(m[1].str()));

  uint8_t* msg = reinterpret_cast<uint8_t*>(bytes.data()) + kHead;
  const size_t segments = DecodeFixed32(msg) + 1;
  uint8_t* seg0 = msg + (4 + 4 * segments + 7) / 8 * 8;
  const uint64_t root = DecodeFixed64(seg0);
  ASSERT_EQ(root & 3, 0u);  // a struct pointer
  const int64_t offset = static_cast<int32_t>(static_cast<uint32_t>(root)) >> 2;
  uint8_t* data = seg0 + 8 + offset * 8;
  const size_t data_bytes = ((root >> 32) & 0xffff) * 8;
  int found = 0;
  for (size_t at = 0; at + 4 <= data_bytes; at += 4) {
    if (DecodeFixed32(data + at) == stored) {
      EncodeFixed32(data + at, 0);
      ++found;
    }
  }
  ASSERT_EQ(found, 1);
  uint8_t* h = reinterpret_cast<uint8_t*>(bytes.data());
  EncodeFixed32(h + 24, crc32c::Value(msg, bytes.size() - kHead));
  EncodeFixed32(h + 12, crc32c::Extend(crc32c::Extend(0, h, 12), h + 16, 16));
  ASSERT_TRUE(storage::AtomicWriteFile(dst, bytes).ok());
  // The tool now reads the field's default.
  ASSERT_TRUE(storage::AtomicWriteFile(dst + ".msg", bytes.substr(kHead)).ok());
  ASSERT_EQ(std::system(decode.c_str()), 0) << decode;
  ASSERT_TRUE(storage::ReadFile(dst + ".txt", &text).ok());
  EXPECT_NE(text.find("nilIdSlot = 4294967295"), std::string::npos);
}

// Snapshots written before nilIdSlot existed count a point stored under the
// nil UUID but give it an all-zero id, like a free slot; they failed to load
// ("point count mismatch"). They load when the point's slot can be told:
// the only all-zero slot, the one the HNSW graph or a trained IVF list
// holds, or the only one with a payload. Otherwise the error says why.
TEST_P(CollectionSnapshotTest, SnapshotsFromBeforeNilIdSlotKeepTheirNilPoint) {
  const uint32_t dim = 8;
  const int n = 2100;  // IVF trains at 2048 points
  const std::string nil = "00000000-0000-0000-0000-000000000000";
  // Distinct vectors (Vec repeats every 31 ids, too many twins for HNSW).
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  std::vector<float> all((n + 1) * dim);
  for (float& x : all) x = uni(rng);
  const std::vector<float> nv(all.end() - dim, all.end());
  const bool index_knows = GetParam() != IndexKind::kFlat;
  struct Case {
    const char* name;
    bool free_slots;  // deletes and a replacement leave all-zero slots
    bool payload;     // the nil point has one
  };
  for (const Case& k : {Case{"alone", false, false}, Case{"with payload", true, true},
                        Case{"no payload", true, false}}) {
    SCOPED_TRACE(k.name);
    aidbtest::TempDir tmp;
    auto c = Open(Options(GetParam(), dim, ""));
    std::vector<std::string> ids;
    std::vector<const char*> id_ptrs;
    for (int i = 1; i <= n; ++i) ids.push_back(Id(i));
    for (const std::string& id : ids) id_ptrs.push_back(id.c_str());
    ASSERT_TRUE(c->Upsert(n, id_ptrs.data(), all.data(), dim, nullptr).ok());
    const char* nil_id[] = {nil.c_str()};
    const std::string_view p = R"({"nil":true})";
    const std::string_view* payload = k.payload ? &p : nullptr;
    ASSERT_TRUE(c->Upsert(1, nil_id, nv.data(), dim, payload).ok());
    if (k.free_slots) {
      ASSERT_TRUE(c->Upsert(1, nil_id, nv.data(), dim, payload).ok());  // frees its old slot
      for (int i : {1, 2, 3}) ASSERT_TRUE(c->Delete(Id(i)).ok());
    }
    const uint64_t count = c->Count();
    ASSERT_TRUE(c->SnapshotTo(tmp / "new").ok());
    WriteWithoutNilIdSlot(tmp / "new", tmp / "old");

    auto loaded = Open(Options(GetParam(), dim, ""));
    Status s = loaded->LoadSnapshot(tmp / "old");
    if (k.free_slots && !k.payload && !index_knows) {
      ASSERT_TRUE(s.IsCorruption()) << s.ToString();
      EXPECT_NE(s.message().find("holds a point stored under the nil UUID"), std::string::npos)
          << s.message();
      EXPECT_NE(
          s.message().find("from its 4 free slots (neither the index nor a payload marks it)"),
          std::string::npos)
          << s.message();
      continue;
    }
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(loaded->Count(), count);
    SearchRequest req;
    req.top_k = 1;
    std::vector<SearchHit> hits;
    ASSERT_TRUE(loaded->Search(nv.data(), dim, req, &hits).ok());
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].id.ToString(), nil);
    std::vector<float> v(dim);
    std::string got;
    bool has = false;
    ASSERT_TRUE(loaded->Get(nil, v.data(), dim, &got, &has).ok());
    EXPECT_EQ(v, nv);
    EXPECT_EQ(has, k.payload);
    if (k.payload) EXPECT_EQ(got, p);
    // Its next snapshot names the slot.
    ASSERT_TRUE(loaded->SnapshotTo(tmp / "again").ok());
    auto again = Open(Options(GetParam(), dim, ""));
    ASSERT_TRUE(again->LoadSnapshot(tmp / "again").ok());
    EXPECT_EQ(again->Count(), count);
  }
}

// Cosine: a stored vector searched for scores exactly 0 (the API's promise),
// also at 768 dimensions where 1 - dot left a few 1e-7, on every index kind
// and with the vectors on disk; a near-duplicate follows at a small positive
// distance, and results ascend.
TEST_P(CollectionSnapshotTest, CosineExactMatchScoresZero) {
  const uint32_t dim = 768;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<std::vector<float>> vs(400, std::vector<float>(dim));
  for (auto& v : vs) {
    for (float& x : v) x = nd(rng);
  }
  for (bool on_disk : {false, true}) {
    SCOPED_TRACE(on_disk ? "vectors on disk" : "vectors in RAM");
    aidbtest::TempDir tmp;
    CollectionOptions o = Options(GetParam(), dim, tmp / "wal.log");
    o.config.index.metric = Metric::kCosine;
    o.config.index.vectors_on_disk = on_disk;
    auto c = Open(o);
    std::vector<std::string> ids;
    std::vector<const char*> idp;
    for (int i = 0; i < 400; ++i) ids.push_back(Id(i + 1));
    for (auto& id : ids) idp.push_back(id.c_str());
    std::vector<float> flat;
    for (auto& v : vs) flat.insert(flat.end(), v.begin(), v.end());
    // Point 401 is point 7 nudged: a near-duplicate.
    std::vector<float> near = vs[6];
    near[0] += 1e-3f;
    const std::string near_id = Id(401);
    const char* nid[] = {near_id.c_str()};
    ASSERT_TRUE(c->Upsert(400, idp.data(), flat.data(), dim, nullptr).ok());
    ASSERT_TRUE(c->Upsert(1, nid, near.data(), dim, nullptr).ok());
    for (int qi = 0; qi < 400; ++qi) {
      SearchRequest req;
      req.top_k = 5;
      std::vector<SearchHit> hits;
      ASSERT_TRUE(c->Search(vs[qi].data(), dim, req, &hits).ok());
      ASSERT_EQ(hits.size(), 5u);
      EXPECT_EQ(hits[0].id.ToString(), ids[qi]);
      EXPECT_EQ(hits[0].score, 0.f) << qi;
      for (size_t j = 1; j < hits.size(); ++j) EXPECT_LE(hits[j - 1].score, hits[j].score);
      if (qi == 6) {
        EXPECT_EQ(hits[1].id.ToString(), near_id);
        EXPECT_GT(hits[1].score, 0.f);
        EXPECT_NEAR(hits[1].score, WantDistance(Metric::kCosine, near, vs[6]), 1e-8);
      }
    }
  }
}

TEST(CollectionTest, LoadSnapshotRejectsAnotherDimension) {
  aidbtest::TempDir tmp;
  auto c = Open(Options(IndexKind::kFlat, 4, ""));
  ASSERT_TRUE(Put(*c, 1, 4).ok());
  ASSERT_TRUE(c->SnapshotTo(tmp / "s").ok());
  auto other = Open(Options(IndexKind::kFlat, 5, ""));
  EXPECT_TRUE(other->LoadSnapshot(tmp / "s").IsDimensionMismatch());
  EXPECT_TRUE(other->LoadSnapshot(tmp / "missing").IsNotFound());
}

TEST(CollectionTest, WalIteratorReadsFromAnLsnAndNoticesTruncation) {
  aidbtest::TempDir tmp;
  auto c = Open(Options(IndexKind::kFlat, 4, tmp / "wal.log"));
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(Put(*c, i, 4).ok());

  std::unique_ptr<storage::WalIterator> it;
  ASSERT_TRUE(c->OpenWalIterator(2, &it).ok());
  std::vector<uint64_t> lsns;
  for (;;) {
    storage::WalRecord r;
    bool has = false;
    ASSERT_TRUE(it->Peek(&r, &has).ok());
    if (!has) break;
    EXPECT_EQ(r.op, 1);  // upsert
    EXPECT_FALSE(r.body.empty());
    lsns.push_back(r.lsn);
    it->Advance();
  }
  EXPECT_EQ(lsns, (std::vector<uint64_t>{2, 3}));

  ASSERT_TRUE(c->OpenWalIterator(1, &it).ok());
  ASSERT_TRUE(c->SnapshotTo(tmp / "s").ok());  // truncates the WAL
  ASSERT_TRUE(Put(*c, 4, 4).ok());             // and refills it
  storage::WalRecord r;
  bool has = false;
  EXPECT_TRUE(it->Peek(&r, &has).IsNotFound());

  auto mem = Open(Options(IndexKind::kFlat, 4, ""));
  ASSERT_TRUE(mem->OpenWalIterator(0, &it).ok());
  ASSERT_TRUE(it->Peek(&r, &has).ok());
  EXPECT_FALSE(has);  // in memory: no log
}

TEST(CollectionTest, SearchBatchOnThreadsMatchesSingleSearches) {
  const uint32_t dim = 16;
  auto c = Open(Options(IndexKind::kHnsw, dim, ""));
  for (int i = 1; i <= 500; ++i) ASSERT_TRUE(Put(*c, i, dim).ok());
  const size_t nq = 37;
  std::vector<float> queries;
  for (size_t q = 0; q < nq; ++q) {
    std::vector<float> v = Vec(static_cast<int>(q) * 3 + 1, dim);
    queries.insert(queries.end(), v.begin(), v.end());
  }
  SearchRequest req;
  req.top_k = 7;
  for (uint32_t threads : {1u, 3u, 0u}) {
    std::vector<std::vector<SearchHit>> batch;
    ASSERT_TRUE(c->SearchBatch(queries.data(), nq, dim, req, threads, &batch).ok());
    ASSERT_EQ(batch.size(), nq);
    for (size_t q = 0; q < nq; ++q) {
      std::vector<SearchHit> one;
      ASSERT_TRUE(c->Search(queries.data() + q * dim, dim, req, &one).ok());
      ASSERT_EQ(one.size(), batch[q].size());
      for (size_t j = 0; j < one.size(); ++j) {
        EXPECT_EQ(one[j].id, batch[q][j].id);
        EXPECT_EQ(one[j].score, batch[q][j].score);
        if (j > 0) {
          EXPECT_LE(batch[q][j - 1].score, batch[q][j].score);  // ascending
        }
      }
    }
  }
  std::vector<float> bad(queries);
  bad[dim + 2] = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::vector<SearchHit>> out;
  EXPECT_TRUE(c->SearchBatch(bad.data(), nq, dim, req, 3, &out).IsInvalidArgument());
}

// Every search path (flat, HNSW walk, exact scan, filtered, batch) answers
// distances in ascending order, equal to a brute-force computation.
TEST(CollectionTest, SearchAnswersAscendingDistancesOnEveryPath) {
  const uint32_t dim = 8;
  const int n = 300;
  std::unique_ptr<filter::Filter> even;
  ASSERT_TRUE(filter::Filter::Parse(R"({"even":true})", &even).ok());
  for (Metric metric : {Metric::kCosine, Metric::kEuclidean, Metric::kDot}) {
    for (IndexKind kind : {IndexKind::kFlat, IndexKind::kHnsw}) {
      SCOPED_TRACE(std::to_string(int(metric)) + "/" + std::to_string(int(kind)));
      CollectionOptions o = Options(kind, dim, "");
      o.config.index.metric = metric;
      auto c = Open(o);
      for (int i = 1; i <= n; ++i) {
        ASSERT_TRUE(Put(*c, i, dim, i % 2 == 0 ? R"({"even":true})" : R"({"even":false})").ok());
      }
      for (int variant = 0; variant < 3; ++variant) {  // plain, exact, filtered
        SearchRequest req;
        req.top_k = 10;
        req.exact = variant == 1;
        req.filter = variant == 2 ? even.get() : nullptr;
        for (int qi : {4, 77, 150}) {
          const std::vector<float> q = Vec(qi, dim);
          std::vector<SearchHit> hits;
          ASSERT_TRUE(c->Search(q.data(), dim, req, &hits).ok());
          ASSERT_EQ(hits.size(), 10u);
          // Brute force over the allowed points, best (lowest) first.
          std::vector<double> all;
          for (int i = 1; i <= n; ++i) {
            if (variant == 2 && i % 2 != 0) continue;
            all.push_back(WantDistance(metric, Vec(i, dim), q));
          }
          std::sort(all.begin(), all.end());
          for (size_t j = 0; j < hits.size(); ++j) {
            if (j > 0) {
              EXPECT_LE(hits[j - 1].score, hits[j].score) << j;
            }
            int id = std::stoi(hits[j].id.ToString().substr(24));
            EXPECT_NEAR(hits[j].score, WantDistance(metric, Vec(id, dim), q),
                        1e-4 * std::max(1.0, std::fabs(double(hits[j].score))));
            if (variant == 2) {
              EXPECT_EQ(id % 2, 0) << id;
            }
          }
          // The exact paths find the true nearest. Vec repeats every 31
          // points, so each query has stored copies of both parities: the
          // best hit of cosine and Euclidean is an exact match, at 0.
          if (kind == IndexKind::kFlat || req.exact) {
            EXPECT_NEAR(hits[0].score, all[0], 1e-4 * std::max(1.0, std::fabs(all[0])));
          }
          if (metric != Metric::kDot) {
            EXPECT_NEAR(hits[0].score, 0.f, 1e-6);
            EXPECT_FALSE(std::signbit(hits[0].score));
          }
        }
      }
      std::vector<float> qs;
      for (int qi : {4, 77}) {
        std::vector<float> v = Vec(qi, dim);
        qs.insert(qs.end(), v.begin(), v.end());
      }
      SearchRequest req;
      req.top_k = 5;
      std::vector<std::vector<SearchHit>> batch;
      ASSERT_TRUE(c->SearchBatch(qs.data(), 2, dim, req, 2, &batch).ok());
      for (size_t q = 0; q < 2; ++q) {
        ASSERT_EQ(batch[q].size(), 5u);
        for (size_t j = 1; j < 5; ++j) {
          EXPECT_LE(batch[q][j - 1].score, batch[q][j].score);
        }
      }
    }
  }
}

}  // namespace
}  // namespace aidb::engine
