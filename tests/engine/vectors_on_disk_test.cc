// vectors_on_disk (index/vector_file.h) and quantization: the same hits as
// with the vectors in RAM (flat, HNSW with the 8-bit and the float walk, IVF), the
// runbook's restore workflow (snapshot + WAL) with the vectors in a file, a
// vectors file that is deleted or truncated between runs, bad settings, and
// IVF retraining in the background while the file is written and searched,
// and a structural check that the floats stay out of anonymous memory.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/names.h"
#include "engine/collection.h"
#include "engine/config.h"
#include "engine/database.h"
#include "index/flat.h"
#include "index/hnsw.h"
#include "index/ivf.h"
#include "index/vector_file.h"
#include "sanitizers.h"
#include "temp_dir.h"
#include "test_data.h"

namespace aidb::engine {
namespace {

using index::Hit;
using index::testing::Clustered;

std::string Id(int i) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "00000000-0000-4000-8000-%012d", i);
  return buf;
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// kB of anonymous resident memory of this process (/proc/self/status).
long RssAnonKb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stol(line.substr(8));
  }
  return -1;
}

struct Kind {
  const char* name;
  IndexKind kind;
  Quantization quantization;
  uint32_t dim;
};

class SameHits : public ::testing::TestWithParam<Kind> {};

INSTANTIATE_TEST_SUITE_P(
    Indexes, SameHits,
    ::testing::Values(Kind{"flat", IndexKind::kFlat, Quantization::kSq8, 40},
                      Kind{"hnsw_sq8", IndexKind::kHnsw, Quantization::kSq8, 72},
                      Kind{"hnsw_none", IndexKind::kHnsw, Quantization::kNone, 72},
                      Kind{"hnsw_small_dim", IndexKind::kHnsw, Quantization::kSq8, 24},
                      Kind{"ivf", IndexKind::kIvf, Quantization::kSq8, 72}),
    [](const ::testing::TestParamInfo<Kind>& i) { return std::string(i.param.name); });

// The index alone, built the same way (one thread: the graph is
// deterministic) with the vectors in RAM and in a file: identical hits and
// scores, through inserts, updates, removals and compaction.
TEST_P(SameHits, WithAndWithoutVectorsOnDisk) {
  const Kind k = GetParam();
  aidbtest::TempDir tmp;
  const size_t n = 4000, nq = 60;
  auto data = Clustered(n + nq, k.dim, 20, 5, 0.5f);
  IndexConfig cfg = index::testing::Hnsw(k.dim, Metric::kEuclidean, 12, 60);
  cfg.kind = k.kind;
  cfg.quantization = k.quantization;
  std::unique_ptr<index::VectorIndex> ram, disk;
  ASSERT_TRUE(index::CreateIndex(cfg, &ram).ok());
  IndexConfig dcfg = cfg;
  dcfg.vectors_on_disk = true;
  const std::string vpath = tmp / "vectors.bin";
  ASSERT_TRUE(index::CreateIndex(dcfg, vpath, &disk).ok());
  if (k.kind == IndexKind::kHnsw) {
    auto* h = static_cast<index::HnswIndex*>(disk.get());
    EXPECT_EQ(h->Quantized(), false);
  }
  for (auto* idx : {ram.get(), disk.get()}) {
    std::vector<uint32_t> slots(n);
    ASSERT_TRUE(idx->AddBatch(data.data(), n, slots.data(), 1).ok());
    for (uint32_t s = 0; s < n; s += 9) idx->Remove(s);
    for (uint32_t s = 1; s < n; s += 17) {
      if (!idx->IsLive(s)) continue;
      ASSERT_TRUE(idx->Update(s, data.data() + static_cast<size_t>((s + 5) % n) * k.dim).ok());
    }
    ASSERT_TRUE(idx->Compact().ok());
    uint32_t slot;
    ASSERT_TRUE(idx->Add(data.data() + 3 * k.dim, &slot).ok());  // reuses a freed slot
  }
  if (k.kind == IndexKind::kHnsw) {
    auto* h = static_cast<index::HnswIndex*>(disk.get());
    EXPECT_EQ(h->Quantized(), k.quantization == Quantization::kSq8 && k.dim >= 64);
    EXPECT_GT(h->VectorFileBytes(), 0u);
    // The floats are not in the anonymous node storage.
    auto* r = static_cast<index::HnswIndex*>(ram.get());
    EXPECT_LE(h->MemoryBytes() + n * k.dim * sizeof(float) / 2, r->MemoryBytes());
  }
  if (k.kind == IndexKind::kIvf) {
    // Trained at min_train (inline), so the hits below come from the
    // partitions and the re-rank through the mapping, not an exact scan.
    auto* v = static_cast<index::IvfIndex*>(disk.get());
    auto* r = static_cast<index::IvfIndex*>(ram.get());
    EXPECT_TRUE(v->Trained());
    EXPECT_EQ(v->Nlist(), r->Nlist());
    EXPECT_GT(v->VectorFileBytes(), 0u);
    EXPECT_EQ(r->VectorFileBytes(), 0u);
    EXPECT_LE(v->MemoryBytes() + n * k.dim * sizeof(float) / 2, r->MemoryBytes());
  }
  EXPECT_GE(FileSize(vpath), n * k.dim * sizeof(float));
  std::vector<float> a(k.dim), b(k.dim);
  for (uint32_t s = 1; s < n; s += 7) {
    if (!ram->IsLive(s)) continue;
    ram->GetVector(s, a.data());
    disk->GetVector(s, b.data());
    ASSERT_EQ(a, b) << "slot " << s;
  }
  for (size_t q = 0; q < nq; ++q) {
    index::SearchParams p;
    p.k = 10;
    std::vector<Hit> hr, hd;
    ASSERT_TRUE(ram->Search(data.data() + (n + q) * k.dim, p, &hr).ok());
    ASSERT_TRUE(disk->Search(data.data() + (n + q) * k.dim, p, &hd).ok());
    ASSERT_EQ(hr.size(), hd.size());
    for (size_t i = 0; i < hr.size(); ++i) {
      EXPECT_EQ(hr[i].slot, hd[i].slot) << "query " << q << " hit " << i;
      EXPECT_EQ(hr[i].score, hd[i].score) << "query " << q << " hit " << i;
    }
  }
}

