#include "storage/wal_codec.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

#include "core/clock.h"
#include "core/coding.h"

namespace aidb::storage {
namespace {

void PadTo4(std::string* s) {
  while (s->size() % 4 != 0) s->push_back('\0');
}

}  // namespace

Uuid UpsertView::id(uint32_t i) const {
  Uuid u;
  std::memcpy(u.bytes.data(), ids + static_cast<size_t>(i) * 16, 16);
  return u;
}

void EncodeUpsert(const std::vector<Uuid>& ids, const float* vectors, uint32_t dim,
                  const std::vector<std::string>& payloads, std::string* out) {
  const uint32_t n = static_cast<uint32_t>(ids.size());
  size_t payload_bytes = 0;
  for (const auto& p : payloads) payload_bytes += p.size();
  out->clear();
  out->reserve(8 + n * 16ull + static_cast<size_t>(n) * dim * 4 + n * 4ull + payload_bytes + 3);
  PutFixed32(out, n);
  PutFixed32(out, dim);
  for (const Uuid& id : ids) out->append(reinterpret_cast<const char*>(id.bytes.data()), 16);
  out->append(reinterpret_cast<const char*>(vectors), static_cast<size_t>(n) * dim * 4);
  for (uint32_t i = 0; i < n; ++i) {
    PutFixed32(out, i < payloads.size() ? static_cast<uint32_t>(payloads[i].size()) : 0);
  }
  for (uint32_t i = 0; i < n && i < payloads.size(); ++i) out->append(payloads[i]);
  PadTo4(out);
}

namespace {

// EncodeUpsertParts for any sequence of payloads (std::string, PayloadSlot).
template <class Payloads>
void EncodeParts(const std::vector<Uuid>& ids, const float* vectors, uint32_t dim,
                 const Payloads& payloads, std::string* head, std::string_view* vectors_part,
                 std::string* tail) {
  const uint32_t n = static_cast<uint32_t>(ids.size());
  head->clear();
  head->reserve(8 + n * 16ull);
  PutFixed32(head, n);
  PutFixed32(head, dim);
  for (const Uuid& id : ids) head->append(reinterpret_cast<const char*>(id.bytes.data()), 16);
  *vectors_part =
      std::string_view(reinterpret_cast<const char*>(vectors), static_cast<size_t>(n) * dim * 4);
  size_t payload_bytes = 0;
  for (const auto& p : payloads) payload_bytes += p.size();
  tail->clear();
  tail->reserve(n * 4ull + payload_bytes + 3);
  for (uint32_t i = 0; i < n; ++i) {
    PutFixed32(tail, i < payloads.size() ? static_cast<uint32_t>(payloads[i].size()) : 0);
  }
  for (uint32_t i = 0; i < n && i < payloads.size(); ++i) {
    tail->append(payloads[i].data(), payloads[i].size());
  }
  // head and the vectors are multiples of 4 bytes: pad the whole body.
  PadTo4(tail);
}

}  // namespace

void EncodeUpsertParts(const std::vector<Uuid>& ids, const float* vectors, uint32_t dim,
                       const std::vector<std::string>& payloads, std::string* head,
                       std::string_view* vectors_part, std::string* tail) {
  EncodeParts(ids, vectors, dim, payloads, head, vectors_part, tail);
}

void EncodeUpsertParts(const std::vector<Uuid>& ids, const float* vectors, uint32_t dim,
                       std::span<const PayloadSlot> payloads, std::string* head,
                       std::string_view* vectors_part, std::string* tail) {
  EncodeParts(ids, vectors, dim, payloads, head, vectors_part, tail);
}

void EncodeDelete(const std::vector<Uuid>& ids, std::string* out) {
  out->clear();
  PutFixed32(out, static_cast<uint32_t>(ids.size()));
  for (const Uuid& id : ids) out->append(reinterpret_cast<const char*>(id.bytes.data()), 16);
}

void EncodeSetParams(uint32_t ef_search, std::string* out) {
  out->clear();
  PutFixed32(out, ef_search);
}

Status DecodeUpsert(std::string_view body, UpsertView* out) {
  auto bad = [](const char* why) {
    return Status::Corruption(std::string("WAL upsert record: ") + why);
  };
  if (body.size() < 8) return bad("too short");
  const uint32_t n = DecodeFixed32(body.data()), dim = DecodeFixed32(body.data() + 4);
  const uint64_t fixed = 8 + n * 16ull + static_cast<uint64_t>(n) * dim * 4 + n * 4ull;
  if (fixed > body.size()) return bad("counts exceed the record");
  out->count = n;
  out->dim = dim;
  out->ids = reinterpret_cast<const uint8_t*>(body.data() + 8);
  out->vectors = reinterpret_cast<const float*>(body.data() + 8 + n * 16ull);
  const char* lens = body.data() + 8 + n * 16ull + static_cast<size_t>(n) * dim * 4;
  uint64_t pos = fixed;
  out->payloads.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t len = DecodeFixed32(lens + i * 4ull);
    if (pos + len > body.size()) return bad("payload exceeds the record");
    out->payloads[i] = std::string_view(body.data() + pos, len);
    pos += len;
  }
  if (body.size() - pos > 3) return bad("trailing bytes");
  return Status::OK();
}

