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

#include "api_fuzz_util.h"
#include "http_server.h"

using namespace aidbfuzz;

namespace {

struct State : ApiDb {
  int runs = 0;
};

State& Get() {
  static State* s = [] {
    auto* st = new State();
    OpenApiDb(st);
    return st;
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  State& s = Get();
  if (s.runs++ % 64 == 0) ResetApiDb(&s);
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