CollectionOptions DiskOptions(IndexKind kind, uint32_t dim, const std::string& wal_path) {
  CollectionOptions o;
  o.config.name = "od";
  o.config.index.dim = dim;
  o.config.index.metric = Metric::kEuclidean;
  o.config.index.kind = kind;
  o.config.index.hnsw.m = 12;
  o.config.index.hnsw.ef_construction = 60;
  o.config.index.vectors_on_disk = true;
  o.wal_path = wal_path;
  o.wal.durability = Durability::kNone;
  return o;
}

void UpsertRange(Collection& c, int from, int to, uint32_t dim, const std::vector<float>& data) {
  std::vector<std::string> ids;
  std::vector<const char*> ptrs;
  for (int i = from; i < to; ++i) ids.push_back(Id(i));
  for (auto& s : ids) ptrs.push_back(s.c_str());
  ASSERT_TRUE(
      c.Upsert(ids.size(), ptrs.data(), data.data() + static_cast<size_t>(from) * dim, dim, nullptr)
          .ok());
}

class RestoreOnDisk : public ::testing::TestWithParam<IndexKind> {};
INSTANTIATE_TEST_SUITE_P(AllKinds, RestoreOnDisk,
                         ::testing::Values(IndexKind::kFlat, IndexKind::kHnsw, IndexKind::kIvf));

