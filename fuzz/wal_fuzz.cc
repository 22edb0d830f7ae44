// libFuzzer target: the WAL reader (storage::ReadWal, both read paths) and
// recovery through the C API (record decoding + apply, the change-feed
// iterator, aidb_wal_verify).
// Input: one mode byte, then the WAL file. Mode bit 0: fix every record's
// CRC32C first (so the fuzzer reaches the record decoder behind the
// checksum); bit 1: read through mmap; bit 2: HNSW collection.
#include <aidb.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "storage/crc32c.h"
#include "storage/wal.h"

using namespace aidbfuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::vector<uint8_t> file(data + 1, data + size);
  if (mode & 1) {
    size_t pos = 0;
    while (pos + aidb::storage::kWalHeaderSize <= file.size()) {
      uint32_t len = Get32(&file[pos + 4]);
      if (len > file.size() - pos - aidb::storage::kWalHeaderSize) break;
      uint32_t crc = aidb::crc32c::Value(&file[pos + 4], aidb::storage::kWalHeaderSize - 4 + len);
      Put32(&file[pos], aidb::crc32c::Mask(crc));
      pos += aidb::storage::kWalHeaderSize + len;
    }
  }
  const std::string path = ScratchDir() + "/wal.log";
  ::unlink((path + ".lsn").c_str());
  WriteFileOrDie(path, file.data(), file.size());
  const uint64_t threshold = (mode & 2) ? 1 : (uint64_t{1} << 40);

  // The reader alone: every record it hands out lies inside the file, LSNs rise.
  aidb::storage::WalReadStats st;
  uint64_t prev = 0;
  aidb::Status s = aidb::storage::ReadWal(
      path, threshold,
      [&](const aidb::storage::WalRecord& r) {
        if (r.lsn <= prev) __builtin_trap();
        if (r.offset + aidb::storage::kWalHeaderSize + r.body.size() > file.size())
          __builtin_trap();
        prev = r.lsn;
        return aidb::Status::OK();
      },
      &st);
  if (s.ok() && st.valid_bytes + st.torn_tail_bytes + st.zero_tail_bytes != file.size())
    __builtin_trap();
  if (st.torn_tail_bytes > 0 && st.zero_tail_bytes > 0) __builtin_trap();

  uint64_t records = 0, valid = 0;
  int vrc = aidb_wal_verify(path.c_str(), &records, &valid, nullptr);
  if ((vrc == AIDB_OK) != s.ok()) __builtin_trap();

  // Recovery into a collection, then the change feed.
  aidb_collection_options o;
  aidb_collection_options_init(&o);
  o.name = "fuzz";
  o.dim = 4;
  o.index_kind = (mode & 4) ? AIDB_INDEX_HNSW : AIDB_INDEX_FLAT;
  o.wal_path = path.c_str();
  o.wal_mmap_threshold = threshold;
  o.durability = AIDB_DURABILITY_NONE;
  aidb_collection* c = nullptr;
  if (aidb_collection_open(&o, &c, nullptr) != AIDB_OK) return 0;
  aidb_wal_iterator* it = nullptr;
  if (aidb_wal_iterator_open(c, 0, &it, nullptr) == AIDB_OK) {
    aidb_wal_entry e;
    e.struct_size = sizeof e;
    int has = 1;
    for (int i = 0; i < 10000 && has; ++i) {
      if (aidb_wal_iterator_next(it, &e, &has, nullptr) != AIDB_OK) break;
    }
    aidb_wal_iterator_close(it);
  }
  int rc = aidb_recover(c, nullptr, nullptr, nullptr);
  if (rc == AIDB_OK) {
    float q[4] = {0.5f, -1.f, 2.f, 0.f};
    aidb_search_result* r = nullptr;
    aidb_search_options so;
    aidb_search_options_init(&so);
    so.top_k = 5;
    if (aidb_collection_search(c, q, 4, &so, &r, nullptr) == AIDB_OK) aidb_search_result_free(r);
    // Writes continue after the recovered records.
    aidb_collection_upsert(c, "00000000-0000-4000-8000-00000000abcd", q, 4, nullptr, 0, nullptr);
  }
  aidb_collection_close(c);
  return 0;
}
