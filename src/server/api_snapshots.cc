// Snapshot routes (take, list, restore; paths confined to the data dir) and
// the WAL change feed (NDJSON, streamed).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "api.h"
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
  std::error_code ec;
  // Symlinks must not lead out of the data dir either.
  fs::path real = fs::weakly_canonical(p, ec);
  if (ec) Fail(400, "cannot resolve path '" + user_path + "': " + ec.message());
  fs::path real_rel = real.lexically_relative(root);
  if (real_rel.empty() || *real_rel.begin() == "..") {
    Fail(400, "snapshot paths must stay inside the data directory");
  }
  if (must_exist) {
    if (!fs::is_regular_file(real, ec)) Fail(404, "snapshot '" + user_path + "' not found");
    return real.string();
  }
  // Never write into a collection's own folder (its WAL, MANIFEST, config).
  int managed = 0;
  ErrMsg err;
  Check(aidb_db_path_is_managed(config_.data_dir.c_str(), real.c_str(), &managed, err.out()), err);
  if (managed) Fail(400, "snapshot paths must not point into a collection's folder");
  if (fs::is_directory(real, ec)) Fail(400, "'path' names a directory");
  return real.string();
}

void Api::Snapshot(HttpRequest* req, HttpResponse* resp) {
  const std::string& name = req->params[0];
  element body = ParseBody(req, true);
  std::string target;
  if (auto p = Field(body, "path"); p && !p->is_null()) {
    target = ConfinePath(ToString(*p, "path"), false);
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
    // A checked, durable copy (parent folders created): the library's job.
    Check(aidb_snapshot_export(snap.c_str(), target.c_str(), &info, err.out()), err);
  }
  Json j = SnapshotJson(info);
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
  Check(aidb_db_restore(db_, name.c_str(), path.c_str(), err.out()), err);
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
