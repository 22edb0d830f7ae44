// Point routes: upsert (one, batch), get, delete.
#include <cstring>
#include <string>
#include <vector>

#include "api.h"
#include "render.h"
#include "util.h"

namespace aidbd {

namespace {
// Per-point work (ids, payload copies, the answer) is bounded by this, the
// bytes by --max-body-bytes (docs/operations.md, "Security and limits").
constexpr size_t kMaxBatchPoints = 100000;
}  // namespace

void Api::Upsert(HttpRequest* req, HttpResponse* resp) {
  auto c = handles_.Get(req->params[0]);
  element body = ParseBody(req, false);
  auto v = Field(body, "vector");
  if (!v) Fail(400, "'vector' is required");
  std::vector<float> vec;
  vec.reserve(c->dim);
  AppendVector(*v, "vector", &vec);
  std::string id = IdField(Field(body, "id"));
  std::string payload = PayloadText(Field(body, "payload"));
  ErrMsg err;
  Check(
      aidb_collection_upsert(c->handle, id.c_str(), vec.data(), vec.size(),
                             payload.empty() ? nullptr : payload.data(), payload.size(), err.out()),
      err);
  Reply(resp, 200, id);  // the id as a bare JSON string, as the original server
}

void Api::UpsertBatch(HttpRequest* req, HttpResponse* resp) {
  auto c = handles_.Get(req->params[0]);
  element body = ParseBody(req, false);
  auto pts = Field(body, "points");
  if (!pts || !pts->is_array()) Fail(400, "'points' must be an array of points");
  std::vector<std::string> ids;
  std::vector<std::string> payloads;
  std::vector<float> vectors;
  size_t dim = 0;
  bool any_payload = false;
  simdjson::dom::array list = pts->get_array().value_unsafe();
  if (list.size() > kMaxBatchPoints) {
    Fail(400, "a batch holds at most " + std::to_string(kMaxBatchPoints) + " points: split it");
  }
  for (element p : list) {
    if (!p.is_object()) Fail(400, "each point must be a JSON object");
    auto v = Field(p, "vector");
    if (!v) Fail(400, "point " + std::to_string(ids.size()) + ": 'vector' is required");
    size_t n = AppendVector(*v, "vector", &vectors);
    if (ids.empty()) {
      dim = n;
    } else if (n != dim) {
      Fail(400, "point " + std::to_string(ids.size()) + ": vector has " + std::to_string(n) +
                    " components, the first point " + std::to_string(dim));
    }
    ids.push_back(IdField(Field(p, "id")));
    payloads.push_back(PayloadText(Field(p, "payload")));
    any_payload |= !payloads.back().empty();
  }
  Json out_ids = Json::array();
  if (!ids.empty()) {
    std::vector<const char*> id_ptrs, payload_ptrs;
    for (size_t i = 0; i < ids.size(); ++i) {
      id_ptrs.push_back(ids[i].c_str());
      payload_ptrs.push_back(payloads[i].empty() ? nullptr : payloads[i].c_str());
    }
    ErrMsg err;
    Check(aidb_collection_upsert_batch(c->handle, ids.size(), id_ptrs.data(), vectors.data(), dim,
                                       any_payload ? payload_ptrs.data() : nullptr, err.out()),
          err);
    for (auto& id : ids) out_ids.push_back(id);
  }
  Reply(resp, 200, out_ids);  // a bare array of ids, as the original server
}

void Api::GetPoint(HttpRequest* req, HttpResponse* resp) {
  std::string id = CanonicalId(req->params[1]);
  auto c = handles_.Get(req->params[0]);
  std::vector<float> vec(c->dim);
  char* payload = nullptr;
  ErrMsg err;
  int st = aidb_collection_get(c->handle, id.c_str(), vec.data(), vec.size(), &payload, err.out());
  if (st == AIDB_NOT_FOUND) Fail(404, "point '" + id + "' not found");
  Check(st, err);
  Json j;
  j["id"] = id;
  Json arr = Json::array();
  for (float f : vec) arr.push_back(FloatForJson(f));
  j["vector"] = std::move(arr);
  j["payload"] = payload ? PayloadJson(payload, std::strlen(payload)) : Json();
  aidb_free(payload);
  Reply(resp, 200, j);
}

void Api::DeletePoint(HttpRequest* req, HttpResponse* resp) {
  std::string id = CanonicalId(req->params[1]);
  auto c = handles_.Get(req->params[0]);
  ErrMsg err;
  int st = aidb_collection_delete(c->handle, id.c_str(), err.out());
  // As the original server: whether there was such a point, 200 both ways.
  if (st == AIDB_NOT_FOUND) {
    Reply(resp, 200, false);
    return;
  }
  Check(st, err);
  Reply(resp, 200, true);
}

}  // namespace aidbd
