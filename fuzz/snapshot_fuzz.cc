// libFuzzer target: the snapshot reader (storage::SnapshotFile::Open via
// aidb_snapshot_verify) and loading a snapshot into collections (flat and
// HNSW), then using what was loaded (count, get, filtered search, a new
// snapshot of it).
// Input: one mode byte, then the snapshot file. Mode bit 0: rewrite the
// 32-byte header (magic, version, message size, both CRC32Cs) to match the
// message that follows, so the fuzzer reaches the Cap'n Proto decoding and
// the index loaders behind the checksums.
#include <aidb.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "storage/crc32c.h"
#include "storage/snapshot.h"

using namespace aidbfuzz;

namespace {

void UseCollection(aidb_collection* c, const std::string& again) {
  uint64_t n = 0;
  aidb_collection_count(c, &n, nullptr);
  aidb_collection_info info;
  aidb_collection_info_init(&info);
  if (aidb_collection_get_info(c, &info, nullptr) != AIDB_OK) return;
  std::vector<float> q(info.dim, 0.25f);
  q[0] = 1.f;
  aidb_search_options so;
  aidb_search_options_init(&so);
  so.top_k = 4;
  for (const char* filter : {static_cast<const char*>(nullptr), "{\"a\":1}",
                             "{\"must\":[{\"key\":\"b\",\"range\":{\"gt\":0}}]}"}) {
    so.filter = filter;
    aidb_search_result* r = nullptr;
    if (aidb_collection_search(c, q.data(), q.size(), &so, &r, nullptr) == AIDB_OK) {
      const aidb_hit* hits = nullptr;
      size_t nh = 0;
      if (aidb_search_result_hits_v2(r, 0, &hits, &nh, nullptr) == AIDB_OK) {
        for (size_t i = 0; i < nh; ++i) {
          char* payload = nullptr;
          std::vector<float> v(info.dim);
          if (aidb_collection_get(c, hits[i].id, v.data(), v.size(), &payload, nullptr) !=
              AIDB_OK) {
            __builtin_trap();  // a search hit that cannot be read back
          }
          aidb_free(payload);
        }
      }
      aidb_search_result_free(r);
    }
  }
  if (n < 64) {
    // A loaded collection can be written and checkpointed again.
    aidb_collection_upsert(c, "00000000-0000-4000-8000-00000000abcd", q.data(), q.size(),
                           "{\"a\":1}", static_cast<size_t>(-1), nullptr);
    aidb_collection_delete(c, "00000000-0000-4000-8000-00000000abcd", nullptr);
    if (aidb_collection_snapshot_to(c, again.c_str(), nullptr) == AIDB_OK) {
      if (aidb_snapshot_verify(again.c_str(), nullptr, nullptr) != AIDB_OK) __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::vector<uint8_t> file(data + 1, data + size);
  if ((mode & 1) && file.size() >= aidb::storage::kSnapshotHeaderSize + 8) {
    size_t msg = (file.size() - aidb::storage::kSnapshotHeaderSize) & ~size_t{7};
    file.resize(aidb::storage::kSnapshotHeaderSize + msg);
    uint8_t* h = file.data();
    std::memcpy(h, aidb::storage::kSnapshotMagic, 8);
    Put32(h + 8, aidb::storage::kSnapshotFileVersion);
    Put64(h + 16, msg);
    Put32(h + 24, aidb::crc32c::Value(h + aidb::storage::kSnapshotHeaderSize, msg));
    Put32(h + 28, 0);
    uint32_t crc = aidb::crc32c::Extend(0, h, 12);
    crc = aidb::crc32c::Extend(crc, h + 16, 16);
    Put32(h + 12, crc);
  }
  const std::string path = ScratchDir() + "/in.aidbsnap";
  const std::string again = ScratchDir() + "/again.aidbsnap";
  WriteFileOrDie(path, file.data(), file.size());

  aidb_snapshot_info info;
  const int vrc = aidb_snapshot_verify(path.c_str(), &info, nullptr);
  for (int kind : {AIDB_INDEX_FLAT, AIDB_INDEX_HNSW}) {
    aidb_collection_options o;
    aidb_collection_options_init(&o);
    o.name = "fuzz";
    o.dim = 4;
    o.index_kind = kind;
    aidb_collection* c = nullptr;
    if (aidb_collection_open(&o, &c, nullptr) != AIDB_OK) return 0;
    int rc = aidb_collection_load_snapshot(c, path.c_str(), nullptr);
    // A file aidb_snapshot_verify rejects never loads.
    if (rc == AIDB_OK && vrc != AIDB_OK) __builtin_trap();
    if (rc == AIDB_OK) UseCollection(c, again);
    aidb_collection_close(c);
  }
  return 0;
}
