// libFuzzer target: the filter parser and evaluator (filter::Filter::Parse +
// Matches, payload::Canonicalize, CollectKeyValues).
// Input: FILTER_JSON [ '\0' PAYLOAD_JSON ]. The filter is parsed; when it
// parses, it is evaluated against the input's payload (if it canonicalises,
// as the engine stores payloads) and a fixed set of payloads, and its
// equality hints are checked against the payload index's key values.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/filter.h"
#include "core/payload.h"
#include "core/uuid.h"

namespace {

const char* const kPayloads[] = {
    "",
    "{}",
    R"({"a":1,"b":"x","c":true,"d":null,"e":[],"f":[1,2,3]})",
    R"({"a":{"b":{"c":[{"d":1},{"d":"x"}]}},"tags":["red","blue"],"n":-0.5})",
    R"({"city":"Paris","year":2024,"price":12.5,"ok":false,"list":[[],[null]]})",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view filter_json = in, payload_json;
  size_t nul = in.find('\0');
  if (nul != std::string_view::npos) {
    filter_json = in.substr(0, nul);
    payload_json = in.substr(nul + 1);
  }
  std::vector<std::string> payloads(std::begin(kPayloads), std::end(kPayloads));
  if (!payload_json.empty()) {
    std::string canon;
    if (aidb::payload::Canonicalize(payload_json, &canon).ok()) payloads.push_back(canon);
  }
  std::unique_ptr<aidb::filter::Filter> f;
  if (!aidb::filter::Filter::Parse(filter_json, &f).ok()) return 0;
  aidb::Uuid id;
  (void)aidb::Uuid::Parse("00000000-0000-4000-8000-000000000001", &id);
  bool all = f->MatchesAll();
  for (const std::string& p : payloads) {
    bool m = f->Matches(id, p);
    if (all && !m) __builtin_trap();  // "matches everything" must match everything
    // A point matching the filter must carry, for each equality hint, one of
    // the hint's values (what a payload index relies on to skip points).
    if (m) {
      for (const auto& hint : f->equality_hints()) {
        std::vector<std::string> have;
        aidb::filter::CollectKeyValues(p, hint.key, &have);
        bool any = false;
        for (const auto& v : have) {
          for (const auto& w : hint.values_json) any = any || v == w;
        }
        if (!any) __builtin_trap();
      }
    }
  }
  return 0;
}
