// aidb: the admin command over libaidb (no daemon needed). See `aidb --help`.
// Exit codes: 0 ok, 1 a problem was found or the operation failed, 2 usage.
#include <aidb.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "util.h"

namespace fs = std::filesystem;
using aidbd::FormatRfc3339;

namespace {

const char kUsage[] = R"(Usage:
  aidb info DIR [--json]                     collections, sizes, WAL state, snapshots
  aidb snapshot DIR COLLECTION               take a snapshot (truncates the WAL)
  aidb restore DIR COLLECTION SNAPSHOT       load SNAPSHOT (a file in the collection's
                                             snapshots/ folder or a path), replay newer
                                             WAL records, seal as the new baseline
  aidb wal-dump DIR COLLECTION [--from-lsn N]  print WAL records as JSON lines
  aidb verify DIR                            check every WAL record checksum and every
                                             snapshot file, without opening the database
Do not run info, snapshot, restore or wal-dump on a directory a running aidbd
serves: use its HTTP API instead.
Exit status: 0 ok, 1 a problem was found or the operation failed, 2 usage error.
)";

[[noreturn]] void Usage(const char* msg = nullptr) {
  if (msg) std::fprintf(stderr, "aidb: %s\n", msg);
  std::fputs(kUsage, stderr);
  std::exit(2);
}

int Fail(const char* what, int st, char* err) {
  std::fprintf(stderr, "aidb: %s: %s (%s)\n", what, err ? err : "failed", aidb_status_name(st));
  aidb_free(err);
  return 1;
}

void LogToStderr(void*, int level, const char* target, const char* event, const char* fields) {
  aidbd::LogLine(level, target, event, fields);
}

aidb_db* OpenDb(const std::string& dir, int* code) {
  if (!fs::is_directory(dir)) {
    std::fprintf(stderr, "aidb: %s is not a directory\n", dir.c_str());
    *code = 1;
    return nullptr;
  }
  aidb_db_options o;
  aidb_db_options_init(&o);
  o.create_if_missing = 0;
  aidb_db* db = nullptr;
  char* err = nullptr;
  int st = aidb_db_open(dir.c_str(), &o, &db, &err);
  if (st != AIDB_OK) {
    *code = Fail(("open " + dir).c_str(), st, err);
    return nullptr;
  }
  *code = 0;
  return db;
}