Status DecodeDelete(std::string_view body, std::vector<Uuid>* ids) {
  if (body.size() < 4) return Status::Corruption("WAL delete record: too short");
  const uint32_t n = DecodeFixed32(body.data());
  if (body.size() != 4 + n * 16ull) return Status::Corruption("WAL delete record: bad size");
  ids->resize(n);
  for (uint32_t i = 0; i < n; ++i)
    std::memcpy((*ids)[i].bytes.data(), body.data() + 4 + i * 16ull, 16);
  return Status::OK();
}

uint64_t UpsertCountHint(std::string_view body) {
  if (body.size() < 4) return 0;
  return std::min<uint64_t>(DecodeFixed32(body.data()), body.size() / 20);
}

Status DecodeSetParams(std::string_view body, uint32_t* ef_search) {
  if (body.size() != 4) return Status::Corruption("WAL params record: bad size");
  *ef_search = DecodeFixed32(body.data());
  return Status::OK();
}

Status RenderRecordJson(uint64_t lsn, int64_t timestamp_ns, uint8_t op, std::string_view body,
                        std::string* out) {
  nlohmann::json j;
  j["lsn"] = lsn;
  j["timestamp"] = FormatRfc3339(timestamp_ns);
  j["timestamp_ns"] = timestamp_ns;
  switch (static_cast<WalOp>(op)) {
    case WalOp::kUpsert: {
      UpsertView v;
      AIDB_RETURN_IF_ERROR(DecodeUpsert(body, &v));
      j["op"] = "upsert";
      auto& points = j["points"] = nlohmann::json::array();
      for (uint32_t i = 0; i < v.count; ++i) {
        nlohmann::json p;
        p["id"] = v.id(i).ToString();
        std::vector<float> vec(v.vectors + static_cast<size_t>(i) * v.dim,
                               v.vectors + static_cast<size_t>(i + 1) * v.dim);
        p["vector"] = vec;
        if (v.payloads[i].empty()) {
          p["payload"] = nullptr;
        } else {
          p["payload"] = nlohmann::json::parse(v.payloads[i], nullptr, /*allow_exceptions=*/false);
        }
        points.push_back(std::move(p));
      }
      break;
    }
    case WalOp::kDelete: {
      std::vector<Uuid> ids;
      AIDB_RETURN_IF_ERROR(DecodeDelete(body, &ids));
      j["op"] = "delete";
      auto& arr = j["ids"] = nlohmann::json::array();
      for (const Uuid& id : ids) arr.push_back(id.ToString());
      break;
    }
    case WalOp::kSetParams: {
      uint32_t ef = 0;
      AIDB_RETURN_IF_ERROR(DecodeSetParams(body, &ef));
      j["op"] = "set_params";
      j["ef_search"] = ef;
      break;
    }
    default: return Status::Corruption("WAL record with unknown op " + std::to_string(op));
  }
  *out = j.dump();
  return Status::OK();
}

}  // namespace aidb::storage
