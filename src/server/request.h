// Request JSON for route handlers (aidbd's REST API, and any other router
// plugged into HttpServer, see handler.h): the body parsed with simdjson,
// typed fields, ids, and the error answers handlers throw (ApiError), which
// Answering() turns into {"error": ...} responses.
#pragma once

#include <aidb.h>
#include <simdjson.h>

#include <cstdint>
#include <initializer_list>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "handler.h"

namespace aidbd {

using simdjson::dom::element;

// The HTTP status for an AIDB_* status code (the one place that maps them):
//   INVALID_ARGUMENT, DIMENSION_MISMATCH, UNSUPPORTED -> 400
//   NOT_FOUND -> 404, ALREADY_EXISTS -> 409, NO_MEMORY and BUSY -> 503
//   IO_ERROR, CORRUPTION, MISUSE, INTERNAL and unknown codes -> 500
int HttpStatusFor(int aidb_status);

// An error answer: thrown inside handlers, turned into {"error": ...}.
struct ApiError {
  int status;
  std::string message;
};

[[noreturn]] void Fail(int status, std::string message);

// Holds a library error message (the errmsg of a call) and frees it.
class ErrMsg {
 public:
  ErrMsg() = default;
  ~ErrMsg() {
    if (p_) aidb_free(p_);
  }
  ErrMsg(const ErrMsg&) = delete;
  ErrMsg& operator=(const ErrMsg&) = delete;
  char** out() {
    if (p_) aidb_free(p_);
    p_ = nullptr;
    return &p_;
  }
  std::string str(int status) const {
    return p_ ? std::string(p_) : std::string(aidb_status_name(status));
  }

 private:
  char* p_ = nullptr;
};

// Fails with the HTTP status of `status` and the library's message.
inline void Check(int status, const ErrMsg& err) {
  if (status != AIDB_OK) Fail(HttpStatusFor(status), err.str(status));
}

// Runs `fn` (which returns whether it answered); what it throws becomes an
// error answer in *resp.
template <class Fn>
bool Answering(HttpResponse* resp, Fn&& fn) {
  try {
    return fn();
  } catch (const ApiError& e) {
    *resp = HttpResponse();
    resp->status = e.status;
    resp->body = ErrorBody(e.message);
  } catch (const std::bad_alloc&) {
    *resp = HttpResponse();
    resp->status = 503;
    resp->body = ErrorBody("out of memory");
  } catch (const std::exception& e) {
    *resp = HttpResponse();
    resp->status = 500;
    resp->body = ErrorBody(std::string("internal error: ") + e.what());
  }
  return true;
}

// A collection name: 1 to 64 of A-Z a-z 0-9 _ -.
bool ValidName(std::string_view n);
std::string Lower(std::string_view s);

// Parses the body as a JSON object (an empty body counts as {} when allowed).
// The element lives in a thread-local parser until the next call.
element ParseBody(HttpRequest* req, bool allow_empty);
// Frees the calling thread's body parser after a large body (its buffers grow
// to ~10x the largest body parsed and would stay that size): call once the
// request's elements are no longer used.
void ReleaseLargeBodyParser();

inline std::optional<element> Field(element obj, std::string_view key) {
  simdjson::dom::object o = obj.get_object().value_unsafe();
  auto r = o[key];
  if (r.error()) return std::nullopt;
  return r.value_unsafe();
}

// The first of several synonymous keys that is present.
inline std::optional<element> FieldAny(element obj, std::initializer_list<std::string_view> keys,
                                       std::string_view* which = nullptr) {
  for (auto k : keys) {
    if (auto f = Field(obj, k)) {
      if (which) *which = k;
      return f;
    }
  }
  return std::nullopt;
}

// Typed fields; `name` is the field's name in error messages.
uint64_t ToUint(element e, std::string_view name, uint64_t max = UINT32_MAX);
bool ToBool(element e, std::string_view name);
std::string ToString(element e, std::string_view name);
// Appends the components of a JSON array of numbers to `out`; returns the count.
size_t AppendVector(element e, std::string_view name, std::vector<float>* out);
// A payload field: "" for absent or null, else the minified JSON object.
std::string PayloadText(std::optional<element> e);
// A point id in canonical form (400 if it is not a UUID).
std::string CanonicalId(const std::string& id);
// The "id" field of a point: canonical, or a new random id if absent or null.
std::string IdField(std::optional<element> e);

// A collection to create: the fields of a POST /collections body, checked.
struct CreateSpec {
  std::string name;
  aidb_collection_options opts;  // opts.name is set by Options()

  // The options for aidb_db_create_collection (valid while *this lives).
  const aidb_collection_options* Options() {
    opts.name = name.c_str();
    return &opts;
  }
};

// Parses a POST /collections body, as the original AIDB server took it:
// `name`, `dim` (or `dimension`, `size`), `metric` (or `distance`; default
// cosine), `index` (`hnsw`, the default even without `hnsw`; `flat` or its
// original name `bruteforce`), `hnsw` {m (16), ef_construction (200),
// ef_search (0 = adapts to k)}, `quantization` ("sq8", the default, or
// "none"), `vectors_on_disk` (bool, default false), and `wal_dir`, which must name `wal_dir_root`
// (the daemon's data directory, canonical; relative paths are taken from the
// working directory, as the original did): anything else is a 400 saying so,
// since every WAL lives in the data directory.
CreateSpec ParseCreate(element body, const std::string& wal_dir_root);

// How an existing collection's configuration differs from a create request's,
// e.g. "dim 4 (requested 8), metric euclidean (requested cosine)"; empty when
// they agree. Compared: dim, metric, index, quantization, vectors_on_disk
// and, for HNSW, m and ef_construction (ef_search is a search setting that POST .../params
// changes, not part of a collection's identity).
std::string ConfigDifference(const aidb_collection_info& have, const aidb_collection_options& want);

}  // namespace aidbd
