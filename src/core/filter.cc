#include "core/filter.h"

#include <simdjson.h>

#include "core/defaults.h"
#include "core/json_types.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>

namespace aidb::filter {

namespace dom = simdjson::dom;

namespace {

dom::parser& ThreadParser() {
  thread_local dom::parser parser;
  return parser;
}

using json::TypeName;

bool IsNumber(dom::element_type t) {
  return t == dom::element_type::INT64 || t == dom::element_type::UINT64 ||
         t == dom::element_type::DOUBLE;
}

// Any number of the DOM as a double (int64/uint64 are converted).
inline double NumberOf(dom::element e) { return e.get_double().value_unsafe(); }

Status Err(std::string_view msg) {
  std::string m = "filter: ";
  m += msg;
  return Status::InvalidArgument(m);
}

std::string Join(const std::string& where, std::string_view field) {
  if (where.empty()) return std::string(field);
  std::string s = where;
  s += '.';
  s += field;
  return s;
}

std::string Index(const std::string& where, size_t i) {
  return where + "[" + std::to_string(i) + "]";
}

// Splits a dotted key into its segments; `where` names the key in messages.
Status SplitKey(std::string_view key, const std::string& where, std::vector<std::string>* path) {
  if (key.empty()) {
    return Err(where + " is empty; expected a payload key such as \"color\" or \"a.b\"");
  }
  path->clear();
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string_view seg = key.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (seg.empty()) {
      return Err("key '" + std::string(key) + "' in " + where + " has an empty path segment");
    }
    path->emplace_back(seg);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return Status::OK();
}

// A filter scalar: string, number or boolean.
struct Scalar {
  dom::element_type type = dom::element_type::NULL_VALUE;  // STRING, DOUBLE or BOOL
  std::string str;
  double num = 0;
  bool boolean = false;
};

Status ParseScalar(dom::element e, const std::string& where, Scalar* out) {
  dom::element_type t = e.type();
  if (t == dom::element_type::STRING) {
    std::string_view sv = e.get_string().value_unsafe();
    out->type = t;
    out->str.assign(sv);
  } else if (IsNumber(t)) {
    out->type = dom::element_type::DOUBLE;
    out->num = NumberOf(e);
  } else if (t == dom::element_type::BOOL) {
    out->type = t;
    out->boolean = e.get_bool().value_unsafe();
  } else {
    std::string m = where + " must be a string, number or boolean, got " + TypeName(t);
    if (t == dom::element_type::NULL_VALUE) m += " (use is_null to match null)";
    return Err(m);
  }
  return Status::OK();
}

void AppendJsonString(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (c < 0x20) {
          *out += "\\u00";
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

void AppendJsonNumber(double d, std::string* out) {
  if (d == 0) d = 0;  // -0 and 0 are the same value
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d);  // shortest round trip
  out->append(buf, res.ptr);
}

std::string ScalarJson(const Scalar& s) {
  std::string out;
  switch (s.type) {
    case dom::element_type::STRING: AppendJsonString(s.str, &out); break;
    case dom::element_type::BOOL: out = s.boolean ? "true" : "false"; break;
    default: AppendJsonNumber(s.num, &out); break;
  }
  return out;
}

// Canonical JSON of a payload scalar; false for null, arrays and objects.
bool ElementScalarJson(dom::element e, std::string* out) {
  dom::element_type t = e.type();
  out->clear();
  if (t == dom::element_type::STRING) {
    std::string_view sv = e.get_string().value_unsafe();
    AppendJsonString(sv, out);
  } else if (IsNumber(t)) {
    AppendJsonNumber(NumberOf(e), out);
  } else if (t == dom::element_type::BOOL) {
    bool b = e.get_bool().value_unsafe();
    *out = b ? "true" : "false";
  } else {
    return false;
  }
  return true;
}

// A set of scalars with typed lookups (strings and numbers sorted).
class ValueSet {
 public:
  void Add(const Scalar& s) {
    switch (s.type) {
      case dom::element_type::STRING: strings_.push_back(s.str); break;
      case dom::element_type::BOOL: (s.boolean ? has_true_ : has_false_) = true; break;
      default: numbers_.push_back(s.num == 0 ? 0.0 : s.num); break;
    }
  }
  void Finish() {
    std::sort(strings_.begin(), strings_.end());
    strings_.erase(std::unique(strings_.begin(), strings_.end()), strings_.end());
    std::sort(numbers_.begin(), numbers_.end());
    numbers_.erase(std::unique(numbers_.begin(), numbers_.end()), numbers_.end());
  }
  // True when `e` is a scalar equal to one of the values (numbers as doubles).
  bool Contains(dom::element e) const {
    switch (e.type()) {
      case dom::element_type::STRING: {
        if (strings_.empty()) return false;
        std::string_view sv = e.get_string().value_unsafe();
        if (strings_.size() <= 4) {
          for (const std::string& s : strings_) {
            if (s == sv) return true;
          }
          return false;
        }
        auto it = std::lower_bound(strings_.begin(), strings_.end(), sv,
                                   [](const std::string& a, std::string_view b) { return a < b; });
        return it != strings_.end() && *it == sv;
      }
      case dom::element_type::INT64:
      case dom::element_type::UINT64:
      case dom::element_type::DOUBLE: {
        if (numbers_.empty()) return false;
        return std::binary_search(numbers_.begin(), numbers_.end(), NumberOf(e));
      }
      case dom::element_type::BOOL: {
        bool b = e.get_bool().value_unsafe();
        return b ? has_true_ : has_false_;
      }
      default: return false;
    }
  }

 private:
  std::vector<std::string> strings_;
  std::vector<double> numbers_;
  bool has_true_ = false;
  bool has_false_ = false;
};

// Calls fn(v) for every value reached by `path` from `e`, stopping at (and
// returning true on) the first call that returns true. An array met on the
// way is expanded (each element continues the walk); at the end of the path
// fn sees an array itself and then each of its elements (recursively).
template <typename Fn>
bool VisitPath(dom::element e, const std::vector<std::string>& path, size_t i, Fn& fn) {
  if (i == path.size()) {
    if (fn(e)) return true;
    if (e.type() == dom::element_type::ARRAY) {
      dom::array arr = e.get_array().value_unsafe();
      for (dom::element c : arr) {
        if (VisitPath(c, path, i, fn)) return true;
      }
    }
    return false;
  }
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      dom::object obj = e.get_object().value_unsafe();
      dom::element child;
      if (obj.at_key(path[i]).get(child) != simdjson::SUCCESS) return false;
      return VisitPath(child, path, i + 1, fn);
    }
    case dom::element_type::ARRAY: {
      dom::array arr = e.get_array().value_unsafe();
      for (dom::element c : arr) {
        if (VisitPath(c, path, i, fn)) return true;
      }
      return false;
    }
    default: return false;
  }
}

// The payload of one Matches() call, parsed on first use.
class EvalContext {
 public:
  EvalContext(const Uuid& id, std::string_view payload) : id_(id), payload_(payload) {}
  const Uuid& id() const { return id_; }