// The runbook's restore workflow: checkpoint, more writes, then a fresh
// collection on the same WAL path loads the snapshot and replays the WAL;
// then the vectors file is deleted, and truncated, between runs: every open
// rebuilds it.
TEST_P(RestoreOnDisk, SnapshotPlusWalThenDamagedVectorsFile) {
  const uint32_t dim = 72;
  const int n = 3000, later = 800;
  aidbtest::TempDir tmp;
  const std::string wal = tmp / "od.wal", snap = tmp / "od.snap", vfile = wal + ".vectors";
  auto data = Clustered(n + later + 50, dim, 16, 9, 0.5f);
  CollectionOptions opts = DiskOptions(GetParam(), dim, wal);

  std::vector<std::vector<SearchHit>> expect;
  auto queries = [&](Collection& c) {
    std::vector<std::vector<SearchHit>> all;
    for (int q = 0; q < 20; ++q) {
      SearchRequest req;
      req.top_k = 10;
      req.exact = true;
      std::vector<SearchHit> hits;
      EXPECT_TRUE(
          c.Search(data.data() + static_cast<size_t>(n + later + q) * dim, dim, req, &hits).ok());
      all.push_back(hits);
    }
    return all;
  };
  auto same = [&](Collection& c, const char* what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(c.Count(), static_cast<uint64_t>(n + later - n / 10));
    auto got = queries(c);
    ASSERT_EQ(got.size(), expect.size());
    for (size_t q = 0; q < got.size(); ++q) {
      ASSERT_EQ(got[q].size(), expect[q].size());
      for (size_t i = 0; i < got[q].size(); ++i) {
        EXPECT_EQ(got[q][i].id, expect[q][i].id);
        EXPECT_EQ(got[q][i].score, expect[q][i].score);
      }
    }
    std::vector<float> v(dim);
    for (int i = 1; i < n + later; i += 37) {
      if (i % 10 == 0 && i < n) continue;
      ASSERT_TRUE(c.Get(Id(i), v.data(), dim, nullptr, nullptr).ok()) << i;
      const int src = i < n && i % 10 == 5 ? i + 1 : i;  // updated after the checkpoint
      ASSERT_EQ(0, std::memcmp(v.data(), data.data() + static_cast<size_t>(src) * dim,
                               dim * sizeof(float)))
          << "point " << i;
    }
    // Approximate search finds the exact hits too (HNSW, IVF: re-ranked floats).
    SearchRequest req;
    req.top_k = 10;
    std::vector<SearchHit> hits;
    ASSERT_TRUE(c.Search(data.data() + static_cast<size_t>(n + later) * dim, dim, req, &hits).ok());
    ASSERT_FALSE(hits.empty());
    EXPECT_EQ(hits[0].id, expect[0][0].id);
  };
  {
    std::shared_ptr<Collection> c;
    ASSERT_TRUE(Collection::Open(opts, &c).ok());
    EXPECT_TRUE(c->config().index.vectors_on_disk);
    UpsertRange(*c, 0, n, dim, data);
    ASSERT_TRUE(c->SnapshotTo(snap).ok());
    UpsertRange(*c, n, n + later, dim, data);
    for (int i = 0; i < n; i += 10) ASSERT_TRUE(c->Delete(Id(i)).ok());
    for (int i = 5; i < n; i += 10) {  // updates after the checkpoint
      std::string id = Id(i);
      const char* p = id.c_str();
      ASSERT_TRUE(
          c->Upsert(1, &p, data.data() + static_cast<size_t>(i + 1) * dim, dim, nullptr).ok());
    }
    expect = queries(*c);
    same(*c, "before the restart");
    EXPECT_GE(FileSize(vfile), static_cast<uint64_t>(n + later) * dim * sizeof(float));
  }
  auto restore = [&](const char* what) {
    std::shared_ptr<Collection> r;
    ASSERT_TRUE(Collection::Open(opts, &r).ok());
    ASSERT_TRUE(r->LoadSnapshot(snap).ok());
    EXPECT_TRUE(r->config().index.vectors_on_disk);
    RecoverStats st;
    ASSERT_TRUE(r->Recover(RecoverOptions{}, &st).ok());
    same(*r, what);
  };
  restore("restored from snapshot + WAL");
  ASSERT_EQ(0, ::unlink(vfile.c_str()));
  restore("vectors file deleted");
  ASSERT_EQ(0, ::truncate(vfile.c_str(), 100));
  restore("vectors file truncated");
  {
    std::ofstream garbage(vfile, std::ios::binary | std::ios::trunc);
    garbage << std::string(1 << 16, '\x7f');
  }
  restore("vectors file overwritten");
}

// No room to grow the vectors file (here: RLIMIT_FSIZE, as a full disk):
// the insert that needs the space fails with a status, nothing crashes
// (no SIGBUS from a write through the mapping), and what is there stays
// searchable.
TEST(VectorsOnDisk, NoSpaceForTheFileIsAnError) {
  aidbtest::TempDir tmp;
  const uint32_t dim = 256;  // 1 KiB per vector; 2048-node chunks of 2 MiB
  IndexConfig cfg = index::testing::Hnsw(dim, Metric::kEuclidean, 8, 20);
  cfg.vectors_on_disk = true;
  std::unique_ptr<index::VectorIndex> idx;
  ASSERT_TRUE(index::CreateIndex(cfg, tmp / "vectors.bin", &idx).ok());
  auto data = Clustered(1, dim, 1, 1);
  struct rlimit old;
  ASSERT_EQ(0, ::getrlimit(RLIMIT_FSIZE, &old));
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = 6u << 20;
  ASSERT_EQ(0, ::setrlimit(RLIMIT_FSIZE, &lim));
  Status st;
  uint32_t added = 0, slot;
  while (added < 20000 && (st = idx->Add(data.data(), &slot)).ok()) ++added;
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("vectors"), std::string::npos) << st.ToString();
  EXPECT_GE(added, 2048u);
  EXPECT_LE(added, 6144u);
  EXPECT_EQ(idx->Size(), added);
  index::SearchParams p;
  std::vector<Hit> hits;
  ASSERT_TRUE(idx->Search(data.data(), p, &hits).ok());
  EXPECT_FALSE(hits.empty());
}

