#include "cluster/logic.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace aidbd::cluster {

namespace {

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool ParseInt64(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace

int PartitionFor(std::string_view id, int shards) {
  if (id.size() != 36 || shards <= 0) return -1;
  uint32_t h = 2166136261u;
  int nibbles = 0;
  int hi = 0;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (id[i] != '-') return -1;
      continue;
    }
    int v = HexVal(id[i]);
    if (v < 0) return -1;
    if (nibbles++ % 2 == 0) {
      hi = v;
    } else {
      h ^= static_cast<uint32_t>(hi << 4 | v);
      h *= 16777619u;
    }
  }
  return static_cast<int>(h % static_cast<uint32_t>(shards));
}

std::string FormatToken(const WriteToken& t) {
  std::string s = t.collection + ":";
  bool first = true;
  for (const auto& [p, off] : t.offsets) {
    if (!first) s.push_back(',');
    first = false;
    s += std::to_string(p) + "=" + std::to_string(off);
  }
  return s;
}

bool ParseToken(std::string_view text, WriteToken* out, std::string* error) {
  *out = WriteToken();
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= text.size()) {
    *error = "malformed write token '" + std::string(text) +
             "': expected <collection>:<shard>=<offset>[,...]";
    return false;
  }
  out->collection = std::string(text.substr(0, colon));
  std::string_view rest = text.substr(colon + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    size_t eq = item.find('=');
    int64_t p = 0, off = 0;
    if (eq == std::string_view::npos || !ParseInt64(item.substr(0, eq), &p) ||
        !ParseInt64(item.substr(eq + 1), &off) || p > INT32_MAX) {
      *error = "malformed write token '" + std::string(text) +
               "': expected <collection>:<shard>=<offset>[,...]";
      return false;
    }
    auto& slot = out->offsets[static_cast<int>(p)];
    slot = std::max(slot, off);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
    if (rest.empty()) {
      *error = "malformed write token '" + std::string(text) + "': trailing ','";
      return false;
    }
  }
  return true;
}

std::string LocalShardName(std::string_view collection, int p) {
  std::string suffix = "-" + std::to_string(p);
  if (collection.size() + suffix.size() <= 64) return std::string(collection) + suffix;
  uint64_t h = 14695981039346656037ull;
  for (char c : collection) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string(collection.substr(0, 40)) + "_" + hex + suffix;
}

std::string SnapshotFileName(int64_t offset) { return "snap-" + std::to_string(offset) + ".aidb"; }

std::optional<int64_t> ParseSnapshotFileName(std::string_view name) {
  constexpr std::string_view kPre = "snap-", kSuf = ".aidb";
  if (name.size() <= kPre.size() + kSuf.size() || name.substr(0, kPre.size()) != kPre ||
      name.substr(name.size() - kSuf.size()) != kSuf) {
    return std::nullopt;
  }
  std::string_view digits = name.substr(kPre.size(), name.size() - kPre.size() - kSuf.size());
  if (digits == "-1") return -1;  // an empty shard: covers no record
  int64_t off = 0;
  if (!ParseInt64(digits, &off)) return std::nullopt;
  return off;
}

std::vector<Hit> MergeTopK(std::vector<Hit> hits, size_t k) {
  auto better = [](const Hit& a, const Hit& b) {
    if (a.score != b.score) return a.score < b.score;
    if (a.source != b.source) return a.source < b.source;
    return a.rank < b.rank;
  };
  if (hits.size() > k) {
    std::partial_sort(hits.begin(), hits.begin() + static_cast<ptrdiff_t>(k), hits.end(), better);
    hits.resize(k);
  } else {
    std::sort(hits.begin(), hits.end(), better);
  }
  return hits;
}

bool ValidNodeId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace aidbd::cluster
