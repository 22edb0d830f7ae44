#include "engine/database.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <vector>

#include "core/clock.h"
#include "storage/file.h"

namespace aidb::engine {

namespace {

std::string AbsolutePath(const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  char buf[4096];
  if (getcwd(buf, sizeof(buf)) == nullptr) return p;
  return std::string(buf) + "/" + p;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix.data(), suffix.size()) == 0;
}

// Whether every entry of `dir` is one of a collection folder's files (or
// their temporaries): what a create or a drop cut short by a crash leaves.
// Anything else (the database's LOCK file, a folder of the user's backups)
// is not ours to delete.
bool IsLeftoverCollectionDir(const std::string& dir, bool snapshots) {
  struct stat sb;
  if (::lstat(dir.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode)) return false;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  bool ours = true;
  while (struct dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (snapshots) {
      ours = n.rfind("snap-", 0) == 0 &&
             (EndsWith(n, ".aidbsnap") || n.find(".aidbsnap.tmp") != std::string::npos);
    } else if (n == kSnapshotDir) {
      ours = IsLeftoverCollectionDir(dir + "/" + n, true);
    } else {
      const std::string base = n.substr(0, n.find(".tmp"));
      ours = base == kConfigFile || base == kWalFile || base == std::string(kWalFile) + ".lsn" ||
             base == kManifestFile || base == kVectorsFile;
    }
    if (!ours) break;
  }
  ::closedir(d);
  return ours;
}

}  // namespace

Status Database::Open(const std::string& dir_in, const DatabaseOptions& opts,
                      std::unique_ptr<Database>* out) {
  if (dir_in.empty()) return Status::InvalidArgument("database directory is empty");
  std::string dir = AbsolutePath(dir_in);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  struct stat sb;
  if (::stat(dir.c_str(), &sb) != 0) {
    if (errno != ENOENT) return Status::IOErrorFromErrno("cannot stat " + dir, errno);
    if (!opts.create_if_missing)
      return Status::NotFound("database directory " + dir + " does not exist");
    // The new directories' entries must survive a power cut too.
    AIDB_RETURN_IF_ERROR(storage::CreateDirsDurable(dir));
  } else if (!S_ISDIR(sb.st_mode)) {
    return Status::InvalidArgument(dir + " is not a directory");
  }
  std::unique_ptr<Database> db(new Database());
  db->dir_ = dir;
  db->opts_ = opts;

  const std::string lock_path = dir + "/LOCK";
  db->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (db->lock_fd_ < 0) return Status::IOErrorFromErrno("cannot open " + lock_path, errno);
  if (::flock(db->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Status::IOError("database " + dir + " is in use by another process (" + lock_path +
                           " is locked)");
  }

  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Status::IOErrorFromErrno("cannot list " + dir, errno);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (!ValidateCollectionName(name).ok()) continue;
    if (storage::FileExists(dir + "/" + name + "/" + kConfigFile)) names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::shared_ptr<Collection> c;
    AIDB_RETURN_IF_ERROR(db->OpenCollection(name, &c).WithContext("collection '" + name + "'"));
    db->collections_[name] = std::move(c);
  }
  *out = std::move(db);
  return Status::OK();
}

Database::~Database() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, c] : collections_) (void)c->Flush();
  collections_.clear();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

CollectionOptions Database::OptionsFor(const CollectionConfig& config) const {
  CollectionOptions o;
  o.config = config;
  o.wal_path = CollectionDir(config.name) + "/" + kWalFile;
  o.vectors_path = CollectionDir(config.name) + "/" + kVectorsFile;
  o.wal.durability = opts_.durability;
  o.wal.batch_interval_ms = opts_.batch_interval_ms;
  o.wal.mmap_threshold = opts_.wal_mmap_threshold;
  o.wal.collection = config.name;
  return o;
}

