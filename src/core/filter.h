// Payload filters (docs/design.md), parsed once and evaluated per point.
//
// Short form: {"key": value, ...}: every key equals its value (scalar values;
// null means "is null"). Full form: an object with any of "must", "should",
// "must_not" (lists of conditions; "should" = at least one) where a condition
// is one of
//   {"key": k, "match": {"value": v}}          v string, number, bool
//   {"key": k, "match": {"any": [v, ...]}}
//   {"key": k, "match": {"except": [v, ...]}}
//   {"key": k, "range": {"gt"|"gte"|"lt"|"lte": n, ...}}
//   {"is_null": {"key": k}}                    missing or null
//   {"is_empty": {"key": k}}                   missing, null or []
//   {"has_id": ["uuid", ...]}
//   a nested {"must"/"should"/"must_not": [...]} clause.
// Keys are dotted paths ("a.b.c"). When a path reaches an array, the condition
// holds if it holds for any element. Numbers compare as doubles (1 == 1.0).
// `{}` and an empty clause list match everything.
//
// Details (decided in filter.cc, pinned by tests/core/filter_test.cc):
// - The full form is recognised by a top-level must/should/must_not; it may
//   then hold nothing else. So short-form keys cannot be named must, should or
//   must_not (use the full form for those). Duplicate fields are rejected.
// - A dotted path walks objects; an array met on the way is expanded (any
//   element). Keys that contain a literal '.' cannot be addressed.
// - match.value / match.any: types must agree (true never equals 1 or "true").
//   An empty "any" matches nothing.
// - match.except: some string/number/bool reached is not in the list; a
//   missing key, null, [] or an object does NOT match except.
// - range: only numbers match; at least one bound is required.
// - is_null: nothing reached by the path, or some value reached is null
//   ([] is not null). is_empty: nothing but nulls and [] reached ([null] and
//   [[]] are not empty).
// - A point without payload (empty text) only satisfies is_null, is_empty,
//   must_not and has_id conditions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/uuid.h"

namespace aidb::filter {

class Node;  // internal AST node

// An equality constraint every matching point must satisfy (from a top-level
// "must" or the short form): lets a payload index pre-select candidates.
struct EqualityHint {
  std::string key;
  std::vector<std::string> values_json;  // canonical JSON scalars; any of them
  // (an empty list means no point can match: from "match": {"any": []}).
};

// Canonical JSON text of every string/number/bool the dotted `key` reaches in
// the (minified) payload, arrays expanded, without duplicates, in the forms of
// EqualityHint::values_json. A point can satisfy a hint only if one of these
// is among the hint's values: what a payload index stores per point. Empty for
// no payload, a missing key or an invalid key.
void CollectKeyValues(std::string_view payload_json, std::string_view key,
                      std::vector<std::string>* values_json);
// The canonical scalar forms: numbers in the shortest text that round-trips
// the double (3 and 3.0 give "3", -0 gives "0"); strings JSON-quoted with only
// '"', '\\' and control characters escaped (UTF-8 kept as is); true/false.
std::string CanonicalNumberJson(double value);
std::string CanonicalStringJson(std::string_view value);

class Filter {
 public:
  // InvalidArgument with a message naming the problem ("filter: unknown
  // condition 'foo' in must[2]", "filter is not valid JSON: ...").
  static Status Parse(std::string_view json, std::unique_ptr<Filter>* out);
  ~Filter();
  Filter(const Filter&) = delete;
  Filter& operator=(const Filter&) = delete;

  // True when the point (id, minified payload JSON or empty for none)
  // satisfies the filter. Thread-safe (uses a thread-local parser).
  bool Matches(const Uuid& id, std::string_view payload_json) const;

  // True if the filter matches everything ({} or only empty clauses).
  bool MatchesAll() const;
  // Top-level equality constraints (for payload indexes); may be empty.
  const std::vector<EqualityHint>& equality_hints() const { return hints_; }

 private:
  Filter() = default;
  std::unique_ptr<Node> root_;
  std::vector<EqualityHint> hints_;
};

}  // namespace aidb::filter