TEST(VectorsOnDisk, BadSettingsAreRefused) {
  aidbtest::TempDir tmp;
  std::shared_ptr<Collection> c;
  // No WAL: no place for the vectors file.
  CollectionOptions o = DiskOptions(IndexKind::kHnsw, 8, "");
  Status s = Collection::Open(o, &c);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  // IVF too needs the WAL path (it used to refuse vectors_on_disk).
  o = DiskOptions(IndexKind::kIvf, 8, "");
  EXPECT_TRUE(Collection::Open(o, &c).IsInvalidArgument());
  o = DiskOptions(IndexKind::kIvf, 8, tmp / "ivf.wal");
  s = Collection::Open(o, &c);
  EXPECT_TRUE(s.ok()) << s.ToString();
  c.reset();
  // Quantization outside the enum.
  o = DiskOptions(IndexKind::kHnsw, 8, tmp / "q.wal");
  o.config.index.quantization = static_cast<Quantization>(5);
  EXPECT_TRUE(Collection::Open(o, &c).IsInvalidArgument());
  // An IVF collection may still say quantization none (it does not use it).
  o = DiskOptions(IndexKind::kIvf, 8, tmp / "q.wal");
  o.config.index.vectors_on_disk = false;
  o.config.index.quantization = Quantization::kNone;
  EXPECT_TRUE(Collection::Open(o, &c).ok());
}

TEST(VectorsOnDisk, CollectionJsonKeepsTheSettings) {
  CollectionConfig c;
  c.name = "x";
  c.index.dim = 8;
  c.index.kind = IndexKind::kHnsw;
  c.index.quantization = Quantization::kNone;
  c.index.vectors_on_disk = true;
  CollectionConfig back;
  ASSERT_TRUE(ConfigFromJson(ConfigToJson(c), &back).ok());
  EXPECT_EQ(back.index.quantization, Quantization::kNone);
  EXPECT_TRUE(back.index.vectors_on_disk);
  // A collection.json from before 0.3: sq8, vectors in RAM.
  back = CollectionConfig();
  ASSERT_TRUE(ConfigFromJson(R"({"format":1,"name":"x","dim":8,"metric":"cosine","index":"hnsw",)"
                             R"("hnsw":{"m":16,"ef_construction":200,"ef_search":0}})",
                             &back)
                  .ok());
  EXPECT_EQ(back.index.quantization, Quantization::kSq8);
  EXPECT_FALSE(back.index.vectors_on_disk);
  EXPECT_FALSE(ConfigFromJson(R"({"format":1,"name":"x","dim":8,"metric":"cosine","index":"hnsw",)"
                              R"("quantization":"pq"})",
                              &back)
                   .ok());
}

// A database collection keeps its file in its folder, and reopening the
// database (snapshot from the MANIFEST + WAL) rebuilds it.
TEST(VectorsOnDisk, DatabaseCollectionReopens) {
  aidbtest::TempDir tmp;
  const uint32_t dim = 16;
  auto data = Clustered(600, dim, 4, 3);
  DatabaseOptions dopts;
  dopts.durability = Durability::kNone;
  CollectionConfig cfg;
  cfg.name = "docs";
  cfg.index.dim = dim;
  cfg.index.kind = IndexKind::kHnsw;
  cfg.index.vectors_on_disk = true;
  const std::string vfile = tmp / "db/docs/vectors.bin";
  {
    std::unique_ptr<Database> db;
    ASSERT_TRUE(Database::Open(tmp / "db", dopts, &db).ok());
    std::shared_ptr<Collection> c;
    ASSERT_TRUE(db->CreateCollection(cfg, &c).ok());
    UpsertRange(*c, 0, 400, dim, data);
    std::string snap;
    ASSERT_TRUE(db->Snapshot("docs", &snap).ok());
    UpsertRange(*c, 400, 600, dim, data);
    EXPECT_GE(FileSize(vfile), 600u * dim * sizeof(float));
  }
  ASSERT_EQ(0, ::unlink(vfile.c_str()));
  std::unique_ptr<Database> db;
  ASSERT_TRUE(Database::Open(tmp / "db", dopts, &db).ok());
  std::shared_ptr<Collection> c;
  ASSERT_TRUE(db->GetCollection("docs", &c).ok());
  EXPECT_EQ(c->Count(), 600u);
  EXPECT_TRUE(c->config().index.vectors_on_disk);
  EXPECT_GE(FileSize(vfile), 600u * dim * sizeof(float));
  std::vector<float> v(dim);
  ASSERT_TRUE(c->Get(Id(599), v.data(), dim, nullptr, nullptr).ok());
  float norm = 0;  // cosine: stored normalised
  for (float x : v) norm += x * x;
  EXPECT_NEAR(norm, 1.f, 1e-4);
}