int Info(const std::string& dir, bool json) {
  int code;
  aidb_db* db = OpenDb(dir, &code);
  if (!db) return code;
  char** names = nullptr;
  size_t n = 0;
  char* err = nullptr;
  int st = aidb_db_list_collections(db, &names, &n, &err);
  if (st != AIDB_OK) {
    aidb_db_close(db);
    return Fail("list collections", st, err);
  }
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  int rc = 0;
  for (size_t i = 0; i < n; ++i) {
    aidb_collection* c = nullptr;
    st = aidb_db_open_collection(db, names[i], &c, &err);
    if (st != AIDB_OK) {
      rc = Fail(names[i], st, err);
      err = nullptr;
      continue;
    }
    aidb_collection_info info;
    aidb_collection_info_init(&info);
    aidb_wal_info wal;
    aidb_wal_info_init(&wal);
    aidb_snapshot_info* snaps = nullptr;
    size_t ns = 0;
    if ((st = aidb_collection_get_info(c, &info, &err)) != AIDB_OK ||
        (st = aidb_wal_stats(c, &wal, &err)) != AIDB_OK ||
        (st = aidb_db_list_snapshots(db, names[i], &snaps, &ns, &err)) != AIDB_OK) {
      rc = Fail(names[i], st, err);
      err = nullptr;
      aidb_collection_close(c);
      continue;
    }
    nlohmann::ordered_json j;
    j["name"] = info.name;
    j["dim"] = info.dim;
    j["metric"] = aidb_metric_name(info.metric);
    j["index"] = aidb_index_kind_name(info.index_kind);
    j["len"] = info.count;
    j["wal_size_bytes"] = wal.size_bytes;
    j["wal_last_lsn"] = wal.last_lsn;
    nlohmann::ordered_json sj = nlohmann::ordered_json::array();
    for (size_t k = 0; k < ns; ++k) {
      sj.push_back({{"file", fs::path(snaps[k].path).filename().string()},
                    {"lsn", snaps[k].lsn},
                    {"size_bytes", snaps[k].size_bytes},
                    {"created", FormatRfc3339(snaps[k].created_unix_ns)},
                    {"count", snaps[k].count}});
    }
    j["snapshots"] = sj;
    if (json) {
      out.push_back(j);
    } else {
      std::printf(
          "%s: dim=%u metric=%s index=%s len=%llu wal_size_bytes=%llu wal_last_lsn=%llu "
          "snapshots=%zu\n",
          info.name, info.dim, aidb_metric_name(info.metric), aidb_index_kind_name(info.index_kind),
          static_cast<unsigned long long>(info.count),
          static_cast<unsigned long long>(wal.size_bytes),
          static_cast<unsigned long long>(wal.last_lsn), ns);
      for (size_t k = 0; k < ns; ++k) {
        std::printf("  snapshot %s lsn=%llu size_bytes=%llu created=%s count=%llu\n",
                    fs::path(snaps[k].path).filename().c_str(),
                    static_cast<unsigned long long>(snaps[k].lsn),
                    static_cast<unsigned long long>(snaps[k].size_bytes),
                    FormatRfc3339(snaps[k].created_unix_ns).c_str(),
                    static_cast<unsigned long long>(snaps[k].count));
      }
    }
    aidb_free(snaps);
    aidb_collection_close(c);
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  else if (n == 0) std::printf("no collections in %s\n", dir.c_str());
  aidb_free_string_array(names, n);
  aidb_db_close(db);
  return rc;
}

int Snapshot(const std::string& dir, const std::string& name) {
  int code;
  aidb_db* db = OpenDb(dir, &code);
  if (!db) return code;
  char* path = nullptr;
  char* err = nullptr;
  int st = aidb_db_snapshot(db, name.c_str(), &path, &err);
  if (st != AIDB_OK) {
    aidb_db_close(db);
    return Fail(("snapshot " + name).c_str(), st, err);
  }
  aidb_snapshot_info info;
  std::memset(&info, 0, sizeof info);
  st = aidb_snapshot_verify(path, &info, &err);
  if (st == AIDB_OK) {
    std::printf("%s lsn=%llu size_bytes=%llu count=%llu\n", path,
                static_cast<unsigned long long>(info.lsn),
                static_cast<unsigned long long>(info.size_bytes),
                static_cast<unsigned long long>(info.count));
  }
  aidb_free(path);
  aidb_db_close(db);
  return st == AIDB_OK ? 0 : Fail("verify the new snapshot", st, err);
}

int Restore(const std::string& dir, const std::string& name, const std::string& snap) {
  int code;
  aidb_db* db = OpenDb(dir, &code);
  if (!db) return code;
  std::string path = snap;
  if (snap.find('/') != std::string::npos) path = fs::absolute(snap).string();
  char* err = nullptr;
  int st = aidb_db_restore(db, name.c_str(), path.c_str(), &err);
  if (st != AIDB_OK) {
    aidb_db_close(db);
    return Fail(("restore " + name).c_str(), st, err);
  }
  aidb_collection* c = nullptr;
  uint64_t count = 0;
  if (aidb_db_open_collection(db, name.c_str(), &c, nullptr) == AIDB_OK) {
    aidb_collection_count(c, &count, nullptr);
    aidb_collection_close(c);
  }
  std::printf("restored %s from %s: len=%llu\n", name.c_str(), snap.c_str(),
              static_cast<unsigned long long>(count));
  aidb_db_close(db);
  return 0;
}

int WalDump(const std::string& dir, const std::string& name, uint64_t from) {
  int code;
  aidb_db* db = OpenDb(dir, &code);
  if (!db) return code;
  aidb_collection* c = nullptr;
  char* err = nullptr;
  int st = aidb_db_open_collection(db, name.c_str(), &c, &err);
  if (st != AIDB_OK) {
    aidb_db_close(db);
    return Fail(("open collection " + name).c_str(), st, err);
  }
  aidb_wal_iterator* it = nullptr;
  st = aidb_wal_iterator_open(c, from, &it, &err);
  int rc = 0;
  if (st != AIDB_OK) {
    rc = Fail("open the WAL", st, err);
  } else {
    for (;;) {
      aidb_wal_entry e;
      aidb_wal_entry_init(&e);
      int has = 0;
      st = aidb_wal_iterator_next(it, &e, &has, &err);
      if (st != AIDB_OK) {
        rc = Fail("read the WAL", st, err);
        break;
      }
      if (!has) break;
      std::fwrite(e.json, 1, e.json_len, stdout);
      std::fputc('\n', stdout);
    }
    aidb_wal_iterator_close(it);
  }
  aidb_collection_close(c);
  aidb_db_close(db);
  if (std::fflush(stdout) != 0) return 1;
  return rc;
}

// Where file `which` (AIDB_PATH_*) of collection `name` lives; "" if `name`
// cannot be a collection.
std::string CollectionPath(const std::string& dir, const std::string& name, int which) {
  char* p = nullptr;
  if (aidb_db_collection_path(dir.c_str(), name.c_str(), which, &p, nullptr) != AIDB_OK) {
    return std::string();
  }
  std::string s = p;
  aidb_free(p);
  return s;
}

int Verify(const std::string& dir) {
  if (!fs::is_directory(dir)) {
    std::fprintf(stderr, "aidb: %s is not a directory\n", dir.c_str());
    return 1;
  }
  int problems = 0, checked = 0;
  std::vector<std::string> colls;  // names
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_directory()) continue;
    std::string config = CollectionPath(dir, e.path().filename().string(), AIDB_PATH_CONFIG);
    if (!config.empty() && fs::exists(config)) colls.push_back(e.path().filename().string());
  }
  if (ec) {
    std::fprintf(stderr, "aidb: list %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  std::sort(colls.begin(), colls.end());
  for (const auto& c : colls) {
    fs::path wal = CollectionPath(dir, c, AIDB_PATH_WAL);
    if (fs::exists(wal)) {
      ++checked;
      uint64_t records = 0, valid = 0;
      char* err = nullptr;
      int st = aidb_wal_verify(wal.c_str(), &records, &valid, &err);
      if (st != AIDB_OK) {
        ++problems;
        std::printf("FAIL %s: %s (%s)\n", wal.c_str(), err ? err : "", aidb_status_name(st));
        aidb_free(err);
      } else {
        uint64_t size = fs::file_size(wal, ec);
        // Zeros after the records are preallocated space (fsync mode), not
        // damage (src/storage/log_format.h).
        bool zeros = false;
        if (!ec && size > valid && (size - valid >= 28 || size % 4096 == 0)) {
          std::ifstream in(wal, std::ios::binary);
          in.seekg(static_cast<std::streamoff>(valid));
          zeros = true;
          char buf[65536];
          while (zeros && in.read(buf, sizeof buf).gcount() > 0) {
            for (std::streamsize i = 0; i < in.gcount(); ++i) zeros &= buf[i] == 0;
          }
        }
        std::printf("ok   %s records=%llu valid_bytes=%llu%s\n", wal.c_str(),
                    static_cast<unsigned long long>(records),
                    static_cast<unsigned long long>(valid),
                    ec || size <= valid ? ""
                    : zeros             ? " (preallocated zeros)"
                                        : " (torn tail)");
      }
    }
    fs::path snaps = CollectionPath(dir, c, AIDB_PATH_SNAPSHOTS);
    std::vector<fs::path> files;
    if (fs::is_directory(snaps)) {
      for (const auto& e : fs::directory_iterator(snaps, ec)) {
        if (e.is_regular_file() && e.path().extension() != ".tmp") files.push_back(e.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      ++checked;
      aidb_snapshot_info info;
      std::memset(&info, 0, sizeof info);
      char* err = nullptr;
      int st = aidb_snapshot_verify(f.c_str(), &info, &err);
      if (st != AIDB_OK) {
        ++problems;
        std::printf("FAIL %s: %s (%s)\n", f.c_str(), err ? err : "", aidb_status_name(st));
        aidb_free(err);
      } else {
        std::printf("ok   %s lsn=%llu count=%llu\n", f.c_str(),
                    static_cast<unsigned long long>(info.lsn),
                    static_cast<unsigned long long>(info.count));
      }
    }
  }
  std::printf("%d file(s) checked, %d problem(s)\n", checked, problems);
  return problems ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) Usage();
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (args[0] == "--version") {
    std::printf("aidb %s (libaidb %s)\n", AIDB_VERSION, aidb_version());
    return 0;
  }
  aidb_set_log_callback(LogToStderr, nullptr, AIDB_LOG_WARN);
  const std::string& cmd = args[0];
  if (cmd == "info") {
    if (args.size() == 2) return Info(args[1], false);
    if (args.size() == 3 && args[2] == "--json") return Info(args[1], true);
    Usage("info takes DIR [--json]");
  }
  if (cmd == "snapshot") {
    if (args.size() != 3) Usage("snapshot takes DIR COLLECTION");
    return Snapshot(args[1], args[2]);
  }
  if (cmd == "restore") {
    if (args.size() != 4) Usage("restore takes DIR COLLECTION SNAPSHOT");
    return Restore(args[1], args[2], args[3]);
  }
  if (cmd == "wal-dump") {
    uint64_t from = 0;
    std::vector<std::string> pos;
    for (size_t i = 1; i < args.size(); ++i) {
      std::string a = args[i];
      std::string v;
      if (a == "--from-lsn") {
        if (i + 1 >= args.size()) Usage("--from-lsn needs a number");
        v = args[++i];
      } else if (a.rfind("--from-lsn=", 0) == 0) {
        v = a.substr(11);
      } else if (a.rfind("--", 0) == 0) {
        Usage(("unknown option " + a).c_str());
      } else {
        pos.push_back(a);
        continue;
      }
      if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 19) {
        Usage("--from-lsn needs a non-negative integer");
      }
      from = std::strtoull(v.c_str(), nullptr, 10);
    }
    if (pos.size() != 2) Usage("wal-dump takes DIR COLLECTION [--from-lsn N]");
    return WalDump(pos[0], pos[1], from);
  }
  if (cmd == "verify") {
    if (args.size() != 2) Usage("verify takes DIR");
    return Verify(args[1]);
  }
  Usage(("unknown command '" + cmd + "'").c_str());
}
