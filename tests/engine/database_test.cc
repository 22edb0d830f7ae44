// engine::Database: a directory of collections, brought back on open from
// the latest snapshot (MANIFEST) plus WAL replay; collection.json.
#include "engine/database.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "temp_dir.h"

namespace aidb::engine {
namespace {

CollectionConfig Config(const std::string& name, IndexKind kind) {
  CollectionConfig c;
  c.name = name;
  c.index.dim = 3;
  c.index.metric = Metric::kDot;
  c.index.kind = kind;
  return c;
}

void Put(Collection& c, int i) {
  char id[40];
  std::snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
  const char* ids[] = {id};
  const float v[3] = {static_cast<float>(i), 1.f, -1.f};
  ASSERT_TRUE(c.Upsert(1, ids, v, 3, nullptr).ok());
}

std::unique_ptr<Database> OpenDb(const std::string& dir) {
  std::unique_ptr<Database> db;
  Status s = Database::Open(dir, DatabaseOptions{}, &db);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return db;
}

TEST(DatabaseTest, ReopenLoadsTheLatestSnapshotThenReplaysTheWal) {
  aidbtest::TempDir tmp;
  std::string snap;
  {
    auto db = OpenDb(tmp.path());
    std::shared_ptr<Collection> c;
    ASSERT_TRUE(db->CreateCollection(Config("h", IndexKind::kHnsw), &c).ok());
    for (int i = 1; i <= 10; ++i) Put(*c, i);
    ASSERT_TRUE(db->Snapshot("h", &snap).ok());
    for (int i = 11; i <= 15; ++i) Put(*c, i);
    ASSERT_TRUE(db->CreateCollection(Config("f", IndexKind::kFlat), nullptr).ok());
  }
  auto db = OpenDb(tmp.path());
  EXPECT_EQ(db->ListCollections(), (std::vector<std::string>{"f", "h"}));
  std::shared_ptr<Collection> c;
  ASSERT_TRUE(db->GetCollection("h", &c).ok());
  EXPECT_EQ(c->Count(), 15u);
  EXPECT_EQ(c->config().index.kind, IndexKind::kHnsw);
  EXPECT_EQ(c->WalStats().last_lsn, 15u);
  std::vector<SnapshotInfo> snaps;
  ASSERT_TRUE(db->ListSnapshots("h", &snaps).ok());
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].path, snap);
  EXPECT_EQ(snaps[0].count, 10u);
  EXPECT_EQ(snaps[0].lsn, 10u);
}

TEST(DatabaseTest, DropRemovesTheCollection) {
  aidbtest::TempDir tmp;
  auto db = OpenDb(tmp.path());
  std::shared_ptr<Collection> c;
  ASSERT_TRUE(db->CreateCollection(Config("x", IndexKind::kFlat), &c).ok());
  EXPECT_TRUE(db->CreateCollection(Config("x", IndexKind::kFlat), nullptr).IsAlreadyExists());
  ASSERT_TRUE(db->DropCollection("x").ok());
  EXPECT_TRUE(c->Usable().IsNotFound());
  EXPECT_TRUE(db->GetCollection("x", &c).IsNotFound());
  db.reset();
  db = OpenDb(tmp.path());
  EXPECT_TRUE(db->ListCollections().empty());
}

// A create reuses a folder only when a crashed create or drop left it: the
// name "LOCK" (the database's lock file) or a folder of the user's (where
// docs export backups, e.g. "backups/") is refused and left as it was.
// Before, create deleted either: LOCK became a folder and the directory
// could not be opened again.
TEST(DatabaseTest, CreateNeverDeletesWhatIsNotACollectionFolder) {
  aidbtest::TempDir tmp;
  namespace fs = std::filesystem;
  {
    auto db = OpenDb(tmp.path());
    Status s = db->CreateCollection(Config("LOCK", IndexKind::kFlat), nullptr);
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_NE(s.message().find("not a collection's folder"), std::string::npos) << s.ToString();
    EXPECT_TRUE(fs::is_regular_file(tmp / "LOCK"));
    fs::create_directories(tmp / "backups");
    { std::ofstream(tmp / "backups/docs.aidbsnap") << "backup"; }
    EXPECT_TRUE(
        db->CreateCollection(Config("backups", IndexKind::kFlat), nullptr).IsInvalidArgument());
    EXPECT_TRUE(fs::exists(tmp / "backups/docs.aidbsnap"));
    EXPECT_TRUE(db->ListCollections().empty());
    // What a drop cut short leaves (no collection.json) is started afresh.
    fs::create_directories(tmp / "old/snapshots");
    for (const char* f : {"wal.log", "wal.log.lsn", "MANIFEST", "vectors.bin",
                          "collection.json.tmp.7", "snapshots/snap-00000000000000000001-1.aidbsnap",
                          "snapshots/snap-00000000000000000002-2.aidbsnap.tmp"}) {
      std::ofstream(tmp / (std::string("old/") + f)) << "x";
    }
    std::shared_ptr<Collection> c;
    ASSERT_TRUE(db->CreateCollection(Config("old", IndexKind::kFlat), &c).ok());
    EXPECT_EQ(c->Count(), 0u);
    EXPECT_FALSE(fs::exists(tmp / "old/MANIFEST"));
  }
  auto db = OpenDb(tmp.path());  // LOCK is still the lock file
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->ListCollections(), (std::vector<std::string>{"old"}));
}

TEST(DatabaseTest, ConfigJsonRoundTripsWithCanonicalNamesOnly) {
  CollectionConfig in = Config("cfg", IndexKind::kHnsw);
  in.index.metric = Metric::kEuclidean;
  in.index.hnsw.m = 12;
  in.index.hnsw.ef_construction = 99;
  in.index.hnsw.ef_search = 40;
  const std::string json = ConfigToJson(in);
  EXPECT_NE(json.find("\"metric\": \"euclidean\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"index\": \"hnsw\""), std::string::npos) << json;
  CollectionConfig out;
  ASSERT_TRUE(ConfigFromJson(json, &out).ok());
  EXPECT_EQ(out.name, in.name);
  EXPECT_EQ(out.index.dim, in.index.dim);
  EXPECT_EQ(out.index.metric, in.index.metric);
  EXPECT_EQ(out.index.kind, in.index.kind);
  EXPECT_EQ(out.index.hnsw.m, 12u);
  EXPECT_EQ(out.index.hnsw.ef_construction, 99u);
  EXPECT_EQ(out.index.hnsw.ef_search, 40u);

  // The file is ours: the C API's aliases ("l2") are not accepted in it.
  std::string alias = json;
  alias.replace(alias.find("euclidean"), 9, "l2");
  EXPECT_TRUE(ConfigFromJson(alias, &out).IsCorruption());
  // Missing HNSW parameters take the defaults.
  CollectionConfig fresh;
  ASSERT_TRUE(ConfigFromJson(R"({"name":"d","dim":2,"metric":"dot","index":"hnsw"})", &fresh).ok());
  EXPECT_EQ(fresh.index.hnsw.m, kDefaultHnswM);
  EXPECT_EQ(fresh.index.hnsw.ef_construction, kDefaultHnswEfConstruction);
  EXPECT_TRUE(ConfigFromJson("not json", &out).IsCorruption());
}

}  // namespace
}  // namespace aidb::engine