// Structural, not a timing: with the vectors on disk, a 100k x 256
// collection grows anonymous memory by well under the 100 MB of floats it
// holds: flat keeps ids and payload slots, HNSW the 8-bit codes and links.
// IVF retrains in the background while a writer appends to the vectors file
// (new segments mapped) and a reader searches: the rebuild reads every
// vector through the mapping. Afterwards every vector reads back, a point
// finds itself, and an inline retrain gives the same hits as an index with
// the vectors in RAM fed the same writes.
TEST(VectorsOnDisk, IvfRetrainsWhileTheFileIsInUse) {
  aidbtest::TempDir tmp;
  const uint32_t dim = 32;
  const size_t n = 24000, batch = 500, nq = 40;
  auto data = Clustered(n + nq, dim, 40, 11, 0.5f);
  IndexConfig cfg;
  cfg.dim = dim;
  cfg.metric = Metric::kEuclidean;
  cfg.kind = IndexKind::kIvf;
  index::IvfTuning t;
  t.min_train = 1000;
  t.regrow = 2.0;  // several background rebuilds on the way to n
  t.background = true;
  IndexConfig dcfg = cfg;
  dcfg.vectors_on_disk = true;
  std::unique_ptr<index::VectorFile> vf;
  ASSERT_TRUE(index::VectorFile::Create(tmp / "ivf.vectors", &vf).ok());
  index::IvfIndex disk(dcfg, t, std::move(vf));
  index::IvfTuning inline_t = t;
  inline_t.background = false;
  index::IvfIndex ram(cfg, inline_t);

  std::atomic<bool> done{false};
  std::atomic<int> searches{0};
  std::thread reader([&] {
    std::vector<Hit> hits;
    for (size_t q = 0; !done.load(); q = (q + 1) % nq) {
      index::SearchParams p;
      p.k = 10;
      EXPECT_TRUE(disk.Search(data.data() + (n + q) * dim, p, &hits).ok());
      searches.fetch_add(1);
    }
  });
  struct Join {  // also when an assertion below returns early
    std::atomic<bool>* done;
    std::thread* t;
    ~Join() {
      done->store(true);
      if (t->joinable()) t->join();
    }
  } join{&done, &reader};
  std::vector<uint32_t> slots(batch);
  for (size_t b = 0; b < n; b += batch) {
    ASSERT_TRUE(disk.AddBatch(data.data() + b * dim, batch, slots.data(), 1).ok());
    ASSERT_TRUE(ram.AddBatch(data.data() + b * dim, batch, slots.data(), 1).ok());
  }
  for (uint32_t s = 1; s < n; s += 50) {  // slot s holds point s
    disk.Remove(s);
    ram.Remove(s);
  }
  disk.WaitIdle();
  done.store(true);
  reader.join();
  EXPECT_GT(searches.load(), 0);
  ASSERT_TRUE(disk.Trained());
  EXPECT_GE(disk.VectorFileBytes(), n * dim * sizeof(float));
  std::vector<float> v(dim);
  for (uint32_t s = 0; s < n; s += 97) {
    if (!disk.IsLive(s)) continue;
    disk.GetVector(s, v.data());
    ASSERT_EQ(0, std::memcmp(v.data(), data.data() + static_cast<size_t>(s) * dim, dim * 4)) << s;
    index::SearchParams p;
    p.k = 1;
    std::vector<Hit> hits;
    ASSERT_TRUE(disk.Search(v.data(), p, &hits).ok());
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].score, 0.f) << "slot " << s;
  }
  ASSERT_TRUE(disk.Train().ok());
  ASSERT_TRUE(ram.Train().ok());
  EXPECT_EQ(disk.Nlist(), ram.Nlist());
  for (size_t q = 0; q < nq; ++q) {
    index::SearchParams p;
    p.k = 10;
    std::vector<Hit> hr, hd;
    ASSERT_TRUE(ram.Search(data.data() + (n + q) * dim, p, &hr).ok());
    ASSERT_TRUE(disk.Search(data.data() + (n + q) * dim, p, &hd).ok());
    ASSERT_EQ(hr.size(), hd.size());
    for (size_t i = 0; i < hr.size(); ++i) {
      EXPECT_EQ(hr[i].slot, hd[i].slot) << "query " << q << " hit " << i;
      EXPECT_EQ(hr[i].score, hd[i].score) << "query " << q << " hit " << i;
    }
  }
}

