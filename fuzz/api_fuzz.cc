// libFuzzer target: the daemon's request path after HTTP framing: routing,
// authentication, request JSON parsing (simdjson), the engine calls and the
// response JSON, through aidbd::Api::Prepare / Execute / Completed, against a
// real database directory. (The HTTP/1.1 framing in front of it is fuzzed by
// http_fuzz.cc, which sends raw bytes through a real HttpServer.)
// Input: "METHOD URL\n" then the body. Header lines may follow the first
// line up to an empty line ("name: value").
#include <aidb.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "api.h"
#include "fuzz_util.h"
#include "http_server.h"

using namespace aidbfuzz;

namespace {

struct State {
  aidb_db* db = nullptr;
  std::unique_ptr<aidbd::Api> api;
  int runs = 0;
};

State& Get() {
  static State* s = [] {
    auto* st = new State();
    std::string dir = ScratchDir() + "/db";
    aidb_db_options o;
    aidb_db_options_init(&o);
    o.durability = AIDB_DURABILITY_NONE;
    if (aidb_db_open(dir.c_str(), &o, &st->db, nullptr) != AIDB_OK) std::abort();
    aidbd::ApiConfig cfg;
    char real[4096];
    if (!realpath(dir.c_str(), real)) std::abort();
    cfg.data_dir = real;
    st->api = std::make_unique<aidbd::Api>(st->db, cfg);
    return st;
  }();
  return *s;
}

void Reset(State& s) {
  // Keep the database small: drop every collection, then recreate "c".
  s.api->ReleaseHandles();
  char** names = nullptr;
  size_t n = 0;
  if (aidb_db_list_collections(s.db, &names, &n, nullptr) == AIDB_OK) {
    for (size_t i = 0; i < n; ++i) aidb_db_drop_collection(s.db, names[i], nullptr);
    aidb_free_string_array(names, n);
  }
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "c";
  o.dim = 4;
  o.metric = AIDB_METRIC_EUCLIDEAN;
  aidb_collection* c = nullptr;
  if (aidb_db_create_collection(s.db, &o, &c, nullptr) == AIDB_OK) {
    float v[4] = {1, 2, 3, 4};
    aidb_collection_upsert(c, "00000000-0000-4000-8000-000000000001", v, 4,
                           "{\"a\":1,\"t\":[\"x\"]}", static_cast<size_t>(-1), nullptr);
    aidb_collection_close(c);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  State& s = Get();
  if (s.runs++ % 64 == 0) Reset(s);
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nl = in.find('\n');
  if (nl == std::string_view::npos) return 0;
  std::string_view line = in.substr(0, nl);
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return 0;
  aidbd::HttpRequest req;
  req.method = std::string(line.substr(0, sp));
  req.url = std::string(line.substr(sp + 1));
  size_t q = req.url.find('?');
  req.path = req.url.substr(0, q);
  if (q != std::string::npos) req.query = req.url.substr(q + 1);
  std::string_view rest = in.substr(nl + 1);
  // Optional headers until an empty line.
  while (true) {
    size_t e = rest.find('\n');
    if (e == std::string_view::npos || e == 0) {
      if (e == 0) rest.remove_prefix(1);
      break;
    }
    std::string_view h = rest.substr(0, e);
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) break;
    std::string name(h.substr(0, colon));
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::string_view value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    req.headers.emplace_back(name, std::string(value));
    rest.remove_prefix(e + 1);
  }
  req.body = std::string(rest);
  aidbd::HttpResponse resp;
  if (!s.api->Prepare(&req, &resp)) s.api->Execute(&req, &resp);
  if (resp.status < 100 || resp.status > 599) __builtin_trap();
  if (resp.stream) {
    std::string piece;
    for (int i = 0; i < 1000; ++i) {
      piece.clear();
      if (!resp.stream->Next(&piece)) break;
    }
  }
  s.api->Completed(req, resp.status, 0.001);
  return 0;
}