void Database::InstallHook(const std::shared_ptr<Collection>& c) {
  const std::string cdir = CollectionDir(c->name());
  const std::string manifest = cdir + "/" + kManifestFile;
  c->SetCheckpointHook([manifest, cdir](const std::string& path, uint64_t lsn) {
    // Snapshots inside the collection folder are recorded relative to it, so
    // the data directory can be moved.
    std::string p = AbsolutePath(path);
    if (p.compare(0, cdir.size() + 1, cdir + "/") == 0) p = p.substr(cdir.size() + 1);
    nlohmann::json j;
    j["snapshot"] = p;
    j["lsn"] = lsn;
    return storage::AtomicWriteFile(manifest, j.dump() + "\n");
  });
}

Status Database::OpenCollection(const std::string& name, std::shared_ptr<Collection>* out) {
  const std::string cdir = CollectionDir(name);
  std::string text;
  AIDB_RETURN_IF_ERROR(storage::ReadFile(cdir + "/" + kConfigFile, &text));
  CollectionConfig config;
  AIDB_RETURN_IF_ERROR(ConfigFromJson(text, &config));
  if (config.name != name) {
    return Status::Corruption("collection.json names '" + config.name + "' in folder '" + name +
                              "'");
  }
  std::shared_ptr<Collection> c;
  AIDB_RETURN_IF_ERROR(Collection::Open(OptionsFor(config), &c));
  std::string manifest;
  Status s = storage::ReadFile(cdir + "/" + kManifestFile, &manifest);
  if (s.ok()) {
    auto j = nlohmann::json::parse(manifest, nullptr, false);
    if (j.is_discarded() || !j.contains("snapshot") || !j["snapshot"].is_string()) {
      return Status::Corruption(cdir + "/MANIFEST is damaged");
    }
    std::string snap = j["snapshot"].get<std::string>();
    if (snap.empty() || snap[0] != '/') snap = cdir + "/" + snap;
    AIDB_RETURN_IF_ERROR(c->LoadSnapshot(snap));
  } else if (!s.IsNotFound()) {
    return s;
  }
  RecoverStats stats;
  AIDB_RETURN_IF_ERROR(c->Recover(RecoverOptions{}, &stats));
  InstallHook(c);
  *out = std::move(c);
  return Status::OK();
}

Status Database::CreateCollection(const CollectionConfig& config,
                                  std::shared_ptr<Collection>* out) {
  AIDB_RETURN_IF_ERROR(ValidateConfig(config));
  std::lock_guard<std::mutex> lock(mu_);
  if (collections_.count(config.name)) {
    return Status::AlreadyExists("collection '" + config.name + "' already exists");
  }
  const std::string cdir = CollectionDir(config.name);
  if (::mkdir(cdir.c_str(), 0755) != 0) {
    if (errno == EEXIST) {
      // Left over from a crash during create or drop: start afresh. Only
      // then: the name may be the LOCK file's or a folder of the user's.
      if (!IsLeftoverCollectionDir(cdir, false)) {
        return Status::InvalidArgument("cannot create collection '" + config.name + "': " + cdir +
                                       " exists and is not a collection's folder");
      }
      AIDB_RETURN_IF_ERROR(storage::RemoveAll(cdir));
      if (::mkdir(cdir.c_str(), 0755) != 0) return Status::IOErrorFromErrno("mkdir " + cdir, errno);
    } else {
      return Status::IOErrorFromErrno("mkdir " + cdir, errno);
    }
  }
  Status s = storage::CreateDirs(cdir + "/snapshots");
  std::shared_ptr<Collection> c;
  if (s.ok()) s = Collection::Open(OptionsFor(config), &c);
  // The config file is published last: a folder without it is not a collection.
  if (s.ok()) s = storage::AtomicWriteFile(cdir + "/" + kConfigFile, ConfigToJson(config));
  if (s.ok()) s = storage::FsyncDir(dir_);
  if (!s.ok()) {
    c.reset();
    (void)storage::RemoveAll(cdir);
    return s;
  }
  InstallHook(c);
  collections_[config.name] = c;
  if (out) *out = std::move(c);
  return Status::OK();
}