  // The payload's root object, or nullptr when the point has none.
  const dom::element* Root() {
    if (!parsed_) {
      parsed_ = true;
      if (!payload_.empty()) {
        dom::parser* parser = &ThreadParser();
        if (payload_.size() > kThreadParserMaxBytes) {
          big_parser_ = std::make_unique<dom::parser>();
          parser = big_parser_.get();
        }
        // Copies into the parser's reused padded buffer: no per-call allocation.
        has_root_ = parser->parse(payload_.data(), payload_.size()).get(root_) == simdjson::SUCCESS;
      }
    }
    return has_root_ ? &root_ : nullptr;
  }

 private:
  const Uuid& id_;
  std::string_view payload_;
  bool parsed_ = false;
  bool has_root_ = false;
  dom::element root_;
  std::unique_ptr<dom::parser> big_parser_;
};

}  // namespace

// One node of a parsed filter.
class Node {
 public:
  enum class Kind {
    kClause,       // must (all) / should (at least one, if any) / must_not (none)
    kMatch,        // match.value or match.any: some value is in `values`
    kMatchExcept,  // match.except: some scalar value is not in `values`
    kRange,        // some number satisfies every bound
    kIsNull,       // nothing reached, or some value is null
    kIsEmpty,      // nothing but nulls and empty arrays reached
    kHasId,        // point id in `ids`
  };

