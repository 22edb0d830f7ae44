// The C API: versions, bad input, search and filters, concurrency, change feed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

using namespace aidbtest;

namespace {

constexpr uint32_t kDim = 4;

TEST(CApi, VersionMacrosMatchTheLibrary) {
  EXPECT_STREQ(aidb_version(), AIDB_VERSION);
  EXPECT_EQ(aidb_version_number(), AIDB_VERSION_NUMBER);
  EXPECT_STREQ(aidb_status_name(AIDB_CORRUPTION), "CORRUPTION");
  EXPECT_STREQ(aidb_status_name(12345), "UNKNOWN");
}

TEST(CApi, NullArgumentsAreMisuseNotCrashes) {
  Err err;
  EXPECT_EQ(aidb_collection_open(nullptr, nullptr, err.ptr()), AIDB_MISUSE);
  EXPECT_EQ(aidb_collection_upsert(nullptr, "x", nullptr, 0, nullptr, 0, err.ptr()), AIDB_MISUSE);
  EXPECT_EQ(aidb_collection_snapshot_to(nullptr, "x", nullptr), AIDB_MISUSE);
  EXPECT_EQ(aidb_recover(nullptr, nullptr, nullptr, nullptr), AIDB_MISUSE);
  EXPECT_EQ(aidb_wal_stats(nullptr, nullptr, nullptr), AIDB_MISUSE);
  aidb_collection_options o;  // not initialised: struct_size garbage/zero
  std::memset(&o, 0, sizeof(o));
  aidb_collection* c = nullptr;
  EXPECT_EQ(aidb_collection_open(&o, &c, err.ptr()), AIDB_MISUSE);
  EXPECT_NE(err.str().find("struct_size"), std::string::npos);
  aidb_collection_close(nullptr);
  aidb_search_result_free(nullptr);
  aidb_db_close(nullptr);
  aidb_free(nullptr);
}

TEST(CApi, InvalidCollectionOptionsAreRejected) {
  struct Case {
    const char* name;
    uint32_t dim;
    int metric;
    int kind;
  } cases[] = {
      {"../x", 4, AIDB_METRIC_COSINE, AIDB_INDEX_FLAT},
      {"", 4, AIDB_METRIC_COSINE, AIDB_INDEX_FLAT},
      {"a b", 4, AIDB_METRIC_COSINE, AIDB_INDEX_FLAT},
      {"x/y", 4, AIDB_METRIC_COSINE, AIDB_INDEX_FLAT},
      {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 4, 0, 0},  // 65 chars
      {"ok", 0, AIDB_METRIC_COSINE, AIDB_INDEX_FLAT},
      {"ok", 4, 7, AIDB_INDEX_FLAT},
      {"ok", 4, AIDB_METRIC_COSINE, 9},
  };
  for (const Case& k : cases) {
    aidb_collection_options o;
    aidb_collection_options_init(&o);
    o.name = k.name;
    o.dim = k.dim;
    o.metric = k.metric;
    o.index_kind = k.kind;
    aidb_collection* c = nullptr;
    Err err;
    EXPECT_EQ(aidb_collection_open(&o, &c, err.ptr()), AIDB_INVALID_ARGUMENT) << k.name;
    EXPECT_FALSE(err.str().empty());
    EXPECT_EQ(c, nullptr);
  }
  int m = -1;
  Err err;
  EXPECT_EQ(aidb_metric_from_string("manhattan", &m, err.ptr()), AIDB_INVALID_ARGUMENT);
  EXPECT_NE(err.str().find("manhattan"), std::string::npos);
  EXPECT_EQ(aidb_metric_from_string("L2", &m, nullptr), AIDB_OK);
  EXPECT_EQ(m, AIDB_METRIC_EUCLIDEAN);
}

// quantization and vectors_on_disk: refused outside their values and where
// no vectors file can live (no WAL), for every index kind (ivf included);
// reported by aidb_collection_get_info; a caller with the 0.2 struct (no
// such fields) gets the defaults.
TEST(CApi, QuantizationAndVectorsOnDisk) {
  TempDir dir;
  const std::string wal = dir / "od.wal";
  struct Bad {
    int kind, quantization, on_disk;
    bool with_wal;
  } bad[] = {{AIDB_INDEX_HNSW, 2, 0, true},  {AIDB_INDEX_HNSW, -1, 0, true},
             {AIDB_INDEX_HNSW, 0, 2, true},  {AIDB_INDEX_HNSW, 0, 1, false},
             {AIDB_INDEX_FLAT, 0, 1, false}, {AIDB_INDEX_IVF, 0, 1, false}};
  for (const Bad& b : bad) {
    aidb_collection_options o;
    aidb_collection_options_init(&o);
    EXPECT_EQ(o.quantization, AIDB_QUANTIZATION_SQ8);
    EXPECT_EQ(o.vectors_on_disk, 0);
    o.name = "od";
    o.dim = 8;
    o.index_kind = b.kind;
    o.quantization = b.quantization;
    o.vectors_on_disk = b.on_disk;
    o.wal_path = b.with_wal ? wal.c_str() : nullptr;
    aidb_collection* c = nullptr;
    Err err;
    EXPECT_EQ(aidb_collection_open(&o, &c, err.ptr()), AIDB_INVALID_ARGUMENT)
        << b.kind << " " << b.quantization << " " << b.on_disk;
    EXPECT_FALSE(err.str().empty());
    EXPECT_EQ(c, nullptr);
  }
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "od";
  o.dim = 8;
  o.index_kind = AIDB_INDEX_HNSW;
  o.quantization = AIDB_QUANTIZATION_NONE;
  o.vectors_on_disk = 1;
  o.wal_path = wal.c_str();
  aidb_collection* c = nullptr;
  Err err;
  ASSERT_EQ(aidb_collection_open(&o, &c, err.ptr()), AIDB_OK) << err.str();
  aidb_collection_info info;
  aidb_collection_info_init(&info);
  ASSERT_EQ(aidb_collection_get_info(c, &info, err.ptr()), AIDB_OK);
  EXPECT_EQ(info.quantization, AIDB_QUANTIZATION_NONE);
  EXPECT_EQ(info.vectors_on_disk, 1);
  EXPECT_EQ(info.ivf_nlist, 0u);
  // An older caller's info struct (up to count) is filled up to its size.
  aidb_collection_info old;
  std::memset(&old, 0xAB, sizeof(old));
  old.struct_size = offsetof(aidb_collection_info, ivf_nlist);
  ASSERT_EQ(aidb_collection_get_info(c, &old, err.ptr()), AIDB_OK);
  EXPECT_EQ(old.dim, 8u);
  EXPECT_EQ(old.vectors_on_disk, static_cast<int>(0xABABABAB));
  aidb_collection_close(c);
  EXPECT_EQ(access((wal + ".vectors").c_str(), F_OK), 0);
  // IVF takes vectors_on_disk too (it used to refuse it).
  const std::string ivf_wal = dir / "ivf.wal";
  o.index_kind = AIDB_INDEX_IVF;
  o.quantization = AIDB_QUANTIZATION_SQ8;
  o.wal_path = ivf_wal.c_str();
  ASSERT_EQ(aidb_collection_open(&o, &c, err.ptr()), AIDB_OK) << err.str();
  aidb_collection_info_init(&info);
  ASSERT_EQ(aidb_collection_get_info(c, &info, err.ptr()), AIDB_OK);
  EXPECT_EQ(info.vectors_on_disk, 1);
  aidb_collection_close(c);
  EXPECT_EQ(access((ivf_wal + ".vectors").c_str(), F_OK), 0);
  // An older caller's options struct (up to ivf_rerank): sq8, in RAM.
  aidb_collection_options o2;
  aidb_collection_options_init(&o2);
  o2.name = "old";
  o2.dim = 8;
  o2.index_kind = AIDB_INDEX_HNSW;
  o2.quantization = 77;  // beyond the caller's struct_size: not read
  o2.vectors_on_disk = 77;
  o2.struct_size = offsetof(aidb_collection_options, quantization);
  ASSERT_EQ(aidb_collection_open(&o2, &c, err.ptr()), AIDB_OK) << err.str();
  aidb_collection_info_init(&info);
  ASSERT_EQ(aidb_collection_get_info(c, &info, err.ptr()), AIDB_OK);
  EXPECT_EQ(info.quantization, AIDB_QUANTIZATION_SQ8);
  EXPECT_EQ(info.vectors_on_disk, 0);
  aidb_collection_close(c);
  // IVF: the configured parameters come back.
  aidb_collection_options_init(&o2);
  o2.name = "ivf";
  o2.dim = 8;
  o2.index_kind = AIDB_INDEX_IVF;
  o2.ivf_nlist = 12;
  o2.ivf_nprobe = 3;
  o2.ivf_rerank = 40;
  ASSERT_EQ(aidb_collection_open(&o2, &c, err.ptr()), AIDB_OK) << err.str();
  aidb_collection_info_init(&info);
  ASSERT_EQ(aidb_collection_get_info(c, &info, err.ptr()), AIDB_OK);
  EXPECT_EQ(info.ivf_nlist, 12u);
  EXPECT_EQ(info.ivf_nprobe, 3u);
  EXPECT_EQ(info.ivf_rerank, 40u);
  aidb_collection_close(c);
}

TEST(CApi, BadPointsAreRejectedAndChangeNothing) {
  TempDir dir;
  const std::string wal = dir / "wal.log";
  aidb_collection* c = OpenCollection("bad", kDim, wal);
  ASSERT_EQ(Upsert(c, 1, kDim, "{\"a\":1}"), AIDB_OK);
  const uint64_t wal_size = FileSize(wal);
  const float good[kDim] = {1, 2, 3, 4};
  const float nan[kDim] = {1, std::numeric_limits<float>::quiet_NaN(), 3, 4};
  const float inf[kDim] = {1, 2, std::numeric_limits<float>::infinity(), 4};
  const std::string id = Id(2);
  Err err;
  EXPECT_EQ(aidb_collection_upsert(c, id.c_str(), good, kDim + 1, nullptr, 0, err.ptr()),
            AIDB_DIMENSION_MISMATCH);
  EXPECT_NE(err.str().find("expects 4"), std::string::npos) << err.str();
  EXPECT_EQ(aidb_collection_upsert(c, id.c_str(), nan, kDim, nullptr, 0, err.ptr()),
            AIDB_INVALID_ARGUMENT);
  EXPECT_NE(err.str().find("NaN"), std::string::npos) << err.str();
  EXPECT_EQ(aidb_collection_upsert(c, id.c_str(), inf, kDim, nullptr, 0, err.ptr()),
            AIDB_INVALID_ARGUMENT);
  for (const char* bad_id : {"not-a-uuid", "../x", "", "00000000-0000-4000-8000-00000000000g",
                             "00000000-0000-4000-8000-0000000000001"}) {
    EXPECT_EQ(aidb_collection_upsert(c, bad_id, good, kDim, nullptr, 0, err.ptr()),
              AIDB_INVALID_ARGUMENT)
        << bad_id;
  }
  for (const char* bad_payload :
       {"[1,2]", "42", "\"s\"", "{\"a\":", "{\"a\":1} x", "not json", "null"}) {
    EXPECT_EQ(aidb_collection_upsert(c, id.c_str(), good, kDim, bad_payload, (size_t)-1, err.ptr()),
              AIDB_INVALID_ARGUMENT)
        << bad_payload;
  }
  // A batch with one bad point applies nothing.
  const std::string id3 = Id(3), id4 = Id(4);
  const char* ids[3] = {id3.c_str(), "bogus", id4.c_str()};
  std::vector<float> vecs(3 * kDim, 1.f);
  EXPECT_EQ(aidb_collection_upsert_batch(c, 3, ids, vecs.data(), kDim, nullptr, err.ptr()),
            AIDB_INVALID_ARGUMENT);
  EXPECT_NE(err.str().find("point 1"), std::string::npos) << err.str();

  EXPECT_EQ(Count(c), 1u);
  EXPECT_EQ(FileSize(wal), wal_size);  // nothing was logged
  EXPECT_EQ(aidb_collection_delete(c, Id(77).c_str(), err.ptr()), AIDB_NOT_FOUND);
  EXPECT_EQ(aidb_collection_get(c, Id(77).c_str(), nullptr, 0, nullptr, err.ptr()), AIDB_NOT_FOUND);

  // Bad search input.
  aidb_search_result* r = nullptr;
  EXPECT_EQ(aidb_collection_search(c, good, kDim + 2, nullptr, &r, err.ptr()),
            AIDB_DIMENSION_MISMATCH);
  EXPECT_EQ(aidb_collection_search(c, nan, kDim, nullptr, &r, err.ptr()), AIDB_INVALID_ARGUMENT);
  aidb_search_options so;
  aidb_search_options_init(&so);
  for (const char* f : {"not json", "[1]", "{\"must\": 3}", "{\"must\": [{\"foo\": 1}]}",
                        "{\"must\": [{\"key\": \"a\", \"range\": {\"gt\": \"x\"}}]}"}) {
    so.filter = f;
    EXPECT_EQ(aidb_collection_search(c, good, kDim, &so, &r, err.ptr()), AIDB_INVALID_ARGUMENT)
        << f;
  }
  aidb_collection_close(c);
}

std::vector<std::string> HitIds(aidb_search_result* r, size_t q = 0) {
  const aidb_hit* hits = nullptr;
  size_t n = 0;
  EXPECT_EQ(aidb_search_result_hits_v2(r, q, &hits, &n, nullptr), AIDB_OK);
  std::vector<std::string> ids;
  for (size_t i = 0; i < n; ++i) ids.push_back(hits[i].id);
  return ids;
}

// Scores are distances, lower is better, hits ascending (docs/http-api.md,
// aidb.h): cosine 1 - cos(a,q), Euclidean ||a-q||, dot -(a.q). Hand-computed
// for q = (1,1) against a = (1,0), b = (0,2), c = (3,4), d = (-2,0), on flat
// and HNSW, approximate and exact.
TEST(CApi, SearchScoresAreDistancesForEveryMetric) {
  const float pts[4][2] = {{1, 0}, {0, 2}, {3, 4}, {-2, 0}};
  const float q[2] = {1, 1};
  const float r2 = std::sqrt(2.f);
  struct Want {
    int metric;
    float dist[4];                // of a, b, c, d
    std::vector<uint32_t> order;  // ascending distance (a and b tie for cosine)
  };
  const Want wants[] = {
      {AIDB_METRIC_COSINE, {1 - 1 / r2, 1 - 1 / r2, 1 - 7 / (5 * r2), 1 + 1 / r2}, {2, 0, 1, 3}},
      {AIDB_METRIC_EUCLIDEAN, {1, r2, std::sqrt(13.f), std::sqrt(10.f)}, {0, 1, 3, 2}},
      {AIDB_METRIC_DOT, {-1, -2, -7, 2}, {2, 1, 0, 3}},
  };
  for (int kind : {AIDB_INDEX_FLAT, AIDB_INDEX_HNSW}) {
    for (const Want& w : wants) {
      SCOPED_TRACE("metric " + std::to_string(w.metric) + " index " + std::to_string(kind));
      aidb_collection_options o;
      aidb_collection_options_init(&o);
      o.name = "m";
      o.dim = 2;
      o.metric = w.metric;
      o.index_kind = kind;
      aidb_collection* c = nullptr;
      AIDB_ASSERT_OK(aidb_collection_open(&o, &c, &_m));
      AIDB_ASSERT_OK(
          aidb_collection_upsert(c, Id(0).c_str(), pts[0], 2, "{\"n\":\"a\"}", (size_t)-1, &_m));
      for (uint32_t i = 1; i < 4; ++i)
        AIDB_ASSERT_OK(aidb_collection_upsert(c, Id(i).c_str(), pts[i], 2, nullptr, 0, &_m));
      for (int exact : {0, 1}) {
        aidb_search_options so;
        aidb_search_options_init(&so);
        so.exact = exact;
        aidb_search_result* r = nullptr;
        AIDB_ASSERT_OK(aidb_collection_search(c, q, 2, &so, &r, &_m));
        const aidb_hit* hits;
        size_t n;
        ASSERT_EQ(aidb_search_result_hits_v2(r, 0, &hits, &n, nullptr), AIDB_OK);
        ASSERT_EQ(n, 4u);
        std::map<std::string, float> score;
        for (size_t i = 0; i < n; ++i) score[hits[i].id] = hits[i].score;
        for (uint32_t i = 0; i < 4; ++i) EXPECT_NEAR(score[Id(i)], w.dist[i], 1e-5) << i;
        for (size_t i = 1; i < n; ++i) {
          EXPECT_LE(hits[i - 1].score, hits[i].score) << i;
        }
        std::vector<std::string> ids, want_ids;
        for (size_t i = 0; i < n; ++i) ids.push_back(hits[i].id);
        for (uint32_t i : w.order) want_ids.push_back(Id(i));
        if (w.metric == AIDB_METRIC_COSINE) {  // a and b tie: either order
          if (ids[1] == Id(1)) std::swap(ids[1], ids[2]);
        }
        EXPECT_EQ(ids, want_ids);
        for (size_t i = 0; i < n; ++i) {
          if (ids[i] == Id(0)) {
            EXPECT_STREQ(hits[i].payload, "{\"n\":\"a\"}");
          } else {
            EXPECT_EQ(hits[i].payload, nullptr);
          }
        }
        aidb_search_result_free(r);

        // An exact match: distance 0 for cosine and Euclidean (not -0), and
        // -||c||^2 for dot.
        AIDB_ASSERT_OK(aidb_collection_search(c, pts[2], 2, &so, &r, &_m));
        ASSERT_EQ(aidb_search_result_hits_v2(r, 0, &hits, &n, nullptr), AIDB_OK);
        ASSERT_EQ(n, 4u);
        EXPECT_EQ(std::string(hits[0].id), Id(2));
        if (w.metric == AIDB_METRIC_DOT) {
          EXPECT_NEAR(hits[0].score, -25.f, 1e-4);
        } else {
          EXPECT_NEAR(hits[0].score, 0.f, 1e-6);
          EXPECT_GE(hits[0].score, 0.f);
          EXPECT_FALSE(std::signbit(hits[0].score));
        }
        aidb_search_result_free(r);
      }
      aidb_collection_close(c);
    }
  }
}

// Batch search answers the same distances, in the same ascending order, as
// one search per query.
TEST(CApi, BatchSearchScoresMatchSingleSearches) {
  for (int metric : {AIDB_METRIC_COSINE, AIDB_METRIC_EUCLIDEAN, AIDB_METRIC_DOT}) {
    SCOPED_TRACE(metric);
    aidb_collection* c = OpenCollection("b", kDim, "", metric);
    ASSERT_NE(c, nullptr);
    for (uint32_t i = 0; i < 50; ++i) ASSERT_EQ(Upsert(c, i, kDim), AIDB_OK);
    std::vector<float> qs;
    for (uint32_t i = 0; i < 4; ++i) {
      std::vector<float> v = Vec(i * 7 + 1, kDim);
      qs.insert(qs.end(), v.begin(), v.end());
    }
    aidb_search_options so;
    aidb_search_options_init(&so);
    so.top_k = 5;
    so.threads = 2;
    aidb_search_result* batch = nullptr;
    AIDB_ASSERT_OK(aidb_collection_search_batch(c, qs.data(), 4, kDim, &so, &batch, &_m));
    for (size_t qi = 0; qi < 4; ++qi) {
      aidb_search_result* one = nullptr;
      AIDB_ASSERT_OK(aidb_collection_search(c, qs.data() + qi * kDim, kDim, &so, &one, &_m));
      const aidb_hit *hb, *h1;
      size_t nb, n1;
      ASSERT_EQ(aidb_search_result_hits_v2(batch, qi, &hb, &nb, nullptr), AIDB_OK);
      ASSERT_EQ(aidb_search_result_hits_v2(one, 0, &h1, &n1, nullptr), AIDB_OK);
      ASSERT_EQ(nb, 5u);
      ASSERT_EQ(nb, n1);
      for (size_t i = 0; i < nb; ++i) {
        EXPECT_STREQ(hb[i].id, h1[i].id);
        EXPECT_EQ(hb[i].score, h1[i].score);
        if (i > 0) {
          EXPECT_LE(hb[i - 1].score, hb[i].score);
        }
      }
      // The query is point qi*7+1 itself: for cosine and Euclidean the best
      // hit, at distance 0.
      if (metric != AIDB_METRIC_DOT) {
        EXPECT_STREQ(hb[0].id, Id(qi * 7 + 1).c_str());
        EXPECT_NEAR(hb[0].score, 0.f, 1e-6);
      }
      aidb_search_result_free(one);
    }
    aidb_search_result_free(batch);
    aidb_collection_close(c);
  }
}

TEST(CApi, FilteredSearchReturnsKWhenKMatchesExist) {
  constexpr uint32_t kN = 2000;
  aidb_collection* c = OpenCollection("f", kDim, "", AIDB_METRIC_EUCLIDEAN);
  std::vector<std::string> ids(kN), payloads(kN);
  std::vector<const char*> idp(kN), pp(kN);
  std::vector<float> vecs(kN * kDim);
  for (uint32_t i = 0; i < kN; ++i) {
    ids[i] = Id(i);
    payloads[i] = "{\"color\":\"" + std::string(i % 100 == 0 ? "red" : "blue") +
                  "\",\"n\":" + std::to_string(i) + ",\"meta\":{\"tag\":\"t" +
                  std::to_string(i % 7) + "\"}}";
    idp[i] = ids[i].c_str();
    pp[i] = payloads[i].c_str();
    for (uint32_t d = 0; d < kDim; ++d) vecs[i * kDim + d] = static_cast<float>(i) + d * 0.001f;
  }
  AIDB_ASSERT_OK(
      aidb_collection_upsert_batch(c, kN, idp.data(), vecs.data(), kDim, pp.data(), &_m));
  const float q[kDim] = {0, 0, 0, 0};
  aidb_search_options so;
  aidb_search_options_init(&so);
  so.top_k = 10;
  // 1% selectivity, far from the query: still 10 results, all red.
  so.filter = "{\"color\": \"red\"}";
  aidb_search_result* r = nullptr;
  AIDB_ASSERT_OK(aidb_collection_search(c, q, kDim, &so, &r, &_m));
  std::vector<std::string> got = HitIds(r);
  ASSERT_EQ(got.size(), 10u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], Id(static_cast<uint32_t>(i * 100)));
  aidb_search_result_free(r);
  // Full form: range + nested must_not + dotted key.
  so.filter =
      "{\"must\": [{\"key\": \"n\", \"range\": {\"gte\": 500, \"lt\": 600}}],"
      " \"must_not\": [{\"key\": \"meta.tag\", \"match\": {\"value\": \"t0\"}}]}";
  AIDB_ASSERT_OK(aidb_collection_search(c, q, kDim, &so, &r, &_m));
  got = HitIds(r);
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got[0], Id(500));                         // 500 % 7 = 3
  for (const auto& id : got) EXPECT_NE(id, Id(504));  // 504 % 7 == 0
  aidb_search_result_free(r);
  // A single match.
  so.filter = "{\"n\": 1234}";
  AIDB_ASSERT_OK(aidb_collection_search(c, q, kDim, &so, &r, &_m));
  got = HitIds(r);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], Id(1234));
  aidb_search_result_free(r);
  // Batch search: one result list per query.
  std::vector<float> qs = {0, 0, 0, 0, 1999, 1999, 1999, 1999};
  so.filter = nullptr;
  so.top_k = 3;
  AIDB_ASSERT_OK(aidb_collection_search_batch(c, qs.data(), 2, kDim, &so, &r, &_m));
  ASSERT_EQ(aidb_search_result_query_count(r), 2u);
  EXPECT_EQ(HitIds(r, 0)[0], Id(0));
  EXPECT_EQ(HitIds(r, 1)[0], Id(1999));
  aidb_search_result_free(r);
  aidb_collection_close(c);
}