Status Database::GetCollection(const std::string& name, std::shared_ptr<Collection>* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) {
    AIDB_RETURN_IF_ERROR(ValidateCollectionName(name));
    return Status::NotFound("collection '" + name + "' not found");
  }
  *out = it->second;
  return Status::OK();
}

Status Database::DropCollection(const std::string& name) {
  std::shared_ptr<Collection> c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = collections_.find(name);
    if (it == collections_.end()) {
      AIDB_RETURN_IF_ERROR(ValidateCollectionName(name));
      return Status::NotFound("collection '" + name + "' not found");
    }
    c = it->second;
    // Unpublish first (config removed), then delete the folder.
    const std::string cdir = CollectionDir(name);
    if (::unlink((cdir + "/" + kConfigFile).c_str()) != 0 && errno != ENOENT) {
      return Status::IOErrorFromErrno("cannot remove " + cdir + "/" + kConfigFile, errno);
    }
    c->MarkDropped();
    collections_.erase(it);
    AIDB_RETURN_IF_ERROR(storage::FsyncDir(cdir));
  }
  return storage::RemoveAll(CollectionDir(name));
}

std::vector<std::string> Database::ListCollections() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, c] : collections_) names.push_back(name);
  return names;
}

std::string Database::NewSnapshotPath(const std::string& name, uint64_t lsn) const {
  const int64_t ns = UnixNowNs();
  char buf[96];
  std::snprintf(buf, sizeof(buf), "/snap-%020llu-%019lld.aidbsnap",
                static_cast<unsigned long long>(lsn), static_cast<long long>(ns));
  return SnapshotDir(name) + buf;
}

Status Database::Snapshot(const std::string& name, std::string* path) {
  std::shared_ptr<Collection> c;
  AIDB_RETURN_IF_ERROR(GetCollection(name, &c));
  AIDB_RETURN_IF_ERROR(storage::CreateDirs(SnapshotDir(name)));
  std::string p = NewSnapshotPath(name, c->WalStats().last_lsn);
  AIDB_RETURN_IF_ERROR(c->SnapshotTo(p));
  if (path) *path = p;
  return Status::OK();
}

Status Database::ListSnapshots(const std::string& name, std::vector<SnapshotInfo>* out) const {
  std::shared_ptr<Collection> c;
  AIDB_RETURN_IF_ERROR(GetCollection(name, &c));
  out->clear();
  const std::string sdir = SnapshotDir(name);
  DIR* d = ::opendir(sdir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return Status::OK();
    return Status::IOErrorFromErrno("cannot list " + sdir, errno);
  }
  std::vector<std::string> files;
  while (struct dirent* e = ::readdir(d)) {
    std::string f = e->d_name;
    if (f.size() > 9 && f.compare(f.size() - 9, 9, ".aidbsnap") == 0) files.push_back(f);
  }
  ::closedir(d);
  for (const std::string& f : files) {
    SnapshotInfo info;
    Status s = ReadSnapshotInfo(sdir + "/" + f, &info);
    if (!s.ok()) continue;  // damaged files are reported by `aidb verify`
    out->push_back(std::move(info));
  }
  std::sort(out->begin(), out->end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return a.created_unix_ns != b.created_unix_ns ? a.created_unix_ns < b.created_unix_ns
                                                  : a.path < b.path;
  });
  return Status::OK();
}

Status Database::Restore(const std::string& name, const std::string& path) {
  std::shared_ptr<Collection> c;
  AIDB_RETURN_IF_ERROR(GetCollection(name, &c));
  if (path.empty()) return Status::InvalidArgument("snapshot path is empty");
  std::string full = path[0] == '/' ? path : SnapshotDir(name) + "/" + path;
  AIDB_RETURN_IF_ERROR(storage::CreateDirs(SnapshotDir(name)));
  return c->Restore(full, NewSnapshotPath(name, c->WalStats().last_lsn));
}

}  // namespace aidb::engine
