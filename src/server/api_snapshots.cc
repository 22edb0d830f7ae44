// Snapshot routes (take, list, restore; paths confined to the data dir) and
// the WAL change feed (NDJSON, streamed).
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "api.h"
#include "confined.h"
#include "render.h"

namespace aidbd {

namespace fs = std::filesystem;

namespace {

constexpr size_t kWalPieceBytes = 64 * 1024;

// Snapshot paths a client may name (docs/operations.md, "Security and limits").
constexpr size_t kMaxPathBytes = 1024;
constexpr size_t kMaxPathDepth = 16;

// One component of a snapshot path: 1 to 255 of A-Z a-z 0-9 . _ - and not
// "." or "..". Percent signs, backslashes, spaces, control characters and
// every non-ASCII byte (look-alike dots and slashes, overlong UTF-8) are
// refused rather than interpreted.
bool SafeComponent(std::string_view c) {
  if (c.empty() || c.size() > 255 || c == "." || c == "..") return false;
  for (char ch : c) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-')) {
      return false;
    }
  }
  return true;
}

// Streams a collection's WAL as NDJSON, one record a line.
class WalStream : public BodyStream {
 public:
  WalStream(std::shared_ptr<Api::Coll> coll, aidb_wal_iterator* it)
      : coll_(std::move(coll)), it_(it) {}
  ~WalStream() override { aidb_wal_iterator_close(it_); }

  // Fills `out` with up to ~64 KiB of lines. Returns false at the end. With
  // `first`, an error is returned as a status instead of an error line.
  bool Fill(std::string* out, bool first, int* status, std::string* error) {
    while (out->size() < kWalPieceBytes) {
      aidb_wal_entry e;
      aidb_wal_entry_init(&e);
      int has = 0;
      ErrMsg err;
      int st = aidb_wal_iterator_next(it_, &e, &has, err.out());
      if (st != AIDB_OK) {
        if (first && out->empty()) {
          *status = st;
          *error = err.str(st);
          return false;
        }
        // The head went out already: end with an error line the reader sees.
        out->append(Dump(Json{{"error", err.str(st)}})).push_back('\n');
        return false;
      }
      if (!has) return false;
      out->append(e.json, e.json_len).push_back('\n');
    }
    return true;
  }

  bool Next(std::string* out) override {
    int st = 0;
    std::string error;
    return Fill(out, false, &st, &error);
  }

 private:
  std::shared_ptr<Api::Coll> coll_;  // keeps the handle open while streaming
  aidb_wal_iterator* it_;
};

}  // namespace

std::string Api::ConfinePath(const std::string& user_path, bool must_exist) const {
  if (user_path.empty()) Fail(400, "'path' must not be empty");
  if (user_path.find('\0') != std::string::npos) Fail(400, "'path' must not contain NUL");
  if (user_path.size() > kMaxPathBytes) {
    Fail(400, "'path' is longer than " + std::to_string(kMaxPathBytes) + " bytes");
  }
  // No "." or ".." anywhere, even where they would cancel out.
  for (size_t i = 0; i <= user_path.size();) {
    size_t j = std::min(user_path.find('/', i), user_path.size());
    std::string_view part = std::string_view(user_path).substr(i, j - i);
    if (part == "." || part == "..") {
      Fail(400, "snapshot paths must stay inside the data directory ('.' and '..' are refused)");
    }
    i = j + 1;
  }
  fs::path root(config_.data_dir);
  fs::path p(user_path);
  if (p.is_relative()) p = root / p;
  p = p.lexically_normal();
  fs::path rel = p.lexically_relative(root);
  if (rel.empty() || rel == "." || *rel.begin() == ".." || !p.has_filename()) {
    Fail(400, "snapshot paths must stay inside the data directory");
  }
  size_t depth = 0;
  for (const auto& part : rel) {
    if (!SafeComponent(part.native())) {
      Fail(400, "snapshot path components are 1 to 255 of A-Z a-z 0-9 . _ - (not . or ..)");
    }
    if (++depth > kMaxPathDepth) {
      Fail(400, "snapshot paths are at most " + std::to_string(kMaxPathDepth) + " folders deep");
    }
  }
  // Symlinks are refused anywhere on the path. This early look gives a clear
  // answer before any work; the opens (OpenConfined*) refuse them again, as
  // part of the open itself, for a symlink swapped in after this check.
  std::error_code ec;
  fs::path walk = root;
  for (const auto& part : rel) {
    walk /= part;
    auto st = fs::symlink_status(walk, ec);
    if (ec || st.type() == fs::file_type::not_found) break;
    if (st.type() == fs::file_type::symlink) {
      Fail(400, "snapshot paths must not contain symlinks ('" +
                    walk.lexically_relative(root).string() + "' is one)");
    }
  }
  if (must_exist) return p.string();
  // Never write into a collection's own folder (its WAL, MANIFEST, config).
  int managed = 0;
  ErrMsg err;
  Check(aidb_db_path_is_managed(config_.data_dir.c_str(), p.c_str(), &managed, err.out()), err);
  if (managed) Fail(400, "snapshot paths must not point into a collection's folder");
  if (fs::is_directory(fs::symlink_status(p, ec))) Fail(400, "'path' names a directory");
  return p.string();
}