  explicit Node(Kind k) : kind(k) {}

  Kind kind;
  // kClause
  std::vector<std::unique_ptr<Node>> must, should, must_not;
  // key conditions
  std::string key;
  std::vector<std::string> path;
  ValueSet values;
  std::vector<Scalar> scalars;  // kMatch: the values as written (for hints)
  std::optional<double> gt, gte, lt, lte;
  // kHasId (sorted)
  std::vector<Uuid> ids;

  // True when the node holds for every point.
  bool Trivial() const {
    if (kind != Kind::kClause) return false;
    if (!must_not.empty()) return false;
    for (const auto& n : must) {
      if (!n->Trivial()) return false;
    }
    if (should.empty()) return true;
    for (const auto& n : should) {
      if (n->Trivial()) return true;
    }
    return false;
  }

  bool Eval(EvalContext& ctx) const {
    switch (kind) {
      case Kind::kClause: {
        for (const auto& n : must) {
          if (!n->Eval(ctx)) return false;
        }
        if (!should.empty()) {
          bool any = false;
          for (const auto& n : should) {
            if (n->Eval(ctx)) {
              any = true;
              break;
            }
          }
          if (!any) return false;
        }
        for (const auto& n : must_not) {
          if (n->Eval(ctx)) return false;
        }
        return true;
      }
      case Kind::kHasId: return std::binary_search(ids.begin(), ids.end(), ctx.id());
      case Kind::kMatch: {
        const dom::element* root = ctx.Root();
        if (!root) return false;
        auto fn = [this](dom::element e) { return values.Contains(e); };
        return VisitPath(*root, path, 0, fn);
      }
      case Kind::kMatchExcept: {
        const dom::element* root = ctx.Root();
        if (!root) return false;
        auto fn = [this](dom::element e) {
          dom::element_type t = e.type();
          if (t != dom::element_type::STRING && t != dom::element_type::BOOL && !IsNumber(t)) {
            return false;
          }
          return !values.Contains(e);
        };
        return VisitPath(*root, path, 0, fn);
      }
      case Kind::kRange: {
        const dom::element* root = ctx.Root();
        if (!root) return false;
        auto fn = [this](dom::element e) {
          if (!IsNumber(e.type())) return false;
          double d = NumberOf(e);
          if (gt && !(d > *gt)) return false;
          if (gte && !(d >= *gte)) return false;
          if (lt && !(d < *lt)) return false;
          if (lte && !(d <= *lte)) return false;
          return true;
        };
        return VisitPath(*root, path, 0, fn);
      }
      case Kind::kIsNull: {
        const dom::element* root = ctx.Root();
        if (!root) return true;
        bool reached = false;
        auto fn = [&reached](dom::element e) {
          reached = true;
          return e.is_null();
        };
        return VisitPath(*root, path, 0, fn) || !reached;
      }
      case Kind::kIsEmpty: {
        const dom::element* root = ctx.Root();
        if (!root) return true;
        auto non_empty = [](dom::element e) {
          switch (e.type()) {
            case dom::element_type::NULL_VALUE: return false;
            case dom::element_type::ARRAY: {
              dom::array arr = e.get_array().value_unsafe();
              return arr.begin() != arr.end();
            }
            default: return true;
          }
        };
        return !VisitPath(*root, path, 0, non_empty);
      }
    }
    return false;
  }
};

