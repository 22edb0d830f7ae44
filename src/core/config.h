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

struct IndexConfig {
  uint32_t dim = 0;
  Metric metric = Metric::kCosine;
  IndexKind kind = IndexKind::kFlat;
  HnswParams hnsw;
  IvfParams ivf;
};

struct CollectionConfig {
  std::string name;
  IndexConfig index;
};

// When a committed write reaches the disk (see storage/wal.h).
enum class Durability : int { kFsync = 0, kBatch = 1, kNone = 2 };

}  // namespace aidb
