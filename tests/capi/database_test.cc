// Databases: a directory of collections that comes back by itself.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"

using namespace aidbtest;

namespace {

constexpr uint32_t kDim = 6;

aidb_db* OpenDb(const std::string& dir) {
  aidb_db* db = nullptr;
  char* err = nullptr;
  aidb_db_options o;
  aidb_db_options_init(&o);
  o.wal_mmap_threshold = 1024;
  int rc = aidb_db_open(dir.c_str(), &o, &db, &err);
  EXPECT_EQ(rc, AIDB_OK) << (err ? err : "");
  aidb_free(err);
  return db;
}

aidb_collection* Create(aidb_db* db, const char* name, int kind = AIDB_INDEX_FLAT) {
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = name;
  o.dim = kDim;
  o.index_kind = kind;
  aidb_collection* c = nullptr;
  char* err = nullptr;
  int rc = aidb_db_create_collection(db, &o, &c, &err);
  EXPECT_EQ(rc, AIDB_OK) << (err ? err : "");
  aidb_free(err);
  return c;
}

std::vector<std::string> List(aidb_db* db) {
  char** names = nullptr;
  size_t n = 0;
  EXPECT_EQ(aidb_db_list_collections(db, &names, &n, nullptr), AIDB_OK);
  std::vector<std::string> out(names, names + n);
  aidb_free_string_array(names, n);
  return out;
}

TEST(Database, CollectionsComeBackAfterReopen) {
  TempDir dir;
  {
    aidb_db* db = OpenDb(dir.path());
    aidb_collection* a = Create(db, "alpha");
    aidb_collection* b = Create(db, "beta");
    for (uint32_t i = 0; i < 20; ++i) ASSERT_EQ(Upsert(a, i, kDim, "{\"c\":\"a\"}"), AIDB_OK);
    for (uint32_t i = 0; i < 7; ++i) ASSERT_EQ(Upsert(b, i, kDim), AIDB_OK);
    Err err;
    EXPECT_EQ(aidb_db_create_collection(db, nullptr, nullptr, err.ptr()), AIDB_MISUSE);
    aidb_collection_options o;
    aidb_collection_options_init(&o);
    o.name = "alpha";
    o.dim = 3;
    EXPECT_EQ(aidb_db_create_collection(db, &o, nullptr, err.ptr()), AIDB_ALREADY_EXISTS);
    o.name = "../escape";
    EXPECT_EQ(aidb_db_create_collection(db, &o, nullptr, err.ptr()), AIDB_INVALID_ARGUMENT);
    aidb_collection_close(a);
    aidb_collection_close(b);
    aidb_db_close(db);
  }
  aidb_db* db = OpenDb(dir.path());
  EXPECT_EQ(List(db), (std::vector<std::string>{"alpha", "beta"}));
  aidb_collection* a = nullptr;
  AIDB_ASSERT_OK(aidb_db_open_collection(db, "alpha", &a, &_m));
  EXPECT_EQ(Count(a), 20u);
  aidb_collection_info info;
  aidb_collection_info_init(&info);
  AIDB_ASSERT_OK(aidb_collection_get_info(a, &info, &_m));
  EXPECT_STREQ(info.name, "alpha");
  EXPECT_EQ(info.dim, kDim);
  EXPECT_EQ(info.count, 20u);
  Err err;
  aidb_collection* missing = nullptr;
  EXPECT_EQ(aidb_db_open_collection(db, "gamma", &missing, err.ptr()), AIDB_NOT_FOUND);
  aidb_collection_close(a);
  aidb_db_close(db);
}

TEST(Database, SnapshotBecomesTheBaselineForRestart) {
  TempDir dir;
  {
    aidb_db* db = OpenDb(dir.path());
    aidb_collection* c = Create(db, "docs");
    for (uint32_t i = 0; i < 30; ++i) ASSERT_EQ(Upsert(c, i, kDim), AIDB_OK);
    char* path = nullptr;
    AIDB_ASSERT_OK(aidb_db_snapshot(db, "docs", &path, &_m));
    ASSERT_NE(path, nullptr);
    EXPECT_EQ(FileSize(path) > 0 && FileSize(path) != UINT64_MAX, true);
    aidb_free(path);
    EXPECT_EQ(FileSize(dir / "docs/wal.log"), 0u);
    for (uint32_t i = 30; i < 35; ++i) ASSERT_EQ(Upsert(c, i, kDim), AIDB_OK);
    aidb_collection_close(c);
    aidb_db_close(db);
  }
  aidb_db* db = OpenDb(dir.path());
  aidb_collection* c = nullptr;
  AIDB_ASSERT_OK(aidb_db_open_collection(db, "docs", &c, &_m));
  EXPECT_EQ(Count(c), 35u);
  aidb_snapshot_info* infos = nullptr;
  size_t n = 0;
  AIDB_ASSERT_OK(aidb_db_list_snapshots(db, "docs", &infos, &n, &_m));
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(infos[0].lsn, 30u);
  EXPECT_EQ(infos[0].count, 30u);
  aidb_free(infos);
  aidb_collection_close(c);
  aidb_db_close(db);
}

TEST(Database, RestoreRunsTheRunbookWorkflowInOneCall) {
  TempDir dir;
  aidb_db* db = OpenDb(dir.path());
  aidb_collection* c = Create(db, "docs");
  for (uint32_t i = 0; i < 10; ++i) ASSERT_EQ(Upsert(c, i, kDim), AIDB_OK);
  char* path = nullptr;
  AIDB_ASSERT_OK(aidb_db_snapshot(db, "docs", &path, &_m));
  std::string snap = path;
  aidb_free(path);
  for (uint32_t i = 10; i < 15; ++i) ASSERT_EQ(Upsert(c, i, kDim), AIDB_OK);
  // Restoring = snapshot + the WAL after it, then a new baseline.
  AIDB_ASSERT_OK(aidb_db_restore(db, "docs", snap.c_str(), &_m));
  EXPECT_EQ(Count(c), 15u);
  EXPECT_EQ(FileSize(dir / "docs/wal.log"), 0u);
  Err err;
  EXPECT_EQ(aidb_db_restore(db, "docs", "nope.aidbsnap", err.ptr()), AIDB_NOT_FOUND);
  EXPECT_EQ(Count(c), 15u);
  aidb_collection_close(c);
  aidb_db_close(db);
  db = OpenDb(dir.path());
  AIDB_ASSERT_OK(aidb_db_open_collection(db, "docs", &c, &_m));
  EXPECT_EQ(Count(c), 15u);
  aidb_collection_close(c);
  aidb_db_close(db);
}

TEST(Database, DropRemovesFilesAndInvalidatesHandles) {
  TempDir dir;
  aidb_db* db = OpenDb(dir.path());
  aidb_collection* c = Create(db, "gone");
  ASSERT_EQ(Upsert(c, 1, kDim), AIDB_OK);
  AIDB_ASSERT_OK(aidb_db_drop_collection(db, "gone", &_m));
  EXPECT_EQ(FileSize(dir / "gone/wal.log"), UINT64_MAX);
  Err err;
  EXPECT_EQ(Upsert(c, 2, kDim), AIDB_NOT_FOUND);
  uint64_t n = 0;
  EXPECT_EQ(aidb_collection_count(c, &n, nullptr), AIDB_NOT_FOUND);
  aidb_collection_info info;
  aidb_collection_info_init(&info);
  EXPECT_EQ(aidb_collection_get_info(c, &info, nullptr), AIDB_NOT_FOUND);
  aidb_wal_info w;
  aidb_wal_info_init(&w);
  EXPECT_EQ(aidb_wal_stats(c, &w, nullptr), AIDB_NOT_FOUND);
  EXPECT_EQ(aidb_db_drop_collection(db, "gone", err.ptr()), AIDB_NOT_FOUND);
  EXPECT_TRUE(List(db).empty());
  aidb_collection_close(c);
  // A second process (handle) cannot open the same directory.
  aidb_db* other = nullptr;
  EXPECT_EQ(aidb_db_open(dir.path().c_str(), nullptr, &other, err.ptr()), AIDB_IO_ERROR);
  aidb_db_close(db);
}

}  // namespace