TEST(CApi, ConcurrentWritersReadersAndSnapshotLoseNothing) {
  TempDir dir;
  const std::string wal = dir / "wal.log";
  aidb_collection* c = OpenCollection("conc", kDim, wal, AIDB_METRIC_EUCLIDEAN);
  constexpr int kWriters = 4, kPerWriter = 150;
  std::atomic<bool> done{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        uint32_t id = static_cast<uint32_t>(w * 10000 + i);
        std::vector<float> v(kDim, static_cast<float>(id));
        std::string payload = "{\"w\":" + std::to_string(w) + "}";
        if (aidb_collection_upsert(c, Id(id).c_str(), v.data(), kDim, payload.c_str(), (size_t)-1,
                                   nullptr) != AIDB_OK) {
          ++errors;
        }
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      std::vector<float> q(kDim, 5.f), v(kDim);
      while (!done.load()) {
        aidb_search_result* res = nullptr;
        if (aidb_collection_search(c, q.data(), kDim, nullptr, &res, nullptr) != AIDB_OK) ++errors;
        const aidb_hit* hits;
        size_t n;
        aidb_search_result_hits_v2(res, 0, &hits, &n, nullptr);
        for (size_t i = 0; i < n; ++i) {
          // No torn read: a point's vector always has all components equal.
          if (aidb_collection_get(c, hits[i].id, v.data(), kDim, nullptr, nullptr) == AIDB_OK) {
            for (uint32_t d = 1; d < kDim; ++d) {
              if (v[d] != v[0]) ++errors;
            }
          }
        }
        aidb_search_result_free(res);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const std::string snap = dir / "mid.aidbsnap";
  AIDB_ASSERT_OK(aidb_collection_snapshot_to(c, snap.c_str(), &_m));
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  done = true;
  for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(Count(c), static_cast<uint64_t>(kWriters * kPerWriter));
  aidb_collection_close(c);

  // Snapshot taken mid-ingest + the WAL after it = every write, exactly once.
  c = OpenCollection("conc", kDim, wal, AIDB_METRIC_EUCLIDEAN);
  AIDB_ASSERT_OK(aidb_collection_load_snapshot(c, snap.c_str(), &_m));
  AIDB_ASSERT_OK(aidb_recover(c, nullptr, nullptr, &_m));
  EXPECT_EQ(Count(c), static_cast<uint64_t>(kWriters * kPerWriter));
  std::vector<float> v(kDim);
  for (int w = 0; w < kWriters; ++w) {
    for (int i = 0; i < kPerWriter; ++i) {
      uint32_t id = static_cast<uint32_t>(w * 10000 + i);
      ASSERT_EQ(aidb_collection_get(c, Id(id).c_str(), v.data(), kDim, nullptr, nullptr), AIDB_OK);
      EXPECT_EQ(v[0], static_cast<float>(id));
    }
  }
  aidb_collection_close(c);
}

TEST(CApi, UpsertReplacesAndDeleteRemoves) {
  aidb_collection* c = OpenCollection("u", kDim, "", AIDB_METRIC_DOT);
  const float a[kDim] = {1, 1, 1, 1}, b[kDim] = {2, 2, 2, 2};
  AIDB_ASSERT_OK(aidb_collection_upsert(c, Id(1).c_str(), a, kDim, "{\"v\":1}", (size_t)-1, &_m));
  AIDB_ASSERT_OK(aidb_collection_upsert(c, Id(1).c_str(), b, kDim, nullptr, 0, &_m));
  EXPECT_EQ(Count(c), 1u);
  float v[kDim];
  char* payload = reinterpret_cast<char*>(1);
  AIDB_ASSERT_OK(aidb_collection_get(c, Id(1).c_str(), v, kDim, &payload, &_m));
  EXPECT_EQ(v[0], 2.f);
  EXPECT_EQ(payload, nullptr);
  // Upper-case and braced ids name the same point.
  std::string upper = "{" + Id(1) + "}";
  for (char& ch : upper) ch = static_cast<char>(std::toupper(ch));
  AIDB_ASSERT_OK(aidb_collection_delete(c, upper.c_str(), &_m));
  EXPECT_EQ(Count(c), 0u);
  aidb_collection_close(c);
}

TEST(CApi, ChangeFeedListsEntriesFromAnLsn) {
  TempDir dir;
  aidb_collection* c = OpenCollection("feed", 2, dir / "wal.log");
  const float v[2] = {0.5f, 1.5f};
  for (uint32_t i = 0; i < 5; ++i) {
    AIDB_ASSERT_OK(aidb_collection_upsert(c, Id(i).c_str(), v, 2, "{\"x\":true}", (size_t)-1, &_m));
  }
  AIDB_ASSERT_OK(aidb_collection_delete(c, Id(0).c_str(), &_m));
  aidb_wal_iterator* it = nullptr;
  AIDB_ASSERT_OK(aidb_wal_iterator_open(c, 4, &it, &_m));
  std::vector<std::string> entries;
  std::vector<uint64_t> lsns;
  for (;;) {
    aidb_wal_entry e;
    aidb_wal_entry_init(&e);
    int has = 0;
    AIDB_ASSERT_OK(aidb_wal_iterator_next(it, &e, &has, &_m));
    if (!has) break;
    lsns.push_back(e.lsn);
    entries.emplace_back(e.json, e.json_len);
  }
  aidb_wal_iterator_close(it);
  ASSERT_EQ(lsns, (std::vector<uint64_t>{4, 5, 6}));
  EXPECT_NE(entries[0].find("\"op\":\"upsert\""), std::string::npos) << entries[0];
  EXPECT_NE(entries[0].find(Id(3)), std::string::npos);
  EXPECT_NE(entries[0].find("\"payload\":{\"x\":true}"), std::string::npos);
  EXPECT_NE(entries[2].find("\"op\":\"delete\""), std::string::npos) << entries[2];
  aidb_collection_close(c);
}

}  // namespace

namespace {

// The payload index built for an equality filter must follow every later
// upsert, replacement and delete (slots are reused after deletes).
TEST(CApi, EqualityFilterFollowsUpdatesAndDeletes) {
  aidb_collection* c = OpenCollection("pidx", kDim, "", AIDB_METRIC_EUCLIDEAN);
  const float v[kDim] = {1, 1, 1, 1};
  for (uint32_t i = 0; i < 50; ++i) {
    std::string p = "{\"tag\":" + std::string(i < 5 ? "\"hot\"" : "\"cold\"") + "}";
    AIDB_ASSERT_OK(aidb_collection_upsert(c, Id(i).c_str(), v, kDim, p.c_str(), (size_t)-1, &_m));
  }
  aidb_search_options so;
  aidb_search_options_init(&so);
  so.top_k = 100;
  so.filter = "{\"tag\": \"hot\"}";
  auto count_hot = [&]() {
    aidb_search_result* r = nullptr;
    EXPECT_EQ(aidb_collection_search(c, v, kDim, &so, &r, nullptr), AIDB_OK);
    size_t n = HitIds(r).size();
    aidb_search_result_free(r);
    return n;
  };
  EXPECT_EQ(count_hot(), 5u);  // builds the index on "tag"
  AIDB_ASSERT_OK(
      aidb_collection_upsert(c, Id(0).c_str(), v, kDim, "{\"tag\":\"cold\"}", (size_t)-1, &_m));
  EXPECT_EQ(count_hot(), 4u);
  AIDB_ASSERT_OK(aidb_collection_delete(c, Id(1).c_str(), &_m));
  EXPECT_EQ(count_hot(), 3u);
  // New points reuse freed slots.
  AIDB_ASSERT_OK(aidb_collection_upsert(c, Id(100).c_str(), v, kDim, "{\"tag\":[\"x\",\"hot\"]}",
                                        (size_t)-1, &_m));
  AIDB_ASSERT_OK(aidb_collection_upsert(c, Id(101).c_str(), v, kDim, nullptr, 0, &_m));
  EXPECT_EQ(count_hot(), 4u);
  so.filter = "{\"must\": [{\"key\": \"tag\", \"match\": {\"any\": [\"hot\", \"x\"]}}]}";
  EXPECT_EQ(count_hot(), 4u);
  aidb_collection_close(c);
}

}  // namespace

namespace {

// An in-memory collection of `kind` holding vecs.size() / dim points with
// ids Id(0), Id(1), ...
aidb_collection* FilledCollection(const char* name, uint32_t dim, int metric, int kind,
                                  const std::vector<float>& vecs) {
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = name;
  o.dim = dim;
  o.metric = metric;
  o.index_kind = kind;
  aidb_collection* c = nullptr;
  char* err = nullptr;
  if (aidb_collection_open(&o, &c, &err) != AIDB_OK) {
    ADD_FAILURE() << "open failed: " << (err ? err : "");
    aidb_free(err);
    return nullptr;
  }
  const size_t n = vecs.size() / dim;
  std::vector<std::string> ids(n);
  std::vector<const char*> idp(n);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = Id(static_cast<uint32_t>(i));
    idp[i] = ids[i].c_str();
  }
  if (aidb_collection_upsert_batch(c, n, idp.data(), vecs.data(), dim, nullptr, &err) != AIDB_OK) {
    ADD_FAILURE() << "upsert failed: " << (err ? err : "");
    aidb_free(err);
  }
  return c;
}

// Overlapping searches must not starve writers (a reader-preferring lock lets
// a steady stream of searches hold the collection forever).
class WriterProgress : public ::testing::TestWithParam<int> {};

TEST_P(WriterProgress, WritersProgressUnderContinuousSearchLoad) {
  constexpr uint32_t kD = 64;
  const uint32_t kN = GetParam() == AIDB_INDEX_FLAT ? 20000 : 3000;
  std::vector<float> vecs(static_cast<size_t>(kN) * kD, 0.5f);
  aidb_collection* c = FilledCollection("busy", kD, AIDB_METRIC_DOT, GetParam(), vecs);
  ASSERT_NE(c, nullptr);
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      std::vector<float> q(kD, 1.f);
      while (!stop.load()) {
        aidb_search_result* res = nullptr;
        aidb_collection_search(c, q.data(), kD, nullptr, &res, nullptr);
        aidb_search_result_free(res);
      }
    });
  }
  std::atomic<int> written{0};
  std::thread writer([&] {
    std::vector<float> v(kD, 1.f);
    for (uint32_t i = 0; i < 50; ++i) {
      if (aidb_collection_upsert(c, Id(kN + i).c_str(), v.data(), kD, nullptr, 0, nullptr) ==
          AIDB_OK) {
        ++written;
      }
      // Deletes and a compaction (exclusive inside the index) must get in too.
      if (i % 10 == 9) {
        if (aidb_collection_delete(c, Id(i).c_str(), nullptr) != AIDB_OK) --written;
        if (aidb_collection_compact(c, nullptr) != AIDB_OK) --written;
      }
    }
  });
  // Liveness, not speed: the writer must finish at all while readers spin.
  for (int i = 0; i < 600 && written.load() < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const int done = written.load();
  stop = true;
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(done, 50) << "writer starved by searches";
  aidb_collection_close(c);
}