// Sanitizer runtimes keep shadow memory and quarantined allocations in
// anonymous memory: the measure means nothing there.
using aidbtest::kSanitized;

TEST(VectorsOnDisk, FloatsStayOutOfAnonymousMemory) {
  if (RssAnonKb() < 0) GTEST_SKIP() << "no RssAnon in /proc/self/status";
  if (kSanitized) GTEST_SKIP() << "anonymous memory is the sanitizer's under ASan/TSan";
  aidbtest::TempDir tmp;
  const uint32_t dim = 256;
  struct Case {
    IndexKind kind;
    int n;
    double max_share;  // of the float bytes
  };
  // In RAM: flat grows by >= 1x the floats, HNSW (floats + codes + links) by
  // ~1.3x; on disk HNSW keeps 256 bytes of codes and 64 of links per point.
  for (Case cs : {Case{IndexKind::kFlat, 100000, 0.25}, Case{IndexKind::kHnsw, 100000, 0.6}}) {
    SCOPED_TRACE(IndexKindName(cs.kind));
    CollectionOptions o =
        DiskOptions(cs.kind, dim, tmp / (std::string(IndexKindName(cs.kind)) + ".wal"));
    o.config.index.hnsw.m = 8;
    o.config.index.hnsw.ef_construction = 24;
    std::shared_ptr<Collection> c;
    ASSERT_TRUE(Collection::Open(o, &c).ok());
    const int batch = 1000;
    std::vector<float> data(static_cast<size_t>(batch) * dim);
    const long before = RssAnonKb();
    for (int b = 0; b < cs.n / batch; ++b) {
      for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>((i * 31 + b * 7) % 101);
      std::vector<std::string> ids;
      std::vector<const char*> ptrs;
      for (int i = 0; i < batch; ++i) ids.push_back(Id(b * batch + i));
      for (auto& s : ids) ptrs.push_back(s.c_str());
      ASSERT_TRUE(c->Upsert(batch, ptrs.data(), data.data(), dim, nullptr).ok());
    }
    ASSERT_EQ(c->Count(), static_cast<uint64_t>(cs.n));
    const long grown_kb = RssAnonKb() - before;
    const long float_kb = static_cast<long>(cs.n) * dim * 4 / 1024;
    EXPECT_LT(grown_kb, static_cast<long>(float_kb * cs.max_share))
        << "anonymous growth " << grown_kb << " kB for " << float_kb << " kB of floats";
  }
  // IVF, the index alone (inline rebuilds: no training sample alive at the
  // measurement): 32 bytes of codes and ~16 of list entries per point.
  {
    SCOPED_TRACE("ivf");
    const int n = 100000, batch = 1000;
    IndexConfig cfg;
    cfg.dim = dim;
    cfg.metric = Metric::kEuclidean;
    cfg.kind = IndexKind::kIvf;
    cfg.vectors_on_disk = true;
    index::IvfTuning t;
    t.background = false;
    std::unique_ptr<index::VectorFile> vf;
    ASSERT_TRUE(index::VectorFile::Create(tmp / "ivf.vectors", &vf).ok());
    index::IvfIndex idx(cfg, t, std::move(vf));
    std::vector<float> data(static_cast<size_t>(batch) * dim);
    std::vector<uint32_t> slots(batch);
    const long before = RssAnonKb();
    for (int b = 0; b < n / batch; ++b) {
      for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>((i * 31 + b * 7) % 101);
      ASSERT_TRUE(idx.AddBatch(data.data(), batch, slots.data(), 1).ok());
    }
    ASSERT_TRUE(idx.Trained());
    const long grown_kb = RssAnonKb() - before;
    const long float_kb = static_cast<long>(n) * dim * 4 / 1024;
    EXPECT_LT(grown_kb, static_cast<long>(float_kb * 0.15))
        << "anonymous growth " << grown_kb << " kB for " << float_kb << " kB of floats";
  }
}

}  // namespace
}  // namespace aidb::engine