namespace {

using NodePtr = std::unique_ptr<Node>;

// The object's fields, rejecting duplicate names.
Status Fields(dom::object obj, const std::string& where,
              std::vector<std::pair<std::string_view, dom::element>>* out) {
  out->clear();
  for (dom::key_value_pair f : obj) {
    for (const auto& seen : *out) {
      if (seen.first == f.key) {
        return Err("duplicate field '" + std::string(f.key) + "' in " +
                   (where.empty() ? std::string("the filter") : where));
      }
    }
    out->emplace_back(f.key, f.value);
  }
  return Status::OK();
}

dom::object AsObject(dom::element e) { return e.get_object().value_unsafe(); }

bool IsClauseName(std::string_view k) { return k == "must" || k == "should" || k == "must_not"; }

Status ParseCondition(dom::element e, const std::string& where, NodePtr* out);

Status ParseConditionList(dom::element e, const std::string& where, std::vector<NodePtr>* out) {
  if (e.type() != dom::element_type::ARRAY) {
    return Err(where + " must be an array of conditions, got " + TypeName(e.type()));
  }
  dom::array arr = e.get_array().value_unsafe();
  size_t i = 0;
  for (dom::element c : arr) {
    NodePtr n;
    AIDB_RETURN_IF_ERROR(ParseCondition(c, Index(where, i), &n));
    out->push_back(std::move(n));
    ++i;
  }
  return Status::OK();
}

// An object made only of must/should/must_not (checked by the caller).
Status ParseClause(const std::vector<std::pair<std::string_view, dom::element>>& fields,
                   const std::string& where, NodePtr* out) {
  auto node = std::make_unique<Node>(Node::Kind::kClause);
  for (const auto& [name, value] : fields) {
    std::vector<NodePtr>* list = name == "must"     ? &node->must
                                 : name == "should" ? &node->should
                                                    : &node->must_not;
    AIDB_RETURN_IF_ERROR(ParseConditionList(value, Join(where, name), list));
  }
  // has_id needs no payload: evaluating it first can spare the payload parse.
  std::stable_partition(node->must.begin(), node->must.end(),
                        [](const NodePtr& n) { return n->kind == Node::Kind::kHasId; });
  *out = std::move(node);
  return Status::OK();
}

Status ParseKeyField(dom::element e, const std::string& where, Node* node) {
  if (e.type() != dom::element_type::STRING) {
    return Err(where + " must be a string, got " + TypeName(e.type()));
  }
  std::string_view key = e.get_string().value_unsafe();
  node->key.assign(key);
  return SplitKey(key, where, &node->path);
}

Status ParseScalarList(dom::element e, const std::string& where, Node* node) {
  if (e.type() != dom::element_type::ARRAY) {
    return Err(where + " must be an array of strings, numbers or booleans, got " +
               TypeName(e.type()));
  }
  dom::array arr = e.get_array().value_unsafe();
  size_t i = 0;
  for (dom::element c : arr) {
    Scalar s;
    AIDB_RETURN_IF_ERROR(ParseScalar(c, Index(where, i), &s));
    node->values.Add(s);
    node->scalars.push_back(std::move(s));
    ++i;
  }
  return Status::OK();
}

// {"value": v} | {"any": [...]} | {"except": [...]} into `node` (kind set here).
Status ParseMatch(dom::element e, const std::string& where, Node* node) {
  if (e.type() != dom::element_type::OBJECT) {
    return Err(where + " must be an object like {\"value\": ...}, got " + TypeName(e.type()));
  }
  std::vector<std::pair<std::string_view, dom::element>> fields;
  AIDB_RETURN_IF_ERROR(Fields(AsObject(e), where, &fields));
  if (fields.empty()) return Err(where + " is empty; expected one of value, any, except");
  if (fields.size() > 1) {
    return Err(where + " must hold exactly one of value, any, except");
  }
  const auto& [name, value] = fields[0];
  std::string at = Join(where, name);
  if (name == "value") {
    node->kind = Node::Kind::kMatch;
    Scalar s;
    AIDB_RETURN_IF_ERROR(ParseScalar(value, at, &s));
    node->values.Add(s);
    node->scalars.push_back(std::move(s));
  } else if (name == "any") {
    node->kind = Node::Kind::kMatch;
    AIDB_RETURN_IF_ERROR(ParseScalarList(value, at, node));
  } else if (name == "except") {
    node->kind = Node::Kind::kMatchExcept;
    AIDB_RETURN_IF_ERROR(ParseScalarList(value, at, node));
  } else {
    return Err("unknown field '" + std::string(name) + "' in " + where +
               " (expected value, any or except)");
  }
  node->values.Finish();
  return Status::OK();
}

Status ParseRange(dom::element e, const std::string& where, Node* node) {
  if (e.type() != dom::element_type::OBJECT) {
    return Err(where + " must be an object like {\"gte\": 1}, got " + TypeName(e.type()));
  }
  std::vector<std::pair<std::string_view, dom::element>> fields;
  AIDB_RETURN_IF_ERROR(Fields(AsObject(e), where, &fields));
  if (fields.empty()) return Err(where + " needs at least one of gt, gte, lt, lte");
  for (const auto& [name, value] : fields) {
    std::optional<double>* bound = name == "gt"    ? &node->gt
                                   : name == "gte" ? &node->gte
                                   : name == "lt"  ? &node->lt
                                   : name == "lte" ? &node->lte
                                                   : nullptr;
    if (!bound) {
      return Err("unknown range bound '" + std::string(name) + "' in " + where +
                 " (expected gt, gte, lt, lte)");
    }
    if (!IsNumber(value.type())) {
      return Err(Join(where, name) + " must be a number, got " + TypeName(value.type()));
    }
    *bound = NumberOf(value);
  }
  node->kind = Node::Kind::kRange;
  return Status::OK();
}

// {"key": k} of is_null / is_empty.
Status ParseKeyObject(dom::element e, const std::string& where, Node* node) {
  if (e.type() != dom::element_type::OBJECT) {
    return Err(where + " must be an object like {\"key\": \"field\"}, got " + TypeName(e.type()));
  }
  std::vector<std::pair<std::string_view, dom::element>> fields;
  AIDB_RETURN_IF_ERROR(Fields(AsObject(e), where, &fields));
  bool have_key = false;
  for (const auto& [name, value] : fields) {
    if (name != "key") {
      return Err("unknown field '" + std::string(name) + "' in " + where + " (expected key)");
    }
    AIDB_RETURN_IF_ERROR(ParseKeyField(value, Join(where, "key"), node));
    have_key = true;
  }
  if (!have_key) return Err(where + " needs a \"key\"");
  return Status::OK();
}

Status ParseHasId(dom::element e, const std::string& where, Node* node) {
  if (e.type() != dom::element_type::ARRAY) {
    return Err(where + " must be an array of point ids, got " + TypeName(e.type()));
  }
  dom::array arr = e.get_array().value_unsafe();
  size_t i = 0;
  for (dom::element c : arr) {
    std::string at = Index(where, i++);
    if (c.type() != dom::element_type::STRING) {
      return Err(at + " must be a point id string, got " + TypeName(c.type()));
    }
    std::string_view text = c.get_string().value_unsafe();
    Uuid id;
    Status st = Uuid::Parse(text, &id);
    if (!st.ok()) return Err(at + ": " + st.message());
    node->ids.push_back(id);
  }
  std::sort(node->ids.begin(), node->ids.end());
  node->ids.erase(std::unique(node->ids.begin(), node->ids.end()), node->ids.end());
  return Status::OK();
}

Status ParseCondition(dom::element e, const std::string& where, NodePtr* out) {
  if (e.type() != dom::element_type::OBJECT) {
    return Err(where + " must be a condition object, got " + TypeName(e.type()));
  }
  std::vector<std::pair<std::string_view, dom::element>> fields;
  AIDB_RETURN_IF_ERROR(Fields(AsObject(e), where, &fields));
  if (fields.empty()) {
    return Err("empty condition in " + where +
               " (expected key, is_null, is_empty, has_id, must, should or must_not)");
  }
  // Group the fields: a condition is exactly one kind.
  std::string_view kind;  // "key", "clause", "is_null", "is_empty", "has_id"
  std::string_view first_field;
  const dom::element* key = nullptr;
  const dom::element* match = nullptr;
  const dom::element* range = nullptr;
  for (const auto& field : fields) {
    std::string_view name = field.first;
    std::string_view k;
    if (name == "key" || name == "match" || name == "range") {
      k = "key";
      if (name == "key") key = &field.second;
      if (name == "match") match = &field.second;
      if (name == "range") range = &field.second;
    } else if (IsClauseName(name)) {
      k = "clause";
    } else if (name == "is_null" || name == "is_empty" || name == "has_id") {
      k = name;
    } else {
      bool keyed =
          std::any_of(fields.begin(), fields.end(), [](const auto& f) { return f.first == "key"; });
      if (keyed) {
        return Err("unknown field '" + std::string(name) + "' in " + where +
                   " (a key condition has key and match or range)");
      }
      return Err("unknown condition '" + std::string(name) + "' in " + where);
    }
    if (kind.empty()) {
      kind = k;
      first_field = name;
    } else if (kind != k || (k != "key" && k != "clause")) {
      return Err(where + " mixes '" + std::string(first_field) + "' and '" + std::string(name) +
                 "'; put each condition in its own object");
    }
  }

  if (kind == "clause") return ParseClause(fields, where, out);

  auto node = std::make_unique<Node>(Node::Kind::kMatch);
  if (kind == "key") {
    if (!key) {
      return Err(where + " has '" + std::string(match ? "match" : "range") + "' but no 'key'");
    }
    AIDB_RETURN_IF_ERROR(ParseKeyField(*key, Join(where, "key"), node.get()));
    if (match && range) return Err(where + " has both 'match' and 'range'; use one");
    if (match) {
      AIDB_RETURN_IF_ERROR(ParseMatch(*match, Join(where, "match"), node.get()));
    } else if (range) {
      AIDB_RETURN_IF_ERROR(ParseRange(*range, Join(where, "range"), node.get()));
    } else {
      return Err(where + " has 'key' but neither 'match' nor 'range'");
    }
  } else if (kind == "is_null" || kind == "is_empty") {
    node->kind = kind == "is_null" ? Node::Kind::kIsNull : Node::Kind::kIsEmpty;
    AIDB_RETURN_IF_ERROR(ParseKeyObject(fields[0].second, Join(where, kind), node.get()));
  } else {  // has_id
    node->kind = Node::Kind::kHasId;
    AIDB_RETURN_IF_ERROR(ParseHasId(fields[0].second, Join(where, "has_id"), node.get()));
  }
  *out = std::move(node);
  return Status::OK();
}

// {"key": value, ...}: a clause whose must list holds one condition per key.
Status ParseShortForm(const std::vector<std::pair<std::string_view, dom::element>>& fields,
                      NodePtr* out) {
  auto root = std::make_unique<Node>(Node::Kind::kClause);
  for (const auto& [name, value] : fields) {
    std::string where = "key '" + std::string(name) + "'";
    auto node = std::make_unique<Node>(Node::Kind::kMatch);
    node->key.assign(name);
    AIDB_RETURN_IF_ERROR(SplitKey(name, where, &node->path));
    dom::element_type t = value.type();
    if (t == dom::element_type::NULL_VALUE) {
      node->kind = Node::Kind::kIsNull;
    } else if (t == dom::element_type::OBJECT || t == dom::element_type::ARRAY) {
      return Err("value of key '" + std::string(name) +
                 "' must be a string, number, boolean or null, got " + TypeName(t) +
                 " (other conditions need the full form: {\"must\": [...]})");
    } else {
      Scalar s;
      AIDB_RETURN_IF_ERROR(ParseScalar(value, "value of key '" + std::string(name) + "'", &s));
      node->values.Add(s);
      node->values.Finish();
      node->scalars.push_back(std::move(s));
    }
    root->must.push_back(std::move(node));
  }
  *out = std::move(root);
  return Status::OK();
}

Status ParseRoot(dom::element root, NodePtr* out) {
  if (root.type() != dom::element_type::OBJECT) {
    return Status::InvalidArgument(std::string("filter must be a JSON object, got ") +
                                   TypeName(root.type()));
  }
  std::vector<std::pair<std::string_view, dom::element>> fields;
  AIDB_RETURN_IF_ERROR(Fields(AsObject(root), "", &fields));
  bool full = std::any_of(fields.begin(), fields.end(),
                          [](const auto& f) { return IsClauseName(f.first); });
  if (!full) return ParseShortForm(fields, out);
  for (const auto& f : fields) {
    if (!IsClauseName(f.first)) {
      return Err("unknown top-level field '" + std::string(f.first) +
                 "' (a filter with must/should/must_not holds nothing else; "
                 "put key conditions inside must)");
    }
  }
  return ParseClause(fields, "", out);
}

Status ParseWith(dom::parser& parser, std::string_view json, NodePtr* out) {
  dom::element root;
  simdjson::error_code err = parser.parse(json.data(), json.size()).get(root);
  std::string widened;  // integers past 64 bits, as doubles (as payloads hold them)
  if (err == simdjson::NUMBER_ERROR && json::WidenIntegers(json, &widened)) {
    err = parser.parse(widened.data(), widened.size()).get(root);
  }
  if (err) {
    std::string m = "filter is not valid JSON: ";
    if (err == simdjson::EMPTY) {
      m += "empty document";
    } else if (err == simdjson::TAPE_ERROR) {
      m += "improper structure (missing or extra commas, brackets or keys, or text after the "
           "filter)";
    } else {
      m += simdjson::error_message(err);
    }
    return Status::InvalidArgument(m);
  }
  return ParseRoot(root, out);
}

}  // namespace

