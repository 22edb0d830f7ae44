// Plain configuration types shared by the layers: what a collection is (name,
// dimension, metric, index kind and parameters) and how its writes are made
// durable. index, storage (snapshots record the config) and engine all speak
// these; none of them owns the others' types.
#pragma once

#include <cstdint>
#include <string>

#include "core/defaults.h"
#include "core/distance.h"

namespace aidb {

enum class IndexKind : int { kFlat = 0, kHnsw = 1, kIvf = 2 };

struct HnswParams {
  uint32_t m = kDefaultHnswM;
  uint32_t ef_construction = kDefaultHnswEfConstruction;
  uint32_t ef_search = kDefaultHnswEfSearch;  // 0 = adapt to k
};

// IVF (index/ivf.h): 0 = automatic for each.
struct IvfParams {
  uint32_t nlist = kDefaultIvfNlist;    // partitions; 0 = ~sqrt(n), regrown as n grows
  uint32_t nprobe = kDefaultIvfNprobe;  // partitions a search scans; 0 = adapt to nlist
  uint32_t rerank = kDefaultIvfRerank;  // candidates re-ranked exactly; 0 = adapt to k
};

// What an HNSW walk scores (flat scans floats, IVF walks its own 4-bit codes:
// neither uses it). kSq8: 8-bit codes, the ef candidates re-ranked with the
// floats (the default); kNone: the floats, no codes held.
enum class Quantization : int { kSq8 = 0, kNone = 1 };

struct IndexConfig {
  uint32_t dim = 0;
  Metric metric = Metric::kCosine;
  IndexKind kind = IndexKind::kFlat;
  HnswParams hnsw;
  IvfParams ivf;
  Quantization quantization = Quantization::kSq8;
  // Flat and HNSW: the float vectors live in a file-backed shared mapping
  // (index/vector_file.h) the page cache may evict, not in anonymous memory.
  bool vectors_on_disk = false;
};

struct CollectionConfig {
  std::string name;
  IndexConfig index;
};

// When a committed write reaches the disk (see storage/wal.h).
enum class Durability : int { kFsync = 0, kBatch = 1, kNone = 2 };

}  // namespace aidb