INSTANTIATE_TEST_SUITE_P(IndexKinds, WriterProgress,
                         ::testing::Values(AIDB_INDEX_FLAT, AIDB_INDEX_HNSW));

}  // namespace

namespace {

// aidb_search_options.nonblocking: the same answers as a blocking search when
// nothing writes, AIDB_BUSY (and nothing else) while writers hold the locks.
class NonblockingSearch : public ::testing::TestWithParam<int> {};

TEST_P(NonblockingSearch, AnswersLikeABlockingSearchOrSaysBusy) {
  constexpr uint32_t kD = 32;
  constexpr uint32_t kN = 4000;
  std::vector<float> vecs(static_cast<size_t>(kN) * kD);
  for (size_t i = 0; i < vecs.size(); ++i) vecs[i] = static_cast<float>((i * 7919) % 1000) / 1000.f;
  aidb_collection* c = FilledCollection("nb", kD, AIDB_METRIC_EUCLIDEAN, GetParam(), vecs);
  ASSERT_NE(c, nullptr);

  aidb_search_options blocking, nonblocking;
  aidb_search_options_init(&blocking);
  EXPECT_EQ(blocking.nonblocking, 0);
  nonblocking = blocking;
  nonblocking.nonblocking = 1;
  for (uint32_t q = 0; q < 20; ++q) {
    aidb_search_result *a = nullptr, *b = nullptr;
    AIDB_ASSERT_OK(aidb_collection_search(c, &vecs[q * 97 * kD], kD, &blocking, &a, &_m));
    AIDB_ASSERT_OK(aidb_collection_search(c, &vecs[q * 97 * kD], kD, &nonblocking, &b, &_m));
    EXPECT_EQ(HitIds(a), HitIds(b));
    aidb_search_result_free(a);
    aidb_search_result_free(b);
  }
  EXPECT_STREQ(aidb_status_name(AIDB_BUSY), "BUSY");

  // A writer applies upserts, deletes and compactions (each takes a lock
  // exclusively) until the nonblocking reader has been told BUSY a few times.
  std::atomic<int> busy{0};
  std::atomic<bool> stop{false};
  std::atomic<int> writer_errors{0};
  std::thread writer([&] {
    for (uint32_t round = 0; !stop.load(); ++round) {
      const uint32_t base = kN + (round % 4) * 200;
      for (uint32_t i = 0; i < 200 && !stop.load(); ++i) {
        if (aidb_collection_upsert(c, Id(base + i).c_str(), &vecs[i * kD], kD, nullptr, 0,
                                   nullptr) != AIDB_OK) {
          ++writer_errors;
        }
      }
      for (uint32_t i = 0; i < 200 && !stop.load(); i += 2) {
        aidb_collection_delete(c, Id(base + i).c_str(), nullptr);
      }
      if (aidb_collection_compact(c, nullptr) != AIDB_OK) ++writer_errors;
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int answered = 0;
  while (busy.load() < 3 && std::chrono::steady_clock::now() < deadline) {
    aidb_search_result* r = nullptr;
    char* err = nullptr;
    int st = aidb_collection_search(c, vecs.data(), kD, &nonblocking, &r, &err);
    if (st == AIDB_BUSY) {
      ++busy;
      ASSERT_NE(err, nullptr);
      EXPECT_NE(std::string(err).find("nonblocking"), std::string::npos) << err;
      EXPECT_EQ(r, nullptr);
    } else {
      ASSERT_EQ(st, AIDB_OK) << (err ? err : "");
      ++answered;
      aidb_search_result_free(r);
    }
    aidb_free(err);
  }
  stop = true;
  writer.join();
  EXPECT_GE(busy.load(), 3) << "a nonblocking search never saw a writer's lock (" << answered
                            << " answered)";
  EXPECT_EQ(writer_errors.load(), 0);
  // Blocking searches wait instead.
  aidb_search_result* r = nullptr;
  AIDB_ASSERT_OK(aidb_collection_search(c, vecs.data(), kD, &blocking, &r, &_m));
  aidb_search_result_free(r);
  aidb_collection_close(c);
}

INSTANTIATE_TEST_SUITE_P(IndexKinds, NonblockingSearch,
                         ::testing::Values(AIDB_INDEX_FLAT, AIDB_INDEX_HNSW));

}  // namespace
