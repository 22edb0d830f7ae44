// The web console's files and the collections' history (see api_console.h).
#include "api_console.h"

#include <string>
#include <string_view>

#include "api.h"
#include "assets.h"
#include "render.h"
#include "util.h"

namespace aidbd {

namespace {

// The page loads its own script and style sheet only and talks to this
// daemon only; nothing inline, nothing from elsewhere, never framed.
constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace

bool ServeConsole(HttpRequest* req, HttpResponse* resp) {
  std::string_view p = req->path;
  std::string_view file;
  if (p == "/" || p == "/console" || p == "/console/") {
    file = "index.html";
  } else if (p.size() > 9 && p.substr(0, 9) == "/console/") {
    file = p.substr(9);
  } else {
    return false;
  }
  req->route_label = "/console";
  if (req->method != "GET" && req->method != "HEAD") {
    resp->status = 405;
    resp->body = ErrorBody("method " + req->method + " not allowed on /console");
    resp->headers.emplace_back("Allow", "GET");
    return true;
  }
  const console::Asset* a = console::FindAsset(file);
  if (!a) {
    resp->status = 404;
    resp->body = ErrorBody("no console file " + std::string(file));
    return true;
  }
  resp->status = 200;
  resp->content_type = a->content_type;
  resp->body.assign(reinterpret_cast<const char*>(a->data), a->size);
  resp->headers.emplace_back("Content-Security-Policy", kCsp);
  resp->headers.emplace_back("X-Content-Type-Options", "nosniff");
  resp->headers.emplace_back("X-Frame-Options", "DENY");
  resp->headers.emplace_back("Referrer-Policy", "no-referrer");
  // Revalidated on every load: a new aidbd serves its own page at once.
  resp->headers.emplace_back("Cache-Control", "no-cache");
  return true;
}

void Api::SampleHistory(const std::string& name) {
  uint64_t epoch = history_.Epoch();
  std::shared_ptr<Coll> c;
  try {
    c = handles_.Get(name);
  } catch (const ApiError&) {
    return;  // dropped meanwhile
  }
  History::Sample s;
  aidb_wal_info wal;
  aidb_wal_info_init(&wal);
  if (aidb_wal_stats(c->handle, &wal, nullptr) != AIDB_OK) return;
  if (aidb_collection_count(c->handle, &s.points, nullptr) != AIDB_OK) return;
  s.unix_ms = NowUnixNs() / 1000000;
  s.wal_size_bytes = wal.size_bytes;
  s.wal_bytes_since_truncate = wal.bytes_since_truncate;
  s.wal_last_lsn = wal.last_lsn;
  history_.Record(name, s, epoch);
}

void Api::SampleAllHistory() {
  std::vector<std::string> names = handles_.Names();
  history_.Retain(names);
  for (const std::string& n : names) SampleHistory(n);
}

void Api::GetHistory(HttpRequest* req, HttpResponse* resp) {
  const std::string& name = req->params[0];
  handles_.Get(name);  // 404 for an unknown collection
  std::vector<History::Sample> samples = history_.Get(name);
  if (samples.empty()) {
    // Created since the last round of the sampler: its first sample now.
    SampleHistory(name);
    samples = history_.Get(name);
  }
  Json arr = Json::array();
  for (const History::Sample& s : samples) {
    arr.push_back(Json{{"time", FormatRfc3339(s.unix_ms * 1000000)},
                       {"unix_ms", s.unix_ms},
                       {"points", s.points},
                       {"wal_size_bytes", s.wal_size_bytes},
                       {"wal_bytes_since_truncate", s.wal_bytes_since_truncate},
                       {"wal_last_lsn", s.wal_last_lsn}});
  }
  Reply(resp, 200,
        Json{{"collection", name},
             {"interval_seconds", static_cast<double>(history_.interval().count()) / 1000.0},
             {"capacity", history_.capacity()},
             {"samples", std::move(arr)}});
}

}  // namespace aidbd
