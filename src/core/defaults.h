// Defaults shared by the layers (the C API's _init functions use the same
// values; aidb.h documents them).
#pragma once

#include <cstddef>
#include <cstdint>

namespace aidb {

// HNSW parameters of a new collection.
inline constexpr uint32_t kDefaultHnswM = 16;
inline constexpr uint32_t kDefaultHnswEfConstruction = 200;
inline constexpr uint32_t kDefaultHnswEfSearch = 0;  // 0 = adapt to k

// IVF parameters of a new collection (0 = automatic).
inline constexpr uint32_t kDefaultIvfNlist = 0;
inline constexpr uint32_t kDefaultIvfNprobe = 0;
inline constexpr uint32_t kDefaultIvfRerank = 0;

// Hits a search returns when the caller does not say.
inline constexpr uint32_t kDefaultTopK = 10;

// Durability::kBatch: the background fdatasync runs at most this often.
inline constexpr uint32_t kDefaultBatchIntervalMs = 10;
// WAL files of at least this many bytes are read through mmap.
inline constexpr uint64_t kDefaultWalMmapThreshold = uint64_t{1} << 20;  // 1 MiB

// Payload and filter JSON up to this size is parsed with a per-thread parser
// kept between calls; larger documents get a parser of their own.
inline constexpr size_t kThreadParserMaxBytes = size_t{1} << 20;  // 1 MiB

}  // namespace aidb