Filter::~Filter() = default;

Status Filter::Parse(std::string_view json, std::unique_ptr<Filter>* out) {
  NodePtr root;
  if (json.size() > kThreadParserMaxBytes) {
    dom::parser parser;
    AIDB_RETURN_IF_ERROR(ParseWith(parser, json, &root));
  } else {
    AIDB_RETURN_IF_ERROR(ParseWith(ThreadParser(), json, &root));
  }
  std::unique_ptr<Filter> f(new Filter());
  // Equality hints: the root's must conditions of kind match.value/match.any
  // (short-form keys with non-null values become exactly those).
  for (const NodePtr& n : root->must) {
    if (n->kind != Node::Kind::kMatch) continue;
    EqualityHint hint;
    hint.key = n->key;
    for (const Scalar& s : n->scalars) {
      std::string v = ScalarJson(s);
      if (std::find(hint.values_json.begin(), hint.values_json.end(), v) ==
          hint.values_json.end()) {
        hint.values_json.push_back(std::move(v));
      }
    }
    f->hints_.push_back(std::move(hint));
  }
  f->root_ = std::move(root);
  *out = std::move(f);
  return Status::OK();
}

bool Filter::Matches(const Uuid& id, std::string_view payload_json) const {
  EvalContext ctx(id, payload_json);
  return root_->Eval(ctx);
}

