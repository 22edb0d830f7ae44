// The C API's contract details: the _v2 functions that report failures the
// way convention 3 says, the defaults macros, the names and aliases aidb.h
// lists, and the database-layout functions hosts use instead of knowing the
// file names (aidb_db_collection_path, aidb_db_path_is_managed,
// aidb_snapshot_export).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "test_util.h"

using namespace aidbtest;
namespace fs = std::filesystem;

namespace {

TEST(Contract, VersionMacrosComeFromTheBuild) {
  char expect[64];
  std::snprintf(expect, sizeof expect, "%d.%d.%d", AIDB_VERSION_MAJOR, AIDB_VERSION_MINOR,
                AIDB_VERSION_PATCH);
  EXPECT_STREQ(AIDB_VERSION, expect);
  EXPECT_STREQ(aidb_version(), AIDB_VERSION);
}

TEST(Contract, InitFunctionsSetTheDefaultsMacros) {
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  EXPECT_EQ(o.metric, AIDB_DEFAULT_METRIC);
  EXPECT_EQ(o.index_kind, AIDB_DEFAULT_INDEX_KIND);
  EXPECT_EQ(o.hnsw_m, 16u);
  EXPECT_EQ(o.hnsw_m, static_cast<uint32_t>(AIDB_DEFAULT_HNSW_M));
  EXPECT_EQ(o.hnsw_ef_construction, 200u);
  EXPECT_EQ(o.hnsw_ef_construction, static_cast<uint32_t>(AIDB_DEFAULT_HNSW_EF_CONSTRUCTION));
  EXPECT_EQ(o.hnsw_ef_search, static_cast<uint32_t>(AIDB_DEFAULT_HNSW_EF_SEARCH));
  EXPECT_EQ(o.durability, AIDB_DEFAULT_DURABILITY);
  EXPECT_EQ(o.batch_interval_ms, 10u);
  EXPECT_EQ(o.batch_interval_ms, static_cast<uint32_t>(AIDB_DEFAULT_BATCH_INTERVAL_MS));
  EXPECT_EQ(o.wal_mmap_threshold, 1u << 20);
  EXPECT_EQ(o.wal_mmap_threshold, static_cast<uint64_t>(AIDB_DEFAULT_WAL_MMAP_THRESHOLD));

  aidb_db_options d;
  aidb_db_options_init(&d);
  EXPECT_EQ(d.create_if_missing, AIDB_DEFAULT_CREATE_IF_MISSING);
  EXPECT_EQ(d.durability, AIDB_DEFAULT_DURABILITY);
  EXPECT_EQ(d.batch_interval_ms, static_cast<uint32_t>(AIDB_DEFAULT_BATCH_INTERVAL_MS));
  EXPECT_EQ(d.wal_mmap_threshold, static_cast<uint64_t>(AIDB_DEFAULT_WAL_MMAP_THRESHOLD));

  aidb_search_options s;
  aidb_search_options_init(&s);
  EXPECT_EQ(s.top_k, static_cast<uint32_t>(AIDB_DEFAULT_TOP_K));
  EXPECT_EQ(s.with_payload, AIDB_DEFAULT_WITH_PAYLOAD);
}

TEST(Contract, NamesAndTheirDocumentedAliases) {
  struct Alias {
    const char* name;
    int metric;
  } aliases[] = {{"cosine", AIDB_METRIC_COSINE},
                 {"COSINE", AIDB_METRIC_COSINE},
                 {"euclidean", AIDB_METRIC_EUCLIDEAN},
                 {"Euclid", AIDB_METRIC_EUCLIDEAN},
                 {"l2", AIDB_METRIC_EUCLIDEAN},
                 {"l2sq", AIDB_METRIC_EUCLIDEAN},
                 {"euclidean_distance", AIDB_METRIC_EUCLIDEAN},
                 {"dot", AIDB_METRIC_DOT},
                 {"IP", AIDB_METRIC_DOT},
                 {"inner_product", AIDB_METRIC_DOT},
                 {"dot_product", AIDB_METRIC_DOT}};
  for (const Alias& a : aliases) {
    int m = -1;
    EXPECT_EQ(aidb_metric_from_string(a.name, &m, nullptr), AIDB_OK) << a.name;
    EXPECT_EQ(m, a.metric) << a.name;
  }
  int v = -1;
  Err err;
  EXPECT_EQ(aidb_metric_from_string("l1", &v, err.ptr()), AIDB_INVALID_ARGUMENT);
  EXPECT_EQ(err.str(), "unknown metric 'l1': expected cosine, euclidean or dot");
  EXPECT_EQ(aidb_index_kind_from_string("HNSW", &v, nullptr), AIDB_OK);
  EXPECT_EQ(v, AIDB_INDEX_HNSW);
  EXPECT_EQ(aidb_index_kind_from_string("IVF", &v, nullptr), AIDB_OK);
  EXPECT_EQ(v, AIDB_INDEX_IVF);
  EXPECT_EQ(aidb_index_kind_from_string("lsh", &v, err.ptr()), AIDB_INVALID_ARGUMENT);
  EXPECT_EQ(err.str(), "unknown index kind 'lsh': expected flat, hnsw or ivf");
  EXPECT_EQ(aidb_durability_from_string("Batch", &v, nullptr), AIDB_OK);
  EXPECT_EQ(v, AIDB_DURABILITY_BATCH);
  EXPECT_EQ(aidb_durability_from_string("async", &v, err.ptr()), AIDB_INVALID_ARGUMENT);
  EXPECT_EQ(err.str(), "unknown durability mode 'async': expected fsync, batch or none");
  EXPECT_EQ(aidb_durability_from_string(nullptr, &v, nullptr), AIDB_MISUSE);
  EXPECT_EQ(aidb_durability_from_string("none", nullptr, nullptr), AIDB_MISUSE);
  // Names are the canonical spellings, whatever alias was parsed.
  EXPECT_STREQ(aidb_metric_name(AIDB_METRIC_EUCLIDEAN), "euclidean");
  EXPECT_STREQ(aidb_metric_name(AIDB_METRIC_DOT), "dot");
  EXPECT_STREQ(aidb_metric_name(99), "unknown");
  EXPECT_STREQ(aidb_index_kind_name(AIDB_INDEX_FLAT), "flat");
  EXPECT_STREQ(aidb_durability_name(AIDB_DURABILITY_NONE), "none");
  EXPECT_STREQ(aidb_durability_name(-1), "unknown");
}

TEST(Contract, UuidFormsAidbHDocuments) {
  const char* forms[] = {"6ba7b810-9dad-11d1-80b4-00c04fd430c8",
                         "6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
                         "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
                         "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
                         "URN:UUID:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
                         "6ba7b8109dad11d180b400c04fd430c8"};
  for (const char* f : forms) {
    char out[37];
    EXPECT_EQ(aidb_uuid_canonical(f, out, nullptr), AIDB_OK) << f;
    EXPECT_STREQ(out, "6ba7b810-9dad-11d1-80b4-00c04fd430c8") << f;
  }
  char out[37];
  EXPECT_EQ(aidb_uuid_canonical("6ba7b8109dad-11d180b400c04fd430c8", out, nullptr),
            AIDB_INVALID_ARGUMENT);
}

TEST(Contract, UuidGenerateV2ReportsMisuse) {
  char a[37], b[37];
  ASSERT_EQ(aidb_uuid_generate_v2(a, nullptr), AIDB_OK);
  ASSERT_EQ(aidb_uuid_generate_v2(b, nullptr), AIDB_OK);
  EXPECT_EQ(std::strlen(a), 36u);
  EXPECT_STRNE(a, b);
  EXPECT_EQ(a[14], '4');  // version 4
  char canon[37];
  EXPECT_EQ(aidb_uuid_canonical(a, canon, nullptr), AIDB_OK);
  EXPECT_STREQ(canon, a);
  Err err;
  EXPECT_EQ(aidb_uuid_generate_v2(nullptr, err.ptr()), AIDB_MISUSE);
  EXPECT_NE(err.str().find("out"), std::string::npos);
  aidb_uuid_generate(nullptr);  // the 0.1.0 function: ignores it, as before
  aidb_uuid_generate(a);
  EXPECT_EQ(aidb_uuid_canonical(a, canon, nullptr), AIDB_OK);
}

TEST(Contract, SearchResultHitsV2ReportsMisuseAndRange) {
  aidb_collection* c = OpenCollection("hits", 4, "");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(Upsert(c, 1, 4, "{\"a\":1}"), AIDB_OK);
  std::vector<float> q = Vec(1, 4);
  aidb_search_result* r = nullptr;
  AIDB_ASSERT_OK(aidb_collection_search(c, q.data(), 4, nullptr, &r, &_m));
  const aidb_hit* hits = nullptr;
  size_t n = 0;
  AIDB_ASSERT_OK(aidb_search_result_hits_v2(r, 0, &hits, &n, &_m));
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(std::string(hits[0].id), Id(1));
  Err err;
  EXPECT_EQ(aidb_search_result_hits_v2(r, 1, &hits, &n, err.ptr()), AIDB_INVALID_ARGUMENT);
  EXPECT_NE(err.str().find("out of range"), std::string::npos) << err.str();
  EXPECT_EQ(aidb_search_result_hits_v2(nullptr, 0, &hits, &n, err.ptr()), AIDB_MISUSE);
  EXPECT_NE(err.str().find("result"), std::string::npos);
  EXPECT_EQ(aidb_search_result_hits_v2(r, 0, nullptr, &n, err.ptr()), AIDB_MISUSE);
  EXPECT_EQ(aidb_search_result_hits_v2(r, 0, &hits, nullptr, nullptr), AIDB_MISUSE);
  // The 0.1.0 function answers the same statuses.
  EXPECT_EQ(aidb_search_result_hits(r, 0, &hits, &n), AIDB_OK);
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(aidb_search_result_hits(r, 1, &hits, &n), AIDB_INVALID_ARGUMENT);
  EXPECT_EQ(aidb_search_result_hits(nullptr, 0, &hits, &n), AIDB_MISUSE);
  aidb_search_result_free(r);
  aidb_collection_close(c);
}

TEST(Contract, MatchExceptFiltersAsDocumented) {
  aidb_collection* c = OpenCollection("except", 4, "");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(Upsert(c, 1, 4, "{\"lang\":\"en\"}"), AIDB_OK);
  ASSERT_EQ(Upsert(c, 2, 4, "{\"lang\":\"de\"}"), AIDB_OK);
  ASSERT_EQ(Upsert(c, 3, 4, "{\"lang\":null}"), AIDB_OK);
  ASSERT_EQ(Upsert(c, 4, 4, "{}"), AIDB_OK);
  aidb_search_options so;
  aidb_search_options_init(&so);
  so.filter = R"({"must": [{"key": "lang", "match": {"except": ["en"]}}]})";
  std::vector<float> q = Vec(1, 4);
  aidb_search_result* r = nullptr;
  AIDB_ASSERT_OK(aidb_collection_search(c, q.data(), 4, &so, &r, &_m));
  const aidb_hit* hits = nullptr;
  size_t n = 0;
  AIDB_ASSERT_OK(aidb_search_result_hits_v2(r, 0, &hits, &n, &_m));
  ASSERT_EQ(n, 1u);  // de only: a null or missing key does not match
  EXPECT_EQ(std::string(hits[0].id), Id(2));
  aidb_search_result_free(r);
  aidb_collection_close(c);
}

TEST(Contract, CreateCollectionIgnoresTheWalFields) {
  TempDir dir;
  aidb_db_options dbo;
  aidb_db_options_init(&dbo);
  dbo.durability = AIDB_DURABILITY_BATCH;
  aidb_db* db = nullptr;
  AIDB_ASSERT_OK(aidb_db_open(dir.path().c_str(), &dbo, &db, &_m));
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "docs";
  o.dim = 4;
  std::string elsewhere = dir / "elsewhere.wal";
  o.wal_path = elsewhere.c_str();
  o.durability = AIDB_DURABILITY_NONE;
  o.batch_interval_ms = 1;
  aidb_collection* c = nullptr;
  AIDB_ASSERT_OK(aidb_db_create_collection(db, &o, &c, &_m));
  ASSERT_EQ(Upsert(c, 1, 4), AIDB_OK);
  aidb_collection_info info;
  aidb_collection_info_init(&info);
  AIDB_ASSERT_OK(aidb_collection_get_info(c, &info, &_m));
  EXPECT_EQ(info.durability, AIDB_DURABILITY_BATCH);  // the database's
  EXPECT_FALSE(fs::exists(elsewhere));
  char* wal = nullptr;
  AIDB_ASSERT_OK(aidb_db_collection_path(dir.path().c_str(), "docs", AIDB_PATH_WAL, &wal, &_m));
  aidb_collection_close(c);
  aidb_db_close(db);
  EXPECT_GT(FileSize(wal), 0u);
  aidb_free(wal);
}

// A database in `dir` with an empty 4-dim collection "docs"; *c (may be
// NULL) receives a handle to it.
aidb_db* OpenDbWithDocs(const std::string& dir, aidb_collection** c) {
  aidb_db* db = nullptr;
  char* err = nullptr;
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "docs";
  o.dim = 4;
  if (aidb_db_open(dir.c_str(), nullptr, &db, &err) != AIDB_OK ||
      aidb_db_create_collection(db, &o, c, &err) != AIDB_OK) {
    ADD_FAILURE() << (err ? err : "");
    aidb_free(err);
    aidb_db_close(db);
    return nullptr;
  }
  return db;
}

std::string CollectionPath(const std::string& db_dir, const char* name, int which) {
  char* p = nullptr;
  int st = aidb_db_collection_path(db_dir.c_str(), name, which, &p, nullptr);
  EXPECT_EQ(st, AIDB_OK) << name << " " << which;
  std::string s = p ? p : "";
  aidb_free(p);
  return s;
}

TEST(Contract, CollectionPathsNameTheFilesTheDatabaseWrites) {
  TempDir dir;
  aidb_collection* c = nullptr;
  aidb_db* db = OpenDbWithDocs(dir.path(), &c);
  ASSERT_NE(db, nullptr);
  ASSERT_EQ(Upsert(c, 1, 4), AIDB_OK);
  char* snap = nullptr;
  AIDB_ASSERT_OK(aidb_db_snapshot(db, "docs", &snap, &_m));
  ASSERT_EQ(Upsert(c, 2, 4), AIDB_OK);
  aidb_collection_close(c);

  std::string folder = CollectionPath(dir.path(), "docs", AIDB_PATH_COLLECTION);
  EXPECT_EQ(folder, dir / "docs");
  EXPECT_TRUE(fs::is_directory(folder));
  EXPECT_EQ(CollectionPath(dir.path(), "docs", AIDB_PATH_CONFIG), dir / "docs/collection.json");
  EXPECT_TRUE(fs::is_regular_file(CollectionPath(dir.path(), "docs", AIDB_PATH_CONFIG)));
  std::string wal = CollectionPath(dir.path(), "docs", AIDB_PATH_WAL);
  EXPECT_EQ(wal, dir / "docs/wal.log");
  uint64_t records = 0;
  AIDB_ASSERT_OK(aidb_wal_verify(wal.c_str(), &records, nullptr, &_m));
  EXPECT_EQ(records, 1u);
  EXPECT_TRUE(fs::is_regular_file(CollectionPath(dir.path(), "docs", AIDB_PATH_MANIFEST)));
  std::string snaps = CollectionPath(dir.path(), "docs", AIDB_PATH_SNAPSHOTS);
  EXPECT_EQ(fs::path(snap).parent_path().string(), snaps);
  aidb_free(snap);
  // Trailing slashes and relative directories are kept as given.
  EXPECT_EQ(CollectionPath(dir.path() + "//", "docs", AIDB_PATH_WAL), dir / "docs/wal.log");
  EXPECT_EQ(CollectionPath("data", "docs", AIDB_PATH_COLLECTION), "data/docs");

  char* p = nullptr;
  Err err;
  EXPECT_EQ(aidb_db_collection_path(dir.path().c_str(), "../x", AIDB_PATH_WAL, &p, err.ptr()),
            AIDB_INVALID_ARGUMENT);
  EXPECT_EQ(aidb_db_collection_path(dir.path().c_str(), "docs", 99, &p, err.ptr()),
            AIDB_INVALID_ARGUMENT);
  EXPECT_NE(err.str().find("99"), std::string::npos);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(aidb_db_collection_path(nullptr, "docs", AIDB_PATH_WAL, &p, nullptr), AIDB_MISUSE);
  EXPECT_EQ(aidb_db_collection_path(dir.path().c_str(), "docs", AIDB_PATH_WAL, nullptr, nullptr),
            AIDB_MISUSE);
  aidb_db_close(db);
}

int Managed(const std::string& db_dir, const std::string& path) {
  int m = -1;
  EXPECT_EQ(aidb_db_path_is_managed(db_dir.c_str(), path.c_str(), &m, nullptr), AIDB_OK) << path;
  return m;
}

TEST(Contract, PathIsManagedInsideCollectionFoldersOnly) {
  TempDir dir;
  aidb_db* db = OpenDbWithDocs(dir.path(), nullptr);
  ASSERT_NE(db, nullptr);
  aidb_db_close(db);  // nothing needs to be open
  fs::create_directories(dir / "backups/2026");

  EXPECT_EQ(Managed(dir.path(), dir / "docs/wal.log"), 1);
  EXPECT_EQ(Managed(dir.path(), dir / "docs/snapshots/x.snap"), 1);
  EXPECT_EQ(Managed(dir.path(), dir / "docs/new/deeper/file"), 1);
  EXPECT_EQ(Managed(dir.path(), "docs/MANIFEST"), 1);  // relative to db_dir
  EXPECT_EQ(Managed(dir.path(), dir / "backups/2026/x.snap"), 0);
  EXPECT_EQ(Managed(dir.path(), dir / "docs"), 0);  // the folder itself
  EXPECT_EQ(Managed(dir.path(), dir.path()), 0);
  EXPECT_EQ(Managed(dir.path(), "/tmp"), 0);  // outside
  EXPECT_EQ(Managed(dir.path(), dir / "x.snap"), 0);
  EXPECT_EQ(Managed(dir.path(), dir / "backups/../docs/wal.log"), 1);  // normalised
  int m = 0;
  EXPECT_EQ(aidb_db_path_is_managed(dir.path().c_str(), "x", nullptr, nullptr), AIDB_MISUSE);
  EXPECT_EQ(aidb_db_path_is_managed(nullptr, "x", &m, nullptr), AIDB_MISUSE);
}

TEST(Contract, SnapshotExportCopiesDurablyAndChecks) {
  TempDir dir;
  aidb_collection* c = nullptr;
  aidb_db* db = OpenDbWithDocs(dir / "db", &c);
  ASSERT_NE(db, nullptr);
  for (uint32_t i = 0; i < 5; ++i) ASSERT_EQ(Upsert(c, i, 4), AIDB_OK);
  char* snap = nullptr;
  AIDB_ASSERT_OK(aidb_db_snapshot(db, "docs", &snap, &_m));

  // Parent folders are created; info describes the copy.
  std::string dest = dir / "backups/a/b/docs.snap";
  aidb_snapshot_info info;
  std::memset(&info, 0, sizeof info);
  AIDB_ASSERT_OK(aidb_snapshot_export(snap, dest.c_str(), &info, &_m));
  EXPECT_STREQ(info.path, dest.c_str());
  EXPECT_EQ(info.count, 5u);
  EXPECT_EQ(info.lsn, 5u);
  EXPECT_EQ(info.size_bytes, FileSize(snap));
  EXPECT_EQ(ReadAll(dest), ReadAll(snap));
  EXPECT_FALSE(fs::exists(dest + ".tmp"));
  // Overwrites an existing copy; info may be NULL.
  AIDB_ASSERT_OK(aidb_snapshot_export(snap, dest.c_str(), nullptr, &_m));
  EXPECT_EQ(ReadAll(dest), ReadAll(snap));

  // The copy restores.
  AIDB_ASSERT_OK(aidb_db_restore(db, "docs", dest.c_str(), &_m));
  EXPECT_EQ(Count(c), 5u);

  // A damaged source leaves the destination as it was, and no temp file.
  std::string bad = dir / "bad.snap";
  std::string bytes = ReadAll(snap);
  bytes[bytes.size() / 2] ^= 0x5a;
  WriteAllBytes(bad, bytes);
  std::string before = ReadAll(dest);
  Err err;
  EXPECT_EQ(aidb_snapshot_export(bad.c_str(), dest.c_str(), nullptr, err.ptr()), AIDB_CORRUPTION);
  EXPECT_NE(err.str().find("bad.snap"), std::string::npos) << err.str();
  EXPECT_EQ(ReadAll(dest), before);
  EXPECT_FALSE(fs::exists(dest + ".tmp"));
  EXPECT_EQ(
      aidb_snapshot_export((dir / "missing").c_str(), (dir / "m2").c_str(), nullptr, err.ptr()),
      AIDB_NOT_FOUND);
  EXPECT_FALSE(fs::exists(dir / "m2"));
  // A destination below a regular file cannot be created.
  EXPECT_EQ(aidb_snapshot_export(snap, (dest + "/x").c_str(), nullptr, err.ptr()), AIDB_IO_ERROR);
  EXPECT_EQ(aidb_snapshot_export(nullptr, dest.c_str(), nullptr, nullptr), AIDB_MISUSE);
  EXPECT_EQ(aidb_snapshot_export(snap, nullptr, nullptr, nullptr), AIDB_MISUSE);
  aidb_free(snap);
  aidb_collection_close(c);
  aidb_db_close(db);
}

}  // namespace