namespace {

// The data directory, opened to resolve confined paths from.
UniqueFd OpenRoot(const std::string& data_dir) {
  UniqueFd root(::open(data_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) {
    Fail(500, "cannot open the data directory '" + data_dir + "': " + std::strerror(errno));
  }
  return root;
}

int ConfinedStatus(int neg_errno) {
  switch (-neg_errno) {
    case ENOENT: return 404;
    case ELOOP:
    case EXDEV:
    case ENOTDIR: return 400;
    default: return 500;
  }
}

// `abs` (checked by ConfinePath) relative to the data dir.
std::string RelativeTo(const std::string& data_dir, const std::string& abs) {
  return fs::path(abs).lexically_relative(fs::path(data_dir)).string();
}

// Opens the snapshot file `abs` for reading, below the data dir with no
// symlink on the way: 404 if missing or not a regular file, 400 for a symlink.
UniqueFd OpenConfinedFile(const std::string& data_dir, const std::string& abs,
                          const std::string& user_path) {
  UniqueFd root = OpenRoot(data_dir);
  UniqueFd f(OpenBeneath(root.get(), RelativeTo(data_dir, abs), O_RDONLY | O_NOCTTY | O_NONBLOCK));
  if (!f.valid()) {
    if (f.get() == -ENOENT || f.get() == -ENOTDIR) {
      Fail(404, "snapshot '" + user_path + "' not found");
    }
    Fail(ConfinedStatus(f.get()),
         "cannot open snapshot '" + user_path + "': " + ConfinedError(f.get()));
  }
  struct stat st;
  if (::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    Fail(404, "snapshot '" + user_path + "' not found");
  }
  return f;
}

// Opens (making missing folders) the folder `abs` is to be written in, below
// the data dir with no symlink on the way; the file itself must not be a
// directory or a symlink.
UniqueFd OpenConfinedParent(const std::string& data_dir, const std::string& abs,
                            const std::string& user_path) {
  UniqueFd root = OpenRoot(data_dir);
  fs::path rel = RelativeTo(data_dir, abs);
  std::string failed_at;
  UniqueFd dir(OpenDirsBeneath(root.get(), rel.parent_path().string(), true, &failed_at));
  if (!dir.valid()) {
    Fail(ConfinedStatus(dir.get()) == 404 ? 500 : ConfinedStatus(dir.get()),
         "cannot open the folder of '" + user_path + "' at '" + failed_at +
             "': " + ConfinedError(dir.get()));
  }
  struct stat st;
  if (::fstatat(dir.get(), rel.filename().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) Fail(400, "'path' names a directory");
    if (S_ISLNK(st.st_mode)) {
      Fail(400, "cannot write '" + user_path + "': " + ConfinedError(-ELOOP));
    }
  }
  return dir;
}

// The library's message with the descriptor path it was given put back to
// the path the client named.
void CheckVia(int status, const ErrMsg& err, const std::string& via, const std::string& real) {
  if (status == AIDB_OK) return;
  std::string msg = err.str(status);
  for (size_t at = msg.find(via); at != std::string::npos; at = msg.find(via, at + real.size())) {
    msg.replace(at, via.size(), real);
  }
  Fail(HttpStatusFor(status), msg);
}

}  // namespace

void Api::Snapshot(HttpRequest* req, HttpResponse* resp) {
  const std::string& name = req->params[0];
  element body = ParseBody(req, true);
  std::string target;
  std::string user_target;
  if (auto p = Field(body, "path"); p && !p->is_null()) {
    user_target = ToString(*p, "path");
    target = ConfinePath(user_target, false);
  }
  auto c = handles_.Get(name);
  char* path_out = nullptr;
  ErrMsg err;
  Check(aidb_db_snapshot(db_, name.c_str(), &path_out, err.out()), err);
  std::string snap = path_out ? path_out : "";
  aidb_free(path_out);
  aidb_snapshot_info info;
  std::memset(&info, 0, sizeof info);
  if (target.empty()) {
    Check(aidb_snapshot_verify(snap.c_str(), &info, err.out()), err);
  } else {
    // A checked, durable copy: the library's job, in the folder opened here
    // (missing parents made) and reached through its descriptor, so that a
    // symlink swapped in on the way after the checks cannot redirect it.
    UniqueFd dir = OpenConfinedParent(config_.data_dir, target, user_target);
    std::string via = FdPath(dir.get());
    std::string dest = via + "/" + fs::path(target).filename().string();
    CheckVia(aidb_snapshot_export(snap.c_str(), dest.c_str(), &info, err.out()), err, via,
             fs::path(target).parent_path().string());
  }
  Json j = SnapshotJson(info);
  if (!target.empty()) {
    j["path"] = target;
    j["file"] = fs::path(target).filename().string();
  }
  j["collection"] = name;
  j["snapshot"] = fs::path(snap).filename().string();
  if (!target.empty()) j["copied_to"] = target;
  Json coll = CollectionJson(c->handle);
  j["wal_size_bytes"] = coll["wal_size_bytes"];
  j["wal_last_truncate"] = coll["wal_last_truncate"];
  Reply(resp, 200, j);
}

void Api::ListSnapshots(HttpRequest* req, HttpResponse* resp) {
  const std::string& name = req->params[0];
  aidb_snapshot_info* infos = nullptr;
  size_t count = 0;
  ErrMsg err;
  int st = aidb_db_list_snapshots(db_, name.c_str(), &infos, &count, err.out());
  if (st == AIDB_NOT_FOUND) Fail(404, "collection '" + name + "' not found");
  Check(st, err);
  Json arr = Json::array();
  for (size_t i = 0; i < count; ++i) arr.push_back(SnapshotJson(infos[i]));
  aidb_free(infos);
  Reply(resp, 200, Json{{"collection", name}, {"snapshots", std::move(arr)}});
}

void Api::Restore(HttpRequest* req, HttpResponse* resp) {
  const std::string& name = req->params[0];
  element body = ParseBody(req, false);
  auto s = FieldAny(body, {"snapshot", "path", "file"});
  if (!s) Fail(400, "'snapshot' is required");
  std::string snap = ToString(*s, "snapshot");
  handles_.Get(name);  // 404 for an unknown collection
  ErrMsg err;
  std::string own = config_.data_dir + "/" + name + "/";
  std::string path;
  if (snap.find('/') == std::string::npos) {
    // A file in the collection's snapshots/ folder, confined like any path
    // (a symlink there must not lead out either).
    char* dir = nullptr;
    Check(aidb_db_collection_path(config_.data_dir.c_str(), name.c_str(), AIDB_PATH_SNAPSHOTS, &dir,
                                  err.out()),
          err);
    std::string folder = dir;
    aidb_free(dir);
    path = ConfinePath(folder + "/" + snap, true);
  } else {
    path = ConfinePath(snap, true);
  }
  // Not another collection's snapshot (or any file in its folder): export it
  // out of there first (POST .../snapshot with "path").
  int managed = 0;
  Check(aidb_db_path_is_managed(config_.data_dir.c_str(), path.c_str(), &managed, err.out()), err);
  if (managed && path.compare(0, own.size(), own) != 0) {
    Fail(400, "snapshot '" + snap + "' lies in another collection's folder");
  }
  // Read through the descriptor opened here: a symlink swapped in after the
  // checks cannot lead the library elsewhere.
  UniqueFd file = OpenConfinedFile(config_.data_dir, path, snap);
  std::string via = FdPath(file.get());
  CheckVia(aidb_db_restore(db_, name.c_str(), via.c_str(), err.out()), err, via, path);
  handles_.Forget(name);
  auto c = handles_.Get(name);
  Json j = CollectionJson(c->handle);
  j["restored_from"] = snap;
  Reply(resp, 200, j);
}

void Api::Wal(HttpRequest* req, HttpResponse* resp) {
  uint64_t from = 0;
  std::string v;
  if (req->QueryParam("from_lsn", &v)) {
    if (v.empty() || v.size() > 20 || !std::all_of(v.begin(), v.end(), ::isdigit)) {
      Fail(400, "'from_lsn' must be a non-negative integer");
    }
    errno = 0;
    from = std::strtoull(v.c_str(), nullptr, 10);
    if (errno == ERANGE) Fail(400, "'from_lsn' is out of range");
  }
  auto c = handles_.Get(req->params[0]);
  aidb_wal_iterator* it = nullptr;
  ErrMsg err;
  Check(aidb_wal_iterator_open(c->handle, from, &it, err.out()), err);
  auto stream = std::make_unique<WalStream>(c, it);
  std::string first;
  int st = 0;
  std::string error;
  bool more = stream->Fill(&first, true, &st, &error);
  if (st != 0) Fail(HttpStatusFor(st), error);
  resp->status = 200;
  resp->content_type = "application/x-ndjson";
  resp->body = std::move(first);
  if (more) {
    resp->stream = std::move(stream);
  } else {
    // Everything fit: still chunked, so clients see one framing. A stream
    // that is already at its end just finishes.
    struct Done : BodyStream {
      bool Next(std::string*) override { return false; }
    };
    resp->stream = std::make_unique<Done>();
  }
}

}  // namespace aidbd
