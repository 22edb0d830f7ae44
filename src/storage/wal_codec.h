// Encoding of collection operations as WAL record bodies. Storage owns this
// format (and the record framing, storage/wal.h); the engine hands it plain
// ids, vectors and payloads and gets views of them back.
//
// Upsert (op 1), little-endian, padded to a multiple of 4 bytes so vector
// floats stay 4-byte aligned in the file (records start 4-aligned):
//   u32 count, u32 dim, count x 16-byte ids, count x dim float32,
//   count x u32 payload length (0 = none), payload bytes, zero padding.
// Delete (op 2): u32 count, count x 16-byte ids.
// SetParams (op 3): u32 ef_search.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/payload_slot.h"
#include "core/status.h"
#include "core/uuid.h"

namespace aidb::storage {

enum class WalOp : uint8_t { kUpsert = 1, kDelete = 2, kSetParams = 3 };

void EncodeUpsert(const std::vector<Uuid>& ids, const float* vectors, uint32_t dim,
                  const std::vector<std::string>& payloads, std::string* out);
// The same body in three parts, without copying the vectors: *head (count,
// dim, ids), the caller's `vectors` (count * dim floats), *tail (payload
// lengths, payloads, padding). Concatenated they equal EncodeUpsert's body.
void EncodeUpsertParts(const std::vector<Uuid>& ids, const float* vectors, uint32_t dim,
                       const std::vector<std::string>& payloads, std::string* head,
                       std::string_view* vectors_part, std::string* tail);
// The same with the payloads as the collection keeps them (the upsert path).
void EncodeUpsertParts(const std::vector<Uuid>& ids, const float* vectors, uint32_t dim,
                       std::span<const PayloadSlot> payloads, std::string* head,
                       std::string_view* vectors_part, std::string* tail);
void EncodeDelete(const std::vector<Uuid>& ids, std::string* out);
void EncodeSetParams(uint32_t ef_search, std::string* out);

// Views into a decoded upsert body (valid while the body is).
struct UpsertView {
  uint32_t count = 0;
  uint32_t dim = 0;
  const uint8_t* ids = nullptr;    // count * 16 bytes
  const float* vectors = nullptr;  // count * dim floats (4-aligned if the body is)
  std::vector<std::string_view> payloads;
  Uuid id(uint32_t i) const;
};

Status DecodeUpsert(std::string_view body, UpsertView* out);
Status DecodeDelete(std::string_view body, std::vector<Uuid>* ids);
Status DecodeSetParams(std::string_view body, uint32_t* ef_search);

// A cheap upper bound of the points an upsert body holds, for sizing before a
// replay (DecodeUpsert checks the body; this only reads its count field): at
// most one point per 20 bytes (16-byte id + 4-byte payload length), whatever
// the count field says. 0 for a body too short to hold one.
uint64_t UpsertCountHint(std::string_view body);

// The record as the change feed's JSON object:
// {"lsn":N,"timestamp":"RFC3339","timestamp_ns":N,"op":"upsert","points":[...]}.
Status RenderRecordJson(uint64_t lsn, int64_t timestamp_ns, uint8_t op, std::string_view body,
                        std::string* out);

}  // namespace aidb::storage