bool Filter::MatchesAll() const { return root_->Trivial(); }

void CollectKeyValues(std::string_view payload_json, std::string_view key,
                      std::vector<std::string>* values_json) {
  values_json->clear();
  if (payload_json.empty()) return;
  std::vector<std::string> path;
  if (!SplitKey(key, "key", &path).ok()) return;
  dom::parser* parser = &ThreadParser();
  std::unique_ptr<dom::parser> big;
  if (payload_json.size() > kThreadParserMaxBytes) {
    big = std::make_unique<dom::parser>();
    parser = big.get();
  }
  dom::element root;
  if (parser->parse(payload_json.data(), payload_json.size()).get(root) != simdjson::SUCCESS) {
    return;
  }
  std::string v;
  auto fn = [&](dom::element e) {
    if (ElementScalarJson(e, &v) &&
        std::find(values_json->begin(), values_json->end(), v) == values_json->end()) {
      values_json->push_back(v);
    }
    return false;  // visit everything
  };
  VisitPath(root, path, 0, fn);
}

std::string CanonicalNumberJson(double value) {
  std::string out;
  AppendJsonNumber(value, &out);
  return out;
}

std::string CanonicalStringJson(std::string_view value) {
  std::string out;
  AppendJsonString(value, &out);
  return out;
}

}  // namespace aidb::filter
